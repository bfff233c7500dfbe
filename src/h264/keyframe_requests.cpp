#include <string_view>

#include "h264/h264.h"

namespace freshframe::h264 {

std::string_view KeyReasonName(KeyReason reason) {
  switch (reason) {
    case KeyReason::kJoin:
      return "join";
    case KeyReason::kGap:
      return "gap";
    case KeyReason::kClient:
      return "client";
    case KeyReason::kPli:
      return "pli";
    case KeyReason::kPeriodic:
      return "periodic";
    case KeyReason::kRestart:
      return "restart";
  }
  return "unknown";
}

void KeyframeRequests::Request(KeyReason reason, int64_t now_us) {
  (void)now_us;
  std::lock_guard lock(mutex_);
  ++counts_.requested[static_cast<size_t>(reason)];
  if (pending_) {
    ++counts_.coalesced;
    return;
  }
  pending_ = true;
  pending_reason_ = reason;
}

bool KeyframeRequests::ShouldForce(int64_t now_us, int64_t next_periodic_us) {
  std::lock_guard lock(mutex_);
  if (!pending_) return false;
  // The rate limit: requests that come sooner wait (still pending) and are
  // served by the first IDR allowed, so a flood costs one IDR per interval.
  if (last_forced_us_ != 0 && now_us - last_forced_us_ < kMinForcedIntervalUs) return false;
  // The periodic IDR will serve it about as soon: no extra one.
  if (next_periodic_us != 0 && next_periodic_us - now_us < kMinForcedIntervalUs / 4) return false;
  return true;
}

void KeyframeRequests::OnKeyframe(int64_t now_us, bool forced) {
  std::lock_guard lock(mutex_);
  if (forced) {
    last_forced_us_ = now_us;
    ++counts_.forced[static_cast<size_t>(pending_ ? pending_reason_ : KeyReason::kPeriodic)];
  }
  pending_ = false;
}

KeyframeRequests::Counts KeyframeRequests::counts() const {
  std::lock_guard lock(mutex_);
  return counts_;
}

}  // namespace freshframe::h264
