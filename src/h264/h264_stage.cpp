// H264Stage: the stream's one H.264 encode, on its own thread, fanned out to
// the subscribed sinks.
#include <algorithm>
#include <chrono>
#include <deque>
#include <optional>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "h264/h264.h"

namespace freshframe::h264 {
namespace {

// kbps in Stats is over this window.
constexpr int64_t kRateWindowUs = 2'000'000;
// A failing encoder is made again at most this often.
constexpr int64_t kRetryIntervalUs = 1'000'000;

// The subscribed sinks. Shared with the handles Subscribe gives out, so a
// handle released after the stage is gone touches nothing freed.
class SinkList {
 public:
  uint64_t Add(AccessUnitSink sink) {
    std::lock_guard lock(mutex_);
    const uint64_t id = ++last_id_;
    sinks_.push_back(std::make_unique<Entry>(Entry{id, std::move(sink)}));
    Count();
    return id;
  }

  // Once this returns, the sink never runs again. From inside a sink (the
  // dispatching thread already holds the lock) it is only marked: the
  // dispatch loop drops it when it is done.
  void Remove(uint64_t id) {
    if (dispatching_.load(std::memory_order_acquire) == std::this_thread::get_id()) {
      for (const auto& entry : sinks_) {
        if (entry->id == id) entry->removed = true;
      }
      return;
    }
    std::lock_guard lock(mutex_);
    std::erase_if(sinks_, [&](const auto& entry) { return entry->id == id; });
    Count();
  }

  // Calls every sink in order, under the lock: a Remove on another thread
  // waits for the call under way, so no sink runs after its Remove returned.
  void Dispatch(const encode::EncodedFramePtr& unit) {
    std::lock_guard lock(mutex_);
    // Release/acquire: Remove on this thread must see its own id; other
    // threads only compare it against their own id, which is never ours.
    dispatching_.store(std::this_thread::get_id(), std::memory_order_release);
    // By index, and only those there before: a sink may subscribe another
    // one, which starts with the next access unit (entries are held by
    // pointer, so the vector growing moves no sink while it runs).
    const size_t count = sinks_.size();
    for (size_t i = 0; i < count; ++i) {
      if (!sinks_[i]->removed) sinks_[i]->sink(unit);
    }
    std::erase_if(sinks_, [](const auto& entry) { return entry->removed; });
    Count();
    dispatching_.store(std::thread::id{}, std::memory_order_release);
  }

  // Without the lock: Stats() must not wait for a dispatch under way.
  size_t size() const { return size_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    uint64_t id;
    AccessUnitSink sink;
    bool removed = false;
  };
  // Recursive: a sink may subscribe another one from inside (Add).
  mutable std::recursive_mutex mutex_;
  std::vector<std::unique_ptr<Entry>> sinks_;
  uint64_t last_id_ = 0;
  std::atomic<std::thread::id> dispatching_{};
  std::atomic<size_t> size_{0};  // relaxed: a statistic

  void Count() { size_.store(sinks_.size(), std::memory_order_relaxed); }
};

}  // namespace

struct H264Stage::Impl {
  Impl(H264Stage& stage, LatestSlot<FramePtr>& annotated_slot, Metrics& metrics, double source_fps)
      : owner(stage),
        annotated(annotated_slot),
        stage_metrics(metrics.Stage("encode_h264")),
        fps(source_fps) {}

  void Run(std::stop_token stop);
  // Encodes one frame and hands its access unit to the sinks.
  void EncodeFrame(const Frame& frame);
  // The encoder for this frame's size, made (again) if needed; null while
  // making it fails (retried at most once a second).
  H264Encoder* EncoderFor(const cv::Mat& image, int64_t now_us);
  void Fail(const std::string& what);

  H264Stage& owner;
  LatestSlot<FramePtr>& annotated;
  StageMetrics& stage_metrics;
  const double fps;
  const std::shared_ptr<SinkList> sinks = std::make_shared<SinkList>();

  // The stage thread's own.
  std::unique_ptr<H264Encoder> encoder;
  bool made_one = false;         // an encoder was made before (the next is a restart)
  bool need_idr = true;          // first frame of an encoder or after idling
  int64_t next_periodic_us = 0;  // when the periodic IDR is due (0: none)
  int64_t next_attempt_us = 0;   // no encoder made before this (failure back-off)
  bool failing = false;          // in a failure streak (logged once, ends with an access unit)
  uint64_t sequence = 0;         // of the last access unit emitted

  // Statistics, read by Stats() from any thread.
  mutable std::mutex stats_mutex;
  uint64_t frames = 0;
  uint64_t keyframes = 0;
  uint64_t bytes = 0;
  uint64_t failures = 0;
  uint64_t restarts = 0;
  uint64_t periodic_idrs = 0;
  uint64_t restart_idrs = 0;
  bool encoding = false;
  std::deque<std::pair<int64_t, size_t>> recent;  // (time, bytes) of the last kRateWindowUs

  StageThread thread;  // last: joined before the members it uses go
};

H264Stage::H264Stage(EncoderOptions options, LatestSlot<FramePtr>& annotated, Metrics& metrics,
                     double fps)
    : options_(std::move(options)), impl_(std::make_unique<Impl>(*this, annotated, metrics, fps)) {}

H264Stage::~H264Stage() { Stop(); }

void H264Stage::Start() {
  impl_->thread.Start([impl = impl_.get()](std::stop_token stop) { impl->Run(stop); });
}

void H264Stage::Stop() { impl_->thread.Stop(); }

std::shared_ptr<void> H264Stage::Subscribe(AccessUnitSink sink) {
  const std::shared_ptr<SinkList>& sinks = impl_->sinks;
  const uint64_t id = sinks->Add(std::move(sink));
  // The handle owns nothing but its removal (a non-null dummy pointer).
  static int token = 0;
  return std::shared_ptr<void>(&token, [weak = std::weak_ptr<SinkList>(sinks), id](void*) {
    if (auto list = weak.lock()) list->Remove(id);
  });
}

void H264Stage::Impl::Run(std::stop_token stop) {
  using namespace std::chrono_literals;
  uint64_t last_version = 0;     // newest annotated frame seen
  uint64_t encoded_version = 0;  // newest annotated frame encoded
  uint64_t last_sequence = 0;    // its source sequence, for skip counts
  while (!stop.stop_requested()) {
    // A short wait, so that demand arriving with no new frame is seen soon.
    std::optional<LatestSlot<FramePtr>::Versioned> next = annotated.WaitNewer(last_version, 50ms);
    if (next) {
      last_version = next->version;
    } else if (owner.demand_.Wanted() && encoded_version < annotated.version()) {
      // A viewer arrived while no new frame comes (a stalled source): encode
      // the last one, so that it gets a picture (an IDR) at once.
      next = annotated.Latest();
    }
    if (!owner.demand_.Wanted()) {  // nobody watches H.264: spend nothing
      need_idr = true;              // whoever comes next needs an IDR
      last_sequence = 0;
      continue;
    }
    if (!next) continue;
    encoded_version = next->version;
    const Frame& frame = *next->value;
    if (last_sequence != 0 && frame.meta.sequence > last_sequence + 1) {
      stage_metrics.CountSkipped(frame.meta.sequence - last_sequence - 1);
    }
    last_sequence = frame.meta.sequence;
    EncodeFrame(frame);
  }
}

H264Encoder* H264Stage::Impl::EncoderFor(const cv::Mat& image, int64_t now_us) {
  if (encoder &&
      (encoder->width() != (image.cols & ~1) || encoder->height() != (image.rows & ~1))) {
    spdlog::info("h264: frame size now {}x{}: new encoder", image.cols, image.rows);
    encoder.reset();
  }
  if (encoder) return encoder.get();
  if (now_us < next_attempt_us) return nullptr;
  auto made = H264Encoder::Create(owner.options_, image.cols, image.rows, fps);
  if (!made) {
    next_attempt_us = now_us + kRetryIntervalUs;
    Fail(made.error().message + " (retrying every second)");
    return nullptr;
  }
  encoder = std::move(made).value();
  need_idr = true;
  std::lock_guard lock(stats_mutex);
  if (made_one) ++restarts;
  made_one = true;
  return encoder.get();
}

void H264Stage::Impl::Fail(const std::string& what) {
  if (!failing) spdlog::error("h264: {}", what);
  failing = true;
  std::lock_guard lock(stats_mutex);
  ++failures;
  encoding = false;
}

void H264Stage::Impl::EncodeFrame(const Frame& frame) {
  const int64_t start = MonotonicMicros();
  H264Encoder* h264 = EncoderFor(frame.image, start);
  if (h264 == nullptr) {
    stage_metrics.CountSkipped();
    return;
  }
  const double gop_us = owner.options_.gop_seconds * 1e6;
  const bool periodic_on = gop_us > 0;
  // Why this frame is an IDR, if it is: a new encoder or the first frame
  // after idling (counted as kRestart here: it is not a request, it must
  // not wait for the rate limit), the periodic one, or a forced one.
  bool restart_idr = need_idr;
  bool periodic_idr = !restart_idr && periodic_on && start >= next_periodic_us;
  const bool forced_idr = !restart_idr && !periodic_idr &&
                          owner.keyframes_.ShouldForce(start, periodic_on ? next_periodic_us : 0);
  auto unit = h264->Encode(frame.image, restart_idr || periodic_idr || forced_idr);
  if (!unit) {
    // Failing again before any success: the next encoder waits a second,
    // so that an encoder failing on every frame is not made 30 times a second.
    if (failing) next_attempt_us = start + kRetryIntervalUs;
    Fail(unit.error().message + " (the encoder is made again)");
    encoder.reset();
    need_idr = true;
    return;
  }
  const int64_t end = MonotonicMicros();
  need_idr = false;
  if (failing) spdlog::info("h264: encoder {} working again", owner.options_.encoder);
  failing = false;
  if (unit->keyframe) {
    if (periodic_on) next_periodic_us = start + static_cast<int64_t>(gop_us);
    // Any IDR satisfies pending requests; only a forced one counts towards
    // the rate limit.
    owner.keyframes_.OnKeyframe(start, forced_idr);
  } else {
    // Asked for one and did not get it (an encoder that ignores the hint):
    // the next frame tries again.
    restart_idr = periodic_idr = false;
    if (forced_idr) need_idr = true;
  }
  auto out = std::make_shared<encode::EncodedFrame>();
  out->meta = frame.meta;
  out->meta.width = h264->width();
  out->meta.height = h264->height();
  out->meta.stamps.encode_us = end;
  out->codec = encode::Codec::kH264;
  out->keyframe = unit->keyframe;
  out->sequence = ++sequence;
  out->bytes = std::move(unit->bytes);
  {
    std::lock_guard lock(stats_mutex);
    encoding = true;
    ++frames;
    if (out->keyframe) ++keyframes;
    if (restart_idr) ++restart_idrs;
    if (periodic_idr) ++periodic_idrs;
    bytes += out->bytes.size();
    recent.emplace_back(end, out->bytes.size());
    while (!recent.empty() && recent.front().first < end - kRateWindowUs) recent.pop_front();
  }
  stage_metrics.Record(end, static_cast<double>(end - start) / 1000.0,
                       static_cast<double>(end - frame.meta.stamps.capture_us) / 1000.0);
  sinks->Dispatch(out);
}

nlohmann::json H264Stage::Stats() const {
  const KeyframeRequests::Counts counts = keyframes_.counts();
  const int64_t now = MonotonicMicros();
  nlohmann::json stats;
  stats["encoder"] = options_.encoder;
  stats["preset"] = options_.preset;
  if (options_.bitrate_kbps > 0) {
    stats["bitrate_kbps"] = options_.bitrate_kbps;
  } else {
    stats["crf"] = options_.crf;
  }
  stats["gop_s"] = options_.gop_seconds;
  nlohmann::json requested = nlohmann::json::object();
  nlohmann::json forced = nlohmann::json::object();
  for (size_t i = 0; i < kKeyReasons; ++i) {
    const std::string name(KeyReasonName(static_cast<KeyReason>(i)));
    requested[name] = counts.requested[i];
    forced[name] = counts.forced[i];
  }
  {
    std::lock_guard lock(impl_->stats_mutex);
    stats["frames"] = impl_->frames;
    stats["keyframes"] = impl_->keyframes;
    stats["bytes"] = impl_->bytes;
    size_t window_bytes = 0;
    for (const auto& [at, size] : impl_->recent) {
      if (at >= now - kRateWindowUs) window_bytes += size;
    }
    stats["kbps"] = static_cast<double>(window_bytes) * 8.0 / 1000.0 /
                    (static_cast<double>(kRateWindowUs) / 1e6);
    stats["failures"] = impl_->failures;
    stats["restarts"] = impl_->restarts;
    stats["encoding"] = impl_->encoding && demand_.Wanted();
    // IDRs made and why: the forced ones by the request they served, plus
    // the periodic ones and those that began an encoder or a watch.
    forced[std::string(KeyReasonName(KeyReason::kPeriodic))] =
        counts.forced[static_cast<size_t>(KeyReason::kPeriodic)] + impl_->periodic_idrs;
    forced[std::string(KeyReasonName(KeyReason::kRestart))] =
        counts.forced[static_cast<size_t>(KeyReason::kRestart)] + impl_->restart_idrs;
  }
  stats["idr_requested"] = std::move(requested);
  stats["idr_forced"] = std::move(forced);
  stats["idr_coalesced"] = counts.coalesced;
  stats["subscribers"] = impl_->sinks->size();
  return stats;
}

}  // namespace freshframe::h264
