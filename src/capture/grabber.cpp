#include <algorithm>
#include <utility>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "capture/capture.h"
#include "core/clock.h"
#include "httpclient/redact.h"

namespace freshframe::capture {
namespace {

constexpr int kDefaultWidth = 640;
constexpr int kDefaultHeight = 480;

double Seconds(int64_t us) { return static_cast<double>(us) / 1e6; }

}  // namespace

Grabber::Grabber(std::unique_ptr<FrameSource> source, LatestSlot<FramePtr>& raw, Metrics& metrics,
                 GrabberOptions options)
    : source_(std::move(source)),
      raw_(raw),
      capture_metrics_(metrics.Stage("capture")),
      grab_metrics_(metrics.Stage("grab")),
      options_(options),
      description_(httpclient::RedactUrl(source_->Describe())),
      since_us_(MonotonicMicros()),
      width_(source_->width()),
      height_(source_->height()) {}

void Grabber::Start() {
  thread_.Start([this](std::stop_token stop) { Run(stop); });
}

void Grabber::Stop() { thread_.Stop(); }

void Grabber::SetState(std::string state, std::string message) {
  std::lock_guard lock(mutex_);
  if (state != state_) since_us_ = MonotonicMicros();
  state_ = std::move(state);
  message_ = std::move(message);
}

bool Grabber::Warn(const std::string& text) {
  const int64_t now = MonotonicMicros();
  const int64_t interval_us =
      std::chrono::duration_cast<std::chrono::microseconds>(options_.log_interval).count();
  if (last_warning_us_ != 0 && now - last_warning_us_ < interval_us) {
    ++suppressed_warnings_;
    spdlog::debug("source {}: {}", description_, text);
    return false;
  }
  if (suppressed_warnings_ > 0) {
    spdlog::warn("source {}: {} ({} more warnings in the last {:.0f} s)", description_, text,
                 suppressed_warnings_, Seconds(now - last_warning_us_));
  } else {
    spdlog::warn("source {}: {}", description_, text);
  }
  last_warning_us_ = now;
  suppressed_warnings_ = 0;
  return true;
}

bool Grabber::live() const {
  std::lock_guard lock(mutex_);
  return state_ != "ended";
}

nlohmann::json Grabber::Status() const {
  std::lock_guard lock(mutex_);
  return {{"spec", description_},      {"width", width_},
          {"height", height_},         {"fps", source_->fps()},
          {"state", state_},           {"message", message_},
          {"reconnects", reconnects_}, {"since_s", Seconds(MonotonicMicros() - since_us_)}};
}

void Grabber::Publish(Frame frame, bool real) {
  const int64_t now = MonotonicMicros();
  const int64_t capture = frame.meta.stamps.capture_us;
  if (real) {
    // Gaps in the source's own numbering are frames it dropped (the pattern
    // when the machine was too busy, a camera's driver).
    if (source_sequence_ != 0 && frame.meta.sequence > source_sequence_ + 1) {
      capture_metrics_.CountSkipped(frame.meta.sequence - source_sequence_ - 1);
    }
    source_sequence_ = frame.meta.sequence;
    std::lock_guard lock(mutex_);
    width_ = frame.image.cols;
    height_ = frame.image.rows;
  }
  // One numbering for everything published, across reconnects.
  frame.meta.sequence = ++last_sequence_;
  frame.meta.stamps.grab_us = now;
  raw_.Publish(std::make_shared<const Frame>(std::move(frame)));
  if (real) {
    capture_metrics_.Record(capture, -1, 0);
    grab_metrics_.Record(now, -1, static_cast<double>(now - capture) / 1000.0);
  }
}

void Grabber::Run(std::stop_token stop) {
  if (!options_.open_error.empty()) {
    const std::string why = httpclient::RedactUrl(options_.open_error);
    last_failure_logged_ = Warn(why);
    SetState("reconnecting", why);
    if (!Reconnect(stop, why)) return;
  }
  while (!stop.stop_requested()) {
    ReadResult result = source_->Read(stop);
    // A source's own message (kEnd, kError) may quote its spec; it is shown
    // (log, stats). Frames carry none: nothing to do on the per-frame path.
    if (result.status != ReadResult::Status::kFrame) {
      result.message = httpclient::RedactUrl(result.message);
    }
    switch (result.status) {
      case ReadResult::Status::kFrame: {
        bool was_down = false;
        {
          std::lock_guard lock(mutex_);
          was_down = state_ != "live";
        }
        if (was_down) SetState("live", "");
        Publish(std::move(*result.frame), true);
        break;
      }
      case ReadResult::Status::kStopped:
        return;
      case ReadResult::Status::kEnd:
        if (!source_->reconnects()) {
          spdlog::info("source {}: {} (the last frame stays on view)", description_,
                       result.message);
          SetState("ended", result.message);
          return;
        }
        [[fallthrough]];
      case ReadResult::Status::kError:
        last_failure_logged_ = Warn(result.message);
        SetState("reconnecting", result.message);
        if (!Reconnect(stop, result.message)) return;
        break;
    }
  }
}

// Shows "no signal" frames and reopens the source with doubling, capped
// backoff until it opens or the grabber is stopped.
bool Grabber::Reconnect(std::stop_token stop, const std::string& first_reason) {
  using Clock = std::chrono::steady_clock;
  source_->Close();
  std::string why = first_reason;
  const int64_t stable_us =
      std::chrono::duration_cast<std::chrono::microseconds>(options_.stable_after).count();
  const bool failed_soon = reopened_us_ != 0 && MonotonicMicros() - reopened_us_ < stable_us;
  auto backoff =
      failed_soon ? std::min(last_backoff_ * 2, options_.max_backoff) : options_.first_backoff;
  const int64_t down_since = MonotonicMicros();
  const auto frame_interval = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(1.0 / std::max(0.1, options_.no_signal_fps)));
  for (;;) {
    const auto attempt_at = Clock::now() + backoff;
    auto next_frame = Clock::now();
    while (Clock::now() < attempt_at) {
      int width = 0, height = 0;
      {
        std::lock_guard lock(mutex_);
        width = width_ > 0 ? width_ : kDefaultWidth;
        height = height_ > 0 ? height_ : kDefaultHeight;
      }
      const int64_t now = MonotonicMicros();
      Publish(MakeNoSignalFrame(width, height, why, Seconds(now - down_since), now), false);
      next_frame += frame_interval;
      if (!SleepUntil(std::min(next_frame, attempt_at), stop)) return false;
    }
    auto opened = source_->Open();
    {
      std::lock_guard lock(mutex_);
      ++reconnects_;
    }
    last_backoff_ = backoff;
    if (opened) {
      reopened_us_ = MonotonicMicros();
      // Quiet when the failure was not logged either (a crash loop).
      if (last_failure_logged_) {
        spdlog::info("source {}: reopened after {:.1f} s", description_,
                     Seconds(reopened_us_ - down_since));
      }
      return true;
    }
    why = httpclient::RedactUrl(opened.error().message);
    SetState("reconnecting", why);
    backoff = std::min(backoff * 2, options_.max_backoff);
    last_failure_logged_ =
        Warn(why + "; next attempt in " + std::to_string(backoff.count()) + " ms");
  }
}

}  // namespace freshframe::capture
