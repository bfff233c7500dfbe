#include "bus/bus.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <mutex>
#include <opencv2/core.hpp>
#include <set>
#include <utility>

#include "bus/bus_layout.h"
#include "bus/shm_object.h"

namespace freshframe::bus {
namespace {

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 200) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

void Bump(layout::Header& header) {
  // Release: a reader that loads the new futex value (acquire) also sees
  // everything published before the bump (newest, state, writer_pid).
  header.futex.fetch_add(1, std::memory_order_release);
  FutexWakeAll(header.futex);
}

// Buses this process is the writer of: the pid in the header cannot tell
// two writers of one process apart.
std::mutex g_writers_mutex;
std::set<std::string> g_writers;

}  // namespace

Expected<std::string> ShmName(const std::string& name) {
  if (!ValidName(name)) {
    return Error{"invalid bus name '" + name + "' (use 1-200 of A-Z a-z 0-9 . _ -)"};
  }
  return "freshframe." + name;
}

uint64_t PixelChecksum(const void* data, size_t size) {
  // 64-bit multiply-rotate over 8-byte words: fast enough for full frames at
  // bus speed, and any changed byte changes the result.
  const auto* bytes = static_cast<const unsigned char*>(data);
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ size;
  size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    uint64_t word = 0;
    std::memcpy(&word, bytes + i, 8);
    h = ((h ^ word) * 0xFF51AFD7ED558CCDULL);
    h = (h << 29) | (h >> 35);
  }
  for (; i < size; ++i) h = (h ^ bytes[i]) * 0x100000001B3ULL;
  return h ^ (h >> 31);
}

// ---------------------------------------------------------------- writer

struct BusWriter::State : BusHandle {
  uint64_t epoch = 0;
  uint64_t last_index = 0;
  uint32_t next_slot = 0;
  uint64_t published = 0;
  uint64_t dropped = 0;
  // The slot of the claim in progress (-1: none) and the index it will get.
  int claimed_slot = -1;
  uint64_t claimed_index = 0;
  int claimed_width = 0;
  int claimed_height = 0;
  int claimed_channels = 0;
  uint64_t claim_generation = 0;

  // Whether a live reader pins `slot`; clears pins of dead readers.
  bool Pinned(uint32_t slot) {
    for (auto& reader : map->header().readers) {
      // seq_cst, paired with the reader's seq_cst pin store and seq load:
      // the writer stores the slot's odd seq, then loads pins; the reader
      // stores its pin, then loads seq. One of them sees the other, so a
      // slot is never both written and pinned.
      if (reader.pinned.load(std::memory_order_seq_cst) != static_cast<int32_t>(slot)) continue;
      // A dead reader's pin is ignored, not cleared: a new reader may be
      // claiming the entry right now, and clearing would drop its pin. The
      // claimer resets the pin itself.
      if (ProcessAlive(reader.pid.load(std::memory_order_relaxed))) return true;
    }
    return false;
  }
};

BusWriter::BusWriter(std::unique_ptr<State> state) : state_(std::move(state)) {}

Expected<std::unique_ptr<BusWriter>> BusWriter::Open(const std::string& name,
                                                     const BusOptions& options) {
  auto handle = AttachBus(name, options);
  if (!handle) return handle.error();
  auto state = std::make_unique<State>();
  static_cast<BusHandle&>(*state) = std::move(handle).value();
  const std::string& shm_name = state->shm_name;
  layout::Header& header = state->map->header();

  {
    std::lock_guard lock(g_writers_mutex);
    if (!g_writers.insert(shm_name).second) {
      return Error{"bus '" + name + "' already has a writer (in this process)"};
    }
  }
  const pid_t me = getpid();
  int32_t current = header.writer_pid.load(std::memory_order_acquire);
  for (;;) {
    if (current != 0 && current != me && ProcessAlive(current)) {
      std::lock_guard lock(g_writers_mutex);
      g_writers.erase(shm_name);
      return Error{"bus '" + name + "' already has a writer (pid " + std::to_string(current) + ")"};
    }
    // acq_rel: winning the CAS makes this process the only writer; the
    // acquire side sees everything the previous writer published.
    if (header.writer_pid.compare_exchange_weak(current, me, std::memory_order_acq_rel)) break;
  }
  // A slot left odd was being written when its writer died: never valid.
  for (uint32_t i = 0; i < state->map->geometry().slot_count; ++i) {
    auto& seq = state->map->slot(i).seq;
    if (seq.load(std::memory_order_relaxed) % 2 == 1) seq.store(0, std::memory_order_relaxed);
  }
  state->epoch = header.writer_epoch.fetch_add(1, std::memory_order_relaxed) + 1;
  state->last_index = layout::IndexOf(header.newest.load(std::memory_order_acquire));
  Bump(header);
  return std::unique_ptr<BusWriter>(new BusWriter(std::move(state)));
}

BusWriter::~BusWriter() {
  if (!state_) return;
  Abandon(state_->claim_generation);
  {
    std::lock_guard lock(g_writers_mutex);
    g_writers.erase(state_->shm_name);
  }
  layout::Header& header = state_->map->header();
  int32_t me = getpid();
  header.writer_pid.compare_exchange_strong(me, 0, std::memory_order_release);
  Bump(header);
}

Expected<BusWriter::Result> BusWriter::Publish(const Frame& frame, uint64_t checksum) {
  const cv::Mat& image = frame.image;
  if (image.empty() || image.depth() != CV_8U || (image.channels() != 1 && image.channels() != 3)) {
    return Error{"bus frames must be 8-bit BGR or gray"};
  }
  auto claim = ClaimSlot(image.cols, image.rows, image.channels());
  if (!claim) return claim.error();
  if (*claim) image.copyTo(claim->image());  // copyTo into a same-size Mat never reallocates
  return Commit(*claim, frame.meta, checksum);
}

Expected<BusWriter::Claim> BusWriter::ClaimSlot(int width, int height, int channels) {
  if (width <= 0 || height <= 0 || (channels != 1 && channels != 3)) {
    return Error{"bus frames must be 8-bit BGR or gray with a positive size"};
  }
  State& s = *state_;
  Abandon(s.claim_generation);  // at most one claim at a time
  const uint64_t row_bytes = static_cast<uint64_t>(width) * static_cast<uint64_t>(channels);
  const uint64_t bytes = row_bytes * static_cast<uint64_t>(height);

  if (bytes > s.map->geometry().slot_capacity) {
    // Frames grew: install a bus with larger slots under the same name and
    // tell readers of the old one to follow.
    auto bigger = Replace(s.shm_name, bytes, s.map->geometry().slot_count, s.epoch, s.map->mode());
    if (!bigger) return bigger.error();
    layout::Header& old = s.map->header();
    old.state.store(layout::kStateReplaced, std::memory_order_release);
    int32_t me = getpid();
    old.writer_pid.compare_exchange_strong(me, 0, std::memory_order_relaxed);
    Bump(old);
    s.map = std::move(bigger).value();
    s.next_slot = 0;
  }

  layout::Header& header = s.map->header();
  const uint64_t index = s.last_index + 1;
  const uint64_t newest = header.newest.load(std::memory_order_relaxed);
  const uint32_t newest_slot = layout::SlotOf(newest);
  const uint32_t count = s.map->geometry().slot_count;
  int chosen = -1;
  for (uint32_t k = 0; k < count && chosen < 0; ++k) {
    const uint32_t candidate = (s.next_slot + k) % count;
    // Never overwrite the newest frame: it is what readers are taking now.
    if (newest != 0 && candidate == newest_slot && count > 1) continue;
    auto& seq = s.map->slot(candidate).seq;
    const uint64_t previous = seq.load(std::memory_order_relaxed);
    // seq_cst: see Pinned() for the pairing with readers' pins.
    seq.store(2 * index - 1, std::memory_order_seq_cst);
    if (s.Pinned(candidate)) {
      seq.store(previous, std::memory_order_seq_cst);  // untouched: put it back
      continue;
    }
    chosen = static_cast<int>(candidate);
  }
  Claim claim;
  if (chosen < 0) {
    ++s.dropped;  // every slot pinned: drop rather than wait
    return claim;
  }
  // Release fence: the odd seq stored above becomes visible before any of
  // the data the producer writes into the slot (the seqlock writer's side).
  std::atomic_thread_fence(std::memory_order_release);
  s.claimed_slot = chosen;
  s.claimed_index = index;
  s.claimed_width = width;
  s.claimed_height = height;
  s.claimed_channels = channels;
  claim.writer_ = this;
  claim.generation_ = ++s.claim_generation;
  claim.image_ = cv::Mat(height, width, channels == 1 ? CV_8UC1 : CV_8UC3,
                         s.map->pixels(static_cast<uint32_t>(chosen)));
  return claim;
}

Expected<BusWriter::Result> BusWriter::Commit(Claim& claim, const FrameMeta& m, uint64_t checksum) {
  State& s = *state_;
  if (claim.writer_ != this || claim.generation_ != s.claim_generation || s.claimed_slot < 0) {
    claim = Claim();
    return Result::kDropped;
  }
  const auto slot_index = static_cast<uint32_t>(s.claimed_slot);
  const uint64_t index = s.claimed_index;
  // The claim's geometry, not claim.image()'s: the caller may have
  // reassigned that Mat.
  const auto channels = static_cast<uint32_t>(s.claimed_channels);
  layout::SlotHeader& slot = s.map->slot(slot_index);
  slot.publish_index = index;
  slot.writer_epoch = s.epoch;
  slot.sequence = m.sequence;
  slot.source_id = m.source_id;
  slot.width = s.claimed_width;
  slot.height = s.claimed_height;
  slot.format = static_cast<uint32_t>(channels == 1 ? PixelFormat::kGray8 : PixelFormat::kBgr24);
  slot.channels = channels;
  slot.row_bytes = static_cast<uint32_t>(s.claimed_width) * channels;
  slot.pixel_bytes =
      static_cast<uint64_t>(slot.row_bytes) * static_cast<uint64_t>(s.claimed_height);
  slot.detections_sequence = m.detections_sequence;
  slot.capture_us = m.stamps.capture_us;
  slot.grab_us = m.stamps.grab_us;
  slot.infer_start_us = m.stamps.infer_start_us;
  slot.infer_end_us = m.stamps.infer_end_us;
  slot.publish_us = m.stamps.publish_us;
  slot.encode_us = m.stamps.encode_us;
  slot.checksum = checksum;
  // Release: the frame is complete before its even seq, and before `newest`
  // names it; readers load both with acquire.
  slot.seq.store(2 * index, std::memory_order_release);
  s.map->header().newest.store(layout::Pack(index, slot_index), std::memory_order_release);
  Bump(s.map->header());
  s.claimed_slot = -1;
  claim.writer_ = nullptr;
  claim.image_.release();
  s.last_index = index;
  s.next_slot = (slot_index + 1) % s.map->geometry().slot_count;
  ++s.published;
  return Result::kPublished;
}

void BusWriter::Abandon(uint64_t generation) {
  State& s = *state_;
  if (generation != s.claim_generation || s.claimed_slot < 0) return;
  // Relaxed: 0 marks the slot empty and never matches a reader's expected
  // seq, so no reader returns it whatever else it sees.
  s.map->slot(static_cast<uint32_t>(s.claimed_slot)).seq.store(0, std::memory_order_relaxed);
  s.claimed_slot = -1;
}

BusWriter::Claim::Claim(Claim&& other) noexcept { *this = std::move(other); }

BusWriter::Claim& BusWriter::Claim::operator=(Claim&& other) noexcept {
  if (this != &other) {
    if (writer_ != nullptr) writer_->Abandon(generation_);
    writer_ = std::exchange(other.writer_, nullptr);
    generation_ = other.generation_;
    image_ = std::move(other.image_);
  }
  return *this;
}

BusWriter::Claim::~Claim() {
  if (writer_ != nullptr) writer_->Abandon(generation_);
}

uint64_t BusWriter::epoch() const { return state_->epoch; }
uint64_t BusWriter::published() const { return state_->published; }
uint64_t BusWriter::dropped() const { return state_->dropped; }

void BusWriter::Unlink(const std::string& name) {
  if (auto shm_name = ShmName(name)) shm_unlink(("/" + *shm_name).c_str());
}

}  // namespace freshframe::bus
