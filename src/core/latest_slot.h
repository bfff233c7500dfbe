// LatestSlot<T>: the hand-over between two pipeline stages.
//
// Policy ("freshest wins"): the slot holds exactly one value. Publish()
// overwrites it and never waits for a consumer. A consumer asks for a value
// newer than the last version it saw and gets the newest one, or waits (with a
// timeout) until one arrives. Values published while a consumer was busy are
// skipped: nobody ever receives an older value after a newer one, and nothing
// queues up.
//
// Thread-safety: every member may be called from any thread, by any number of
// producers and consumers at once. T is copied out under the lock, so T should
// be cheap to copy (a shared_ptr to immutable data is the intended use).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <utility>

namespace freshframe {

template <typename T>
class LatestSlot {
 public:
  struct Versioned {
    uint64_t version;  // 1 for the first value published, +1 per publish
    T value;
  };

  // Replaces the held value and wakes every waiting consumer. Returns the new
  // version. After Close(), values are dropped and 0 is returned.
  uint64_t Publish(T value) {
    uint64_t version = 0;
    {
      std::lock_guard lock(mutex_);
      if (closed_) return 0;
      value_ = std::move(value);
      version = ++version_;
    }
    changed_.notify_all();
    return version;
  }

  // The newest value if its version is greater than `last_seen`; otherwise
  // waits up to `timeout` for one. nullopt on timeout or once closed.
  template <typename Rep, typename Period>
  std::optional<Versioned> WaitNewer(uint64_t last_seen,
                                     std::chrono::duration<Rep, Period> timeout) {
    std::unique_lock lock(mutex_);
    const bool ready = changed_.wait_for(
        lock, timeout, [&] { return closed_ || version_ > last_seen; });
    if (!ready || closed_) return std::nullopt;
    return Versioned{version_, value_};
  }

  // The newest value without waiting (nullopt before the first publish).
  std::optional<Versioned> Latest() const {
    std::lock_guard lock(mutex_);
    if (version_ == 0) return std::nullopt;
    return Versioned{version_, value_};
  }

  uint64_t version() const {
    std::lock_guard lock(mutex_);
    return version_;
  }

  // Wakes every waiter; later waits return nullopt at once. Used at shutdown.
  void Close() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
    }
    changed_.notify_all();
  }

  bool closed() const {
    std::lock_guard lock(mutex_);
    return closed_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  T value_{};
  uint64_t version_ = 0;
  bool closed_ = false;
};

}  // namespace freshframe
