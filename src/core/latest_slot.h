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
//
// Observers: a consumer that waits on many slots at once (infer's
// SharedDetector) registers one Wakeup (core/wakeup.h) with each of them;
// every Publish and Close notifies it. Ownership: the slot does not own its
// observers; RemoveObserver must be called before an observer is destroyed,
// and once it returns the slot never touches that observer again (observers
// are notified under the slot's lock for that reason).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "core/wakeup.h"

namespace freshframe {

template <typename T>
class LatestSlot {
 public:
  struct Versioned {
    uint64_t version;  // 1 for the first value published, +1 per publish
    T value;
  };

  // Replaces the held value and wakes every waiting consumer and observer.
  // Returns the new version. After Close(), values are dropped and 0 is
  // returned.
  uint64_t Publish(T value) {
    uint64_t version = 0;
    {
      std::lock_guard lock(mutex_);
      if (closed_) return 0;
      value_ = std::move(value);
      version = ++version_;
      NotifyObservers();
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
    const bool ready =
        changed_.wait_for(lock, timeout, [&] { return closed_ || version_ > last_seen; });
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
      NotifyObservers();
    }
    changed_.notify_all();
  }

  // `observer` is notified after every later Publish and Close. Adding the
  // same observer twice makes it notified twice per change (and needs two
  // removals).
  void AddObserver(Wakeup* observer) {
    std::lock_guard lock(mutex_);
    observers_.push_back(observer);
  }

  // Removes one registration of `observer` (none: nothing happens). Once this
  // returns the slot no longer touches it, so it may be destroyed.
  void RemoveObserver(Wakeup* observer) {
    std::lock_guard lock(mutex_);
    for (auto it = observers_.begin(); it != observers_.end(); ++it) {
      if (*it == observer) {
        observers_.erase(it);
        return;
      }
    }
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
  // Notified under mutex_, so that RemoveObserver (which takes it) cannot
  // return while a notification is under way. Wakeup::Notify only takes its
  // own mutex and never calls back, so this cannot deadlock.
  std::vector<Wakeup*> observers_;

  void NotifyObservers() {
    for (Wakeup* observer : observers_) observer->Notify();
  }
};

}  // namespace freshframe
