// Wakeup: one thread sleeps until any of several producers says "something
// changed", without polling them.
//
// A counter that Notify() increments. A waiter reads count() BEFORE it looks
// at what the producers guard, then calls WaitChanged(seen, ...): a Notify
// that came in between makes the wait return at once, so no notification is
// lost. Notifications coalesce: ten Notify calls while the waiter is busy
// make one wake-up, never ten (there is nothing to queue).
//
// Thread-safety: every member may be called from any thread. Notify never
// blocks on the waiter (it takes the counter's mutex for an increment only),
// so a producer may call it while holding its own lock (LatestSlot does, see
// core/latest_slot.h). Ownership: whoever registers a Wakeup with producers
// must unregister it before destroying it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <stop_token>
#include <utility>

namespace freshframe {

class Wakeup {
 public:
  using Clock = std::chrono::steady_clock;

  Wakeup() = default;
  Wakeup(const Wakeup&) = delete;
  Wakeup& operator=(const Wakeup&) = delete;

  uint64_t count() const {
    std::lock_guard lock(mutex_);
    return count_;
  }

  // Increments the count and wakes every waiter.
  void Notify() {
    {
      std::lock_guard lock(mutex_);
      ++count_;
    }
    changed_.notify_all();
  }

  // Waits until count() != seen, `deadline` passes or stop is requested on
  // `stop`. Returns the count then (== seen on timeout or stop).
  uint64_t WaitChanged(uint64_t seen, Clock::time_point deadline, std::stop_token stop = {}) {
    std::unique_lock lock(mutex_);
    changed_.wait_until(lock, stop, deadline, [&] { return count_ != seen; });
    return count_;
  }

  template <typename Rep, typename Period>
  uint64_t WaitChanged(uint64_t seen, std::chrono::duration<Rep, Period> timeout,
                       std::stop_token stop = {}) {
    return WaitChanged(seen, Clock::now() + timeout, std::move(stop));
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable_any changed_;  // _any: it can also wake on a stop request
  uint64_t count_ = 0;
};

}  // namespace freshframe
