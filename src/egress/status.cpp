#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "egress/egress.h"

namespace freshframe::egress {

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
    : initial_(initial), max_(max), next_(initial) {}

std::chrono::milliseconds Backoff::Next() {
  const std::chrono::milliseconds wait = next_;
  next_ = std::min(max_, next_ * 2);
  return wait;
}

void Backoff::Reset() { next_ = initial_; }

std::string_view StateName(OutputStatus::State state) {
  switch (state) {
    case OutputStatus::State::kStopped:
      return "stopped";
    case OutputStatus::State::kConnecting:
      return "connecting";
    case OutputStatus::State::kConnected:
      return "connected";
    case OutputStatus::State::kRetrying:
      return "retrying";
  }
  return "stopped";
}

OutputStatus::OutputStatus(std::string kind, std::string target)
    : kind_(std::move(kind)), target_(std::move(target)), since_us_(MonotonicMicros()) {}

void OutputStatus::Set(State state, std::string error) {
  std::lock_guard lock(mutex_);
  if (state == State::kConnected) {
    ++connects_;
    error_.clear();
  }
  if (!error.empty()) error_ = std::move(error);
  if (state != state_) since_us_ = MonotonicMicros();
  state_ = state;
}

void OutputStatus::CountSent(size_t bytes, bool keyframe) {
  std::lock_guard lock(mutex_);
  ++frames_;
  if (keyframe) ++keyframes_;
  bytes_ += bytes;
}

void OutputStatus::SetExtra(nlohmann::json extra) {
  auto copy = std::make_unique<nlohmann::json>(std::move(extra));
  std::lock_guard lock(mutex_);
  extra_ = std::move(copy);
}

OutputStatus::State OutputStatus::state() const {
  std::lock_guard lock(mutex_);
  return state_;
}

nlohmann::json OutputStatus::Json(const Feed* feed) const {
  nlohmann::json out;
  {
    std::lock_guard lock(mutex_);
    out = {{"kind", kind_},
           {"target", target_},
           {"state", StateName(state_)},
           {"connects", connects_},
           {"reconnects", connects_ > 0 ? connects_ - 1 : 0},
           {"frames", frames_},
           {"keyframes", keyframes_},
           {"bytes", bytes_},
           {"since_s", static_cast<double>(MonotonicMicros() - since_us_) / 1e6}};
    if (!error_.empty()) out["error"] = error_;
    if (extra_) out.update(*extra_);
  }
  if (feed != nullptr) {
    out["skips_to_key"] = feed->skips_to_key();
    out["dropped"] = feed->dropped();
  }
  return out;
}

}  // namespace freshframe::egress
