// StageThread: the one thread a pipeline stage runs on.
//
// Start() runs `body(stop_token)` on a new thread; Stop() requests stop and
// joins (idempotent); the destructor stops. Declare a StageThread as the LAST
// member of its stage, so it is joined before anything the body uses is
// destroyed.
//
// Thread-safety: Start and Stop are called from the owning thread only.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <stop_token>
#include <thread>
#include <utility>

namespace freshframe {

class StageThread {
 public:
  StageThread() = default;
  StageThread(const StageThread&) = delete;
  StageThread& operator=(const StageThread&) = delete;
  ~StageThread() { Stop(); }

  void Start(std::function<void(std::stop_token)> body) {
    Stop();
    thread_ = std::jthread(std::move(body));
  }

  void Stop() {
    if (thread_.joinable()) {
      thread_.request_stop();
      thread_.join();
    }
  }

 private:
  std::jthread thread_;
};

// Sleeps until `deadline` or until stop is requested; false if stopped.
inline bool SleepUntil(std::chrono::steady_clock::time_point deadline, std::stop_token stop) {
  std::mutex mutex;
  std::condition_variable_any wake;
  std::unique_lock lock(mutex);
  wake.wait_until(lock, stop, deadline, [] { return false; });
  return !stop.stop_requested();
}

}  // namespace freshframe
