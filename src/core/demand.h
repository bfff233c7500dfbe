// Demand: how many parties currently want encoded frames. Encoding is done
// only while someone watches (a streaming client, or a snapshot waiting for a
// fresh frame), so an idle server spends no CPU on JPEG.
//
// Thread-safety: all members may be called from any thread. A Demand::Hold
// must not outlive the Demand it was taken from.
#pragma once

#include <atomic>

namespace freshframe {

class Demand {
 public:
  // RAII registration of one watcher.
  class Hold {
   public:
    explicit Hold(Demand& demand) : demand_(&demand) { demand_->Add(1); }
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;
    ~Hold() { demand_->Add(-1); }

   private:
    Demand* demand_;
  };

  bool Wanted() const {
    // Relaxed: the count is a hint for the encoder; a frame encoded or skipped
    // at the instant a watcher arrives or leaves is harmless either way.
    return watchers_.load(std::memory_order_relaxed) > 0;
  }
  int watchers() const { return watchers_.load(std::memory_order_relaxed); }

 private:
  void Add(int delta) { watchers_.fetch_add(delta, std::memory_order_relaxed); }
  std::atomic<int> watchers_{0};
};

}  // namespace freshframe
