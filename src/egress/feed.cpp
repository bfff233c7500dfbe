#include <optional>
#include <utility>

#include "core/clock.h"
#include "egress/egress.h"

namespace freshframe::egress {

Feed::Feed(SubscribeFn subscribe, Demand& demand, h264::KeyframeRequests& keyframes)
    : subscribe_(std::move(subscribe)), demand_(demand), keyframes_(keyframes) {}

Feed::~Feed() { Stop(); }

void Feed::Start() {
  {
    std::lock_guard lock(mutex_);
    if (hold_) return;
    hold_ = std::make_unique<Demand::Hold>(demand_);
    past_skips_ += gate_.skips_to_key();
    past_dropped_ += gate_.dropped();
    gate_ = {};
    gate_.MarkAsked();
  }
  keyframes_.Request(h264::KeyReason::kJoin, MonotonicMicros());
  // Subscribed outside the lock: the sink takes it on the encoder's thread
  // while the stage holds its own list lock (the order stage → feed only).
  std::shared_ptr<void> subscription =
      subscribe_([this](const encode::EncodedFramePtr& unit) { Offer(unit); });
  std::lock_guard lock(mutex_);
  subscription_ = std::move(subscription);
}

void Feed::Stop() {
  std::shared_ptr<void> subscription;
  std::unique_ptr<Demand::Hold> hold;
  {
    std::lock_guard lock(mutex_);
    subscription = std::move(subscription_);
    hold = std::move(hold_);
    past_dropped_ += gate_.queued();
    gate_.Clear();
  }
  changed_.notify_all();
  // Released outside the lock (see Start); once this returns the sink never
  // runs again.
  subscription.reset();
}

bool Feed::started() const {
  std::lock_guard lock(mutex_);
  return hold_ != nullptr;
}

void Feed::Offer(const encode::EncodedFramePtr& unit) {
  std::optional<h264::KeyReason> ask;
  {
    std::lock_guard lock(mutex_);
    if (!hold_) return;
    ask = gate_.Offer(unit);
  }
  changed_.notify_one();
  if (ask) keyframes_.Request(*ask, MonotonicMicros());
}

encode::EncodedFramePtr Feed::Next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return interrupted_ || !hold_ || gate_.queued() > 0; });
  // An Interrupt is consumed by the one Next it woke (or the next one).
  if (std::exchange(interrupted_, false) || !hold_) return nullptr;
  std::optional<encode::EncodedFramePtr> unit = gate_.Next();
  return unit ? std::move(*unit) : nullptr;
}

void Feed::Interrupt() {
  {
    std::lock_guard lock(mutex_);
    interrupted_ = true;
  }
  changed_.notify_all();
}

void Feed::Restart(h264::KeyReason reason) {
  {
    std::lock_guard lock(mutex_);
    past_skips_ += gate_.skips_to_key() + 1;
    past_dropped_ += gate_.dropped() + gate_.queued();
    gate_ = {};
    gate_.MarkAsked();
  }
  keyframes_.Request(reason, MonotonicMicros());
}

uint64_t Feed::skips_to_key() const {
  std::lock_guard lock(mutex_);
  return past_skips_ + gate_.skips_to_key();
}

uint64_t Feed::dropped() const {
  std::lock_guard lock(mutex_);
  return past_dropped_ + gate_.dropped();
}

}  // namespace freshframe::egress
