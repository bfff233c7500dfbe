#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <opencv2/core.hpp>
#include <optional>
#include <stop_token>
#include <vector>

#include "bus/bus.h"
#include "bus/bus_layout.h"
#include "bus/shm_object.h"
#include "bus/slot_read.h"

namespace freshframe::bus {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kNameCheckInterval = std::chrono::milliseconds(250);
// An honest writer never touches the slot `newest` names, so a reader that
// finds it changed has only raced with the next publish, and sees the new
// `newest` on its next try. Many failures in a row on one `newest` mean a
// corrupt bus.
constexpr int kMaxChangedAttempts = 16;

void CopyMetaOut(const layout::SlotHeader& slot, BusFrame& out) {
  FrameMeta& m = out.meta;
  m.sequence = slot.sequence;
  m.source_id = slot.source_id;
  m.width = slot.width;
  m.height = slot.height;
  m.format = static_cast<PixelFormat>(slot.format);
  m.detections_sequence = slot.detections_sequence;
  m.stamps = FrameStamps{slot.capture_us,   slot.grab_us,    slot.infer_start_us,
                         slot.infer_end_us, slot.publish_us, slot.encode_us};
  out.checksum = slot.checksum;
  out.publish_index = slot.publish_index;
  out.writer_epoch = slot.writer_epoch;
}

// Why the header copy `slot` cannot describe a frame in a slot of
// `capacity` bytes; nullptr when it can. Keeps every copy and view inside
// the slot, whatever the shared memory says.
const char* Implausible(const layout::SlotHeader& slot, uint64_t capacity) {
  if (slot.width <= 0 || slot.height <= 0) return "width or height not positive";
  if (slot.channels != 1 && slot.channels != 3) return "channels not 1 or 3";
  const uint64_t row = static_cast<uint64_t>(slot.width) * slot.channels;
  const uint64_t bytes = row * static_cast<uint64_t>(slot.height);  // < 2^31 * 3 * 2^31
  if (slot.row_bytes != row) return "row_bytes is not width * channels";
  if (bytes != slot.pixel_bytes) return "pixel_bytes is not row_bytes * height";
  if (bytes > capacity) return "pixel_bytes exceeds the slot capacity";
  return nullptr;
}

std::string SlotName(const Mapping& map, uint32_t slot) {
  return "slot " + std::to_string(slot) + " of " + std::to_string(map.geometry().slot_count);
}

// The seqlock reader copies bytes the writer may be overwriting; the copy is
// thrown away when the slot's seq shows that happened. TSan cannot know that
// protocol, so the copy is not instrumented.
__attribute__((no_sanitize("thread"))) void RacyCopy(void* to, const void* from, size_t n) {
  std::memcpy(to, from, n);
}

// Copies every field but the seq word (same reasoning as RacyCopy).
__attribute__((no_sanitize("thread"))) void RacyHeader(const layout::SlotHeader& slot,
                                                       layout::SlotHeader& copy) {
  std::memcpy(reinterpret_cast<unsigned char*>(&copy) + sizeof(copy.seq),
              reinterpret_cast<const unsigned char*>(&slot) + sizeof(slot.seq),
              sizeof(slot) - sizeof(slot.seq));
}

}  // namespace

SlotOutcome CopyFrame(const Mapping& map, uint64_t newest, Frame& frame, BusFrame& info) {
  const uint64_t index = layout::IndexOf(newest);
  const uint32_t slot_index = layout::SlotOf(newest);
  if (slot_index >= map.geometry().slot_count) {
    return {SlotCheck::kCorrupt, "newest names " + SlotName(map, slot_index)};
  }
  const layout::SlotHeader& slot = map.slot(slot_index);
  // Acquire: pairs with the writer's release of the even seq; the frame's
  // bytes read below are at least as new as that store.
  const uint64_t before = slot.seq.load(std::memory_order_acquire);
  if (before != 2 * index) return {SlotCheck::kChanged, {}};  // already reused
  layout::SlotHeader header;
  RacyHeader(slot, header);
  if (const char* why = Implausible(header, map.geometry().slot_capacity)) {
    // Torn by a rewrite (the seq shows it), or written that way: corrupt.
    std::atomic_thread_fence(std::memory_order_acquire);
    if (slot.seq.load(std::memory_order_relaxed) != before) return {SlotCheck::kChanged, {}};
    return {SlotCheck::kCorrupt, SlotName(map, slot_index) + ": " + why};
  }
  CopyMetaOut(header, info);
  frame.meta = info.meta;
  frame.image.create(header.height, header.width, header.channels == 1 ? CV_8UC1 : CV_8UC3);
  RacyCopy(frame.image.data, map.pixels(slot_index), header.pixel_bytes);
  // Acquire fence, then re-check: if the writer touched the slot while we
  // copied, its odd (or newer) seq is visible here and the copy is discarded.
  std::atomic_thread_fence(std::memory_order_acquire);
  if (slot.seq.load(std::memory_order_relaxed) != before) return {SlotCheck::kChanged, {}};
  return {};
}

SlotOutcome CheckPinned(const Mapping& map, uint64_t newest, BusFrame& info, cv::Mat& image) {
  const uint64_t index = layout::IndexOf(newest);
  const uint32_t slot_index = layout::SlotOf(newest);
  if (slot_index >= map.geometry().slot_count) {
    return {SlotCheck::kCorrupt, "newest names " + SlotName(map, slot_index)};
  }
  const layout::SlotHeader& slot = map.slot(slot_index);
  // seq_cst: pairs with the writer's seq_cst odd store then pin load (see
  // BusWriter's Pinned()); the caller's pin store before it is seq_cst too.
  if (slot.seq.load(std::memory_order_seq_cst) != 2 * index) return {SlotCheck::kChanged, {}};
  layout::SlotHeader header;
  RacyHeader(slot, header);
  if (const char* why = Implausible(header, map.geometry().slot_capacity)) {
    return {SlotCheck::kCorrupt, SlotName(map, slot_index) + ": " + why};
  }
  CopyMetaOut(header, info);
  image = cv::Mat(header.height, header.width, header.channels == 1 ? CV_8UC1 : CV_8UC3,
                  map.pixels(slot_index));
  return {};
}

struct BusReader::State : BusHandle {
  // One reader entry per view this reader may hold; `generation` names the
  // View that holds the entry's pin (0: the entry pins nothing).
  struct Pin {
    int entry = -1;
    uint64_t generation = 0;
  };
  std::vector<Pin> pins;
  uint64_t last_index = 0;
  uint64_t view_generation = 0;  // of the newest view handed out
  // A `newest` whose slot failed validation: not tried again until the
  // writer publishes another frame (so a corrupt slot costs no CPU), and
  // why, for error().
  uint64_t refused_newest = 0;
  std::optional<Error> error;
  // The `newest` of the last attempts that found their slot changed, and
  // how many in a row: a slot that keeps changing while `newest` still
  // names it is corrupt too (an honest writer never writes that slot).
  uint64_t changed_newest = 0;
  int changed_count = 0;

  layout::ReaderEntry& Entry(const Pin& pin) const { return map->header().readers[pin.entry]; }
  bool registered() const { return !pins.empty() && pins.front().entry >= 0; }

  // Claims one reader entry per pin in the current object; all or none.
  Expected<bool> Register() {
    const pid_t me = getpid();
    for (Pin& pin : pins) pin = Pin{};  // (after Follow: entries of the old object)
    size_t claimed = 0;
    for (int i = 0; i < kMaxReaders && claimed < pins.size(); ++i) {
      auto& reader = map->header().readers[i];
      int32_t pid = reader.pid.load(std::memory_order_relaxed);
      if (pid != 0 && ProcessAlive(pid)) continue;
      // Relaxed: the entry's pid only says who holds it; its pin is what
      // orders anything, and that starts out -1.
      if (reader.pid.compare_exchange_strong(pid, me, std::memory_order_relaxed)) {
        reader.pinned.store(-1, std::memory_order_relaxed);
        pins[claimed++] = Pin{i, 0};
      }
    }
    if (claimed == pins.size()) return true;
    Unregister();
    return Error{"bus " + shm_name + " has no room for " + std::to_string(pins.size()) +
                 " more reader entries (" + std::to_string(kMaxReaders) +
                 " in all): too many readers attached"};
  }

  // Leaves the reader table of `mapping` (release: a pin is dropped only
  // after this reader is done with the pixels it pinned).
  static void Leave(const Mapping& mapping, int entry) {
    mapping.header().readers[entry].pinned.store(-1, std::memory_order_release);
    mapping.header().readers[entry].pid.store(0, std::memory_order_release);
  }

  void Unregister() {
    for (Pin& pin : pins) {
      if (pin.entry >= 0) Leave(*map, pin.entry);
      pin = Pin{};
    }
  }

  // Follows the writer to a replacement object (frames changed size): the
  // old object says so, or (if its writer died before saying so) the name
  // now leads elsewhere. On failure the reader stays where it is.
  bool Follow(bool check_name) {
    const bool replaced =
        map->header().state.load(std::memory_order_acquire) == layout::kStateReplaced ||
        (check_name && NameMovedOn(shm_name, *map));
    if (!replaced) return true;
    auto next = OpenOrCreate(shm_name, options);
    if (!next) return false;
    // "Replaced", yet the name still leads here: a corrupt state word, not a
    // replacement. Staying put (and sleeping) beats re-opening in a loop.
    if ((*next)->inode() == map->inode()) return false;
    BusHandle old{shm_name, options, map};
    const std::vector<Pin> old_pins = pins;
    map = std::move(next).value();
    if (!Register()) {  // the new object is full of readers: stay on the old
      map = std::move(old.map);
      pins = old_pins;
      return false;
    }
    // Leave the old object's reader table. Views of it stay readable (they
    // keep its mapping) and unchanged: its writer has moved on. Their
    // generations are no longer in `pins`, so releasing them is a no-op.
    for (const Pin& pin : old_pins) Leave(*old.map, pin.entry);
    // Every frame in the new object is newer than anything read from the old
    // one, whatever its publish index (a new writer may start counting anew).
    last_index = 0;
    return true;
  }

  // The packed newest of a frame newer than last_index (and not refused),
  // waiting until `deadline` or a stop request; 0 when there is none.
  uint64_t WaitNewer(Clock::time_point deadline, const std::stop_token& stop) {
    bool check_name = false;
    for (;;) {
      const bool followed = Follow(check_name);
      layout::Header& header = map->header();
      // Acquire on the futex word, then on newest: if the bump we see was
      // made after a publish, that publish is visible; if a publish comes
      // after our load of the word, FUTEX_WAIT sees the word changed and
      // returns at once. No wake-up can be lost.
      const uint32_t seen = header.futex.load(std::memory_order_acquire);
      const uint64_t newest = header.newest.load(std::memory_order_acquire);
      const uint64_t index = layout::IndexOf(newest);
      // (A smaller index means the bus was recreated from scratch: take it.)
      if (newest != 0 && newest != refused_newest && index != last_index) return newest;
      // Every round checks the deadline and the stop request, also the
      // rounds that follow a replacement without sleeping.
      const auto now = Clock::now();
      if (now >= deadline || stop.stop_requested()) return 0;
      if (followed && header.state.load(std::memory_order_acquire) == layout::kStateReplaced) {
        continue;
      }
      // Sleep in slices: after a quiet slice, also look whether the name
      // moved on to another object (a writer that died mid-resize never
      // marks the old one), which costs one stat().
      const auto slice = std::min<Clock::duration>(deadline - now, kNameCheckInterval);
      FutexWait(header.futex, seen, slice);
      check_name = Clock::now() - now >= slice;
    }
  }

  // After an attempt on `newest` failed: refuses a corrupt slot, or one that
  // keeps changing under an unchanged `newest`. False once the deadline or
  // a stop request has come (the caller returns nothing).
  bool Retry(uint64_t newest, const SlotOutcome& outcome, Clock::time_point deadline,
             const std::stop_token& stop) {
    std::string why = outcome.why;
    if (outcome.check == SlotCheck::kChanged) {
      changed_count = newest == changed_newest ? changed_count + 1 : 1;
      changed_newest = newest;
      if (changed_count >= kMaxChangedAttempts) {
        why = "slot " + std::to_string(layout::SlotOf(newest)) +
              " never holds the frame newest names (publish index " +
              std::to_string(layout::IndexOf(newest)) + ")";
      }
    }
    if (!why.empty()) {
      refused_newest = newest;
      changed_count = 0;
      error = Error{"bus " + shm_name + " is corrupt: " + why +
                    "; waiting for the writer's next frame"};
    }
    return Clock::now() < deadline && !stop.stop_requested();
  }

  void Accepted(uint64_t newest) {
    last_index = layout::IndexOf(newest);
    changed_count = 0;
    error.reset();
  }
};

BusReader::BusReader(std::unique_ptr<State> state) : state_(std::move(state)) {}

Expected<std::unique_ptr<BusReader>> BusReader::Open(const std::string& name,
                                                     const BusOptions& options, int views) {
  if (views < 1 || views > kMaxViewsPerReader) {
    return Error{"a bus reader holds 1 to " + std::to_string(kMaxViewsPerReader) + " views, not " +
                 std::to_string(views)};
  }
  auto handle = AttachBus(name, options);
  if (!handle) return handle.error();
  auto state = std::make_unique<State>();
  static_cast<BusHandle&>(*state) = std::move(handle).value();
  state->pins.resize(static_cast<size_t>(views));
  auto registered = state->Register();
  if (!registered) return registered.error();
  return std::unique_ptr<BusReader>(new BusReader(std::move(state)));
}

BusReader::~BusReader() {
  if (state_) state_->Unregister();
}

std::optional<Frame> BusReader::ReadCopy(std::chrono::milliseconds timeout, BusFrame* info,
                                         std::stop_token stop) {
  State& s = *state_;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const uint64_t newest = s.WaitNewer(deadline, stop);
    if (newest == 0) return std::nullopt;
    Frame frame;
    BusFrame meta;
    const SlotOutcome outcome = CopyFrame(*s.map, newest, frame, meta);
    if (outcome.check == SlotCheck::kOk) {
      s.Accepted(newest);
      if (info != nullptr) *info = meta;
      return frame;
    }
    if (!s.Retry(newest, outcome, deadline, stop)) return std::nullopt;
  }
}

BusReader::View BusReader::ReadView(std::chrono::milliseconds timeout, std::stop_token stop) {
  State& s = *state_;
  // A free entry, or else the one of the oldest view (released now, so the
  // writer gets its slot back while this reader waits).
  const auto oldest = std::min_element(
      s.pins.begin(), s.pins.end(),
      [](const State::Pin& a, const State::Pin& b) { return a.generation < b.generation; });
  ReleasePin(oldest->generation);
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const uint64_t newest = s.WaitNewer(deadline, stop);
    if (newest == 0) return View();
    if (!s.registered()) return View();  // not registered: a view cannot be pinned
    // Follow() may have moved to another object: pick the free entry there.
    auto free = std::find_if(s.pins.begin(), s.pins.end(),
                             [](const State::Pin& pin) { return pin.generation == 0; });
    if (free == s.pins.end()) return View();  // cannot happen: one was released above
    State::Pin& pin = *free;
    // A slot number past the table is not pinned (the writer compares pins
    // with its own slot numbers only); CheckPinned refuses it.
    const auto slot_index = static_cast<int32_t>(layout::SlotOf(newest));
    // seq_cst pin store, then (in CheckPinned) seq_cst seq load: pairs with
    // the writer's seq_cst odd store then pin load (see BusWriter's Pinned()).
    s.Entry(pin).pinned.store(slot_index, std::memory_order_seq_cst);
    View view;
    const SlotOutcome outcome = CheckPinned(*s.map, newest, view.info_, view.image_);
    if (outcome.check != SlotCheck::kOk) {
      s.Entry(pin).pinned.store(-1, std::memory_order_release);
      if (!s.Retry(newest, outcome, deadline, stop)) return View();
      continue;
    }
    view.reader_ = this;
    view.generation_ = pin.generation = ++s.view_generation;
    view.mapping_ = s.map;
    s.Accepted(newest);
    return view;
  }
}

const std::optional<Error>& BusReader::error() const { return state_->error; }

void BusReader::ReleasePin(uint64_t generation) {
  // A view whose entry was taken over (or left behind by Follow) pins
  // nothing any more: its release is a no-op.
  if (generation == 0) return;
  for (State::Pin& pin : state_->pins) {
    if (pin.generation != generation) continue;
    // Release: the pixels are no longer read once the writer sees the pin go.
    if (pin.entry >= 0) state_->Entry(pin).pinned.store(-1, std::memory_order_release);
    pin.generation = 0;
    return;
  }
}

bool BusReader::WriterAlive() const {
  return ProcessAlive(state_->map->header().writer_pid.load(std::memory_order_acquire));
}

uint64_t BusReader::writer_epoch() const {
  return state_->map->header().writer_epoch.load(std::memory_order_acquire);
}

BusReader::View::View(View&& other) noexcept { *this = std::move(other); }

BusReader::View& BusReader::View::operator=(View&& other) noexcept {
  if (this != &other) {
    Release();
    reader_ = std::exchange(other.reader_, nullptr);
    generation_ = other.generation_;
    mapping_ = std::move(other.mapping_);
    info_ = other.info_;
    image_ = std::move(other.image_);
  }
  return *this;
}

BusReader::View::~View() { Release(); }

void BusReader::View::Release() {
  if (reader_ == nullptr) return;
  image_.release();
  reader_->ReleasePin(generation_);
  reader_ = nullptr;
  mapping_.reset();
}

}  // namespace freshframe::bus
