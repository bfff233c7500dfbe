#include "infer/shared_detector.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "core/clock.h"
#include "core/stage_thread.h"
#include "core/wakeup.h"

namespace freshframe::infer {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kDetectorNice = 10;
// With nothing to do and nothing to poll, the thread still wakes this often:
// only a backstop, every real event (a frame, Add, Stop) wakes it at once.
constexpr std::chrono::seconds kIdleBackstop{60};

// The detector yields the CPU to capture, encoding and sending: on a 2-core
// machine an always-busy detector at the same priority would add its time
// slices to every frame's latency. Linux nice values are per thread (and
// inherited by threads OpenCV starts from here).
void LowerThisThreadsPriority() {
  if (setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), kDetectorNice) != 0) {
    spdlog::debug("detector: could not lower thread priority");
  }
}

Clock::duration MinInterval(double max_fps) {
  if (!(max_fps > 0)) return Clock::duration::zero();
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / max_fps));
}

}  // namespace

struct SharedDetector::Impl {
  // One binding and what the thread remembers of it. All but `id`,
  // `binding` and `min_interval` (fixed at Add) are guarded by `mutex`.
  struct Stream {
    uint64_t id = 0;
    DetectorBinding binding;
    Clock::duration min_interval{};
    uint64_t last_version = 0;    // raw version last taken (detected, or dropped while off)
    uint64_t last_sequence = 0;   // sequence last detected; 0: none since add or switch-on
    uint64_t capped_through = 0;  // newest sequence seen held back by the cap since
    std::optional<Clock::time_point> last_start;  // of the last detection
    BindingStats stats;
  };

  struct Job {
    std::shared_ptr<Stream> stream;
    FramePtr frame;
  };

  explicit Impl(std::unique_ptr<Detector> owned)
      : detector(std::move(owned)), name(detector->name()) {}

  void Run(std::stop_token stop);
  std::optional<Job> NextJob(Clock::time_point now, Clock::time_point& deadline);
  Job Take(const std::shared_ptr<Stream>& stream, LatestSlot<FramePtr>::Versioned latest,
           Clock::time_point now);
  void SwitchedOff(Stream& stream);
  void Detect(const Job& job);
  void Observe(bool attach);

  std::unique_ptr<Detector> detector;  // used by the thread only
  const std::string name;
  Wakeup wakeup;  // registered with every raw slot while the thread runs

  mutable std::mutex mutex;
  std::condition_variable idle;                  // busy_id changed to 0
  std::vector<std::shared_ptr<Stream>> streams;  // ascending ids: the cycle
  uint64_t next_id = 1;
  uint64_t cursor = 0;   // id of the stream that had the last detection
  uint64_t busy_id = 0;  // stream whose frame is being detected, 0: none
  bool observing = false;

  // Copies of detector->activity() for other threads. Relaxed: independent
  // counters; a reader may see them a frame apart.
  std::atomic<uint64_t> frames{0};
  std::atomic<uint64_t> model_runs{0};
  std::atomic<uint64_t> wakeups{0};  // relaxed: a statistic

  std::mutex lifecycle;  // serialises Start and Stop
  bool running = false;  // guarded by lifecycle
  StageThread thread;    // last: joined before the members it uses go
};

void SharedDetector::Impl::Run(std::stop_token stop) {
  LowerThisThreadsPriority();
  while (!stop.stop_requested()) {
    // Read before looking at the slots: a frame published after the look
    // changes the count, and the wait below returns at once.
    const uint64_t seen = wakeup.count();
    Clock::time_point deadline;
    if (std::optional<Job> job = NextJob(Clock::now(), deadline)) {
      Detect(*job);
      continue;
    }
    wakeup.WaitChanged(seen, deadline, stop);
    wakeups.fetch_add(1, std::memory_order_relaxed);
  }
}

// One pass of the cycle, starting after the stream that had the last
// detection: the first stream with work gets it; streams without work pass.
// With none, `deadline` is when to look again without being woken.
std::optional<SharedDetector::Impl::Job> SharedDetector::Impl::NextJob(
    Clock::time_point now, Clock::time_point& deadline) {
  std::lock_guard lock(mutex);
  deadline = now + kIdleBackstop;
  const auto first = std::upper_bound(
      streams.begin(), streams.end(), cursor,
      [](uint64_t id, const std::shared_ptr<Stream>& stream) { return id < stream->id; });
  const size_t start = static_cast<size_t>(first - streams.begin());
  for (size_t k = 0; k < streams.size(); ++k) {
    const std::shared_ptr<Stream>& stream = streams[(start + k) % streams.size()];
    const DetectorBinding& binding = stream->binding;
    if (binding.settings != nullptr && !binding.settings->detector()) {
      SwitchedOff(*stream);
      continue;
    }
    stream->stats.detector_running = true;
    if (binding.settings != nullptr) deadline = std::min(deadline, now + kSwitchPollInterval);
    std::optional<LatestSlot<FramePtr>::Versioned> latest = binding.raw->Latest();
    if (!latest || latest->version <= stream->last_version) continue;  // nothing new
    if (!latest->value) {                                              // nothing to detect on
      stream->last_version = latest->version;
      continue;
    }
    if (stream->last_start && now < *stream->last_start + stream->min_interval) {
      stream->capped_through = std::max(stream->capped_through, latest->value->meta.sequence);
      deadline = std::min(deadline, *stream->last_start + stream->min_interval);
      continue;
    }
    return Take(stream, std::move(*latest), now);
  }
  return std::nullopt;
}

SharedDetector::Impl::Job SharedDetector::Impl::Take(const std::shared_ptr<Stream>& stream,
                                                     LatestSlot<FramePtr>::Versioned latest,
                                                     Clock::time_point now) {
  Stream& s = *stream;
  const uint64_t sequence = latest.value->meta.sequence;
  if (s.last_sequence != 0 && sequence > s.last_sequence + 1) {
    const uint64_t passed = sequence - s.last_sequence - 1;
    const uint64_t capped_through = std::min(s.capped_through, sequence - 1);
    const uint64_t capped = capped_through > s.last_sequence ? capped_through - s.last_sequence : 0;
    s.stats.capped += capped;
    s.stats.skipped += passed - capped;
    if (passed > capped && s.binding.metrics != nullptr) {
      s.binding.metrics->CountSkipped(passed - capped);
    }
  }
  s.last_version = latest.version;
  s.last_sequence = sequence;
  s.capped_through = 0;
  s.last_start = now;
  cursor = s.id;
  busy_id = s.id;
  return Job{stream, std::move(latest.value)};
}

// Frames dropped while off are neither detected nor "skipped", and the next
// frame after the switch-on starts afresh.
void SharedDetector::Impl::SwitchedOff(Stream& stream) {
  const DetectorBinding& binding = stream.binding;
  if (stream.stats.detector_running) {
    // From this thread, under the lock: ordered after the stream's last real
    // set, and Remove cannot return meanwhile.
    PublishDetectorOff(*binding.raw, *binding.detections, binding.json, name);
    spdlog::debug("detector {}: switched off for binding {}", name, stream.id);
    stream.stats.detector_running = false;
  }
  stream.last_version = binding.raw->version();
  stream.last_sequence = 0;
  stream.capped_through = 0;
}

void SharedDetector::Impl::Detect(const Job& job) {
  const DetectorBinding& binding = job.stream->binding;
  auto set = std::make_shared<DetectionSet>();
  set->frame = job.frame;
  set->infer_start_us = MonotonicMicros();
  set->detections = detector->Detect(job.frame->image);
  set->infer_end_us = MonotonicMicros();
  const int64_t end = set->infer_end_us;
  const double work_ms = static_cast<double>(end - set->infer_start_us) / 1000.0;
  const DetectorActivity activity = detector->activity();
  if (activity.frames == 0) {  // an ungated detector runs its model on every frame
    frames.fetch_add(1, std::memory_order_relaxed);
    model_runs.fetch_add(1, std::memory_order_relaxed);
  } else {
    frames.store(activity.frames, std::memory_order_relaxed);
    model_runs.store(activity.model_runs, std::memory_order_relaxed);
  }
  if (binding.json != nullptr) {
    binding.json->Publish(std::make_shared<const std::string>(DetectionSetToJson(*set, name)));
  }
  binding.detections->Publish(std::move(set));
  if (binding.metrics != nullptr) {
    binding.metrics->Record(end, work_ms,
                            static_cast<double>(end - job.frame->meta.stamps.capture_us) / 1000.0);
  }
  {
    std::lock_guard lock(mutex);
    ++job.stream->stats.detected;
    busy_id = 0;
  }
  idle.notify_all();
}

// Registers (or unregisters) the wake-up with every bound raw slot. Caller
// holds `mutex`.
void SharedDetector::Impl::Observe(bool attach) {
  if (observing == attach) return;
  for (const std::shared_ptr<Stream>& stream : streams) {
    if (attach) {
      stream->binding.raw->AddObserver(&wakeup);
    } else {
      stream->binding.raw->RemoveObserver(&wakeup);
    }
  }
  observing = attach;
}

SharedDetector::SharedDetector(std::unique_ptr<Detector> detector)
    : impl_(std::make_unique<Impl>(std::move(detector))) {}

SharedDetector::~SharedDetector() { Stop(); }

void SharedDetector::Start() {
  std::lock_guard lifecycle(impl_->lifecycle);
  if (impl_->running) return;
  {
    std::lock_guard lock(impl_->mutex);
    impl_->Observe(true);
  }
  impl_->thread.Start([impl = impl_.get()](std::stop_token stop) { impl->Run(std::move(stop)); });
  impl_->running = true;
}

void SharedDetector::Stop() {
  std::lock_guard lifecycle(impl_->lifecycle);
  if (!impl_->running) return;
  impl_->thread.Stop();  // its wait wakes on the stop request
  std::lock_guard lock(impl_->mutex);
  impl_->Observe(false);
  impl_->running = false;
}

uint64_t SharedDetector::Add(DetectorBinding binding) {
  if (binding.raw == nullptr || binding.detections == nullptr) {
    spdlog::error("detector {}: a binding needs a raw and a detections slot; not added",
                  impl_->name);
    return 0;
  }
  uint64_t id = 0;
  {
    std::lock_guard lock(impl_->mutex);
    if (!impl_->streams.empty() && !shareable()) {
      spdlog::error("detector {} keeps per-camera state and serves one stream only; not added",
                    impl_->name);
      return 0;
    }
    auto stream = std::make_shared<Impl::Stream>();
    id = impl_->next_id++;
    stream->id = id;
    stream->binding = binding;
    stream->min_interval = MinInterval(binding.max_fps);
    if (impl_->observing) binding.raw->AddObserver(&impl_->wakeup);
    impl_->streams.push_back(std::move(stream));
  }
  impl_->wakeup.Notify();  // its newest frame may be waiting already
  return id;
}

void SharedDetector::Remove(uint64_t id) {
  std::unique_lock lock(impl_->mutex);
  auto& streams = impl_->streams;
  const auto it = std::find_if(streams.begin(), streams.end(),
                               [id](const auto& stream) { return stream->id == id; });
  if (it == streams.end()) return;
  if (impl_->observing) (*it)->binding.raw->RemoveObserver(&impl_->wakeup);
  streams.erase(it);  // no new turn for it from here on
  impl_->idle.wait(lock, [&] { return impl_->busy_id != id; });
}

std::string SharedDetector::name() const { return impl_->name; }

bool SharedDetector::shareable() const { return !impl_->detector->keeps_per_camera_state(); }

size_t SharedDetector::bindings() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->streams.size();
}

DetectorActivity SharedDetector::activity() const {
  return {impl_->frames.load(std::memory_order_relaxed),
          impl_->model_runs.load(std::memory_order_relaxed)};
}

std::optional<BindingStats> SharedDetector::stats(uint64_t id) const {
  std::lock_guard lock(impl_->mutex);
  for (const auto& stream : impl_->streams) {
    if (stream->id == id) return stream->stats;
  }
  return std::nullopt;
}

uint64_t SharedDetector::wakeups() const { return impl_->wakeups.load(std::memory_order_relaxed); }

}  // namespace freshframe::infer
