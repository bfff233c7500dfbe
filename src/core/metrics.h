// Per-stage figures: rate, processing time and latency since capture.
//
// Every stage owns a StageMetrics (obtained once from Metrics::Stage) and
// records into it as frames pass; readers (/api/stats, /metrics, tests) take
// snapshots. Windows are bounded: a StageMetrics keeps at most
// kWindowCapacity samples and reports only those from the last kWindowUs, so
// memory is constant however long the process runs.
//
// Thread-safety: every member of every class here may be called from any
// thread. Metrics owns its StageMetrics; the references it hands out stay
// valid for the life of the Metrics object.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace freshframe {

struct Percentiles {
  uint64_t count = 0;  // samples in the window
  double p50 = 0, p90 = 0, p99 = 0, max = 0, mean = 0;
};

// A bounded window of (time, value) samples.
class SampleWindow {
 public:
  static constexpr size_t kCapacity = 2048;
  static constexpr int64_t kWindowUs = 5'000'000;

  void Record(int64_t now_us, double value);
  Percentiles Snapshot(int64_t now_us) const;
  // Events per second over the window, from the sample times.
  double Rate(int64_t now_us) const;

 private:
  mutable std::mutex mutex_;
  std::array<int64_t, kCapacity> times_{};
  std::array<double, kCapacity> values_{};
  size_t next_ = 0;
  size_t size_ = 0;
};

class StageMetrics {
 public:
  // One frame handled: `work_ms` is the stage's own processing time (<0 if not
  // meaningful), `since_capture_ms` the frame's age when the stage finished.
  void Record(int64_t now_us, double work_ms, double since_capture_ms);
  // One frame handled whose age since capture is not known here.
  void RecordWork(int64_t now_us, double work_ms);
  // Counts a frame the stage skipped or dropped.
  void CountSkipped(uint64_t n = 1) { skipped_.fetch_add(n, std::memory_order_relaxed); }

  uint64_t frames() const { return frames_.load(std::memory_order_relaxed); }
  uint64_t skipped() const { return skipped_.load(std::memory_order_relaxed); }
  double Fps(int64_t now_us) const { return std::max(latency_.Rate(now_us), work_.Rate(now_us)); }
  Percentiles Work(int64_t now_us) const { return work_.Snapshot(now_us); }
  Percentiles Latency(int64_t now_us) const { return latency_.Snapshot(now_us); }

 private:
  // Relaxed: these are statistics, read independently of any other data.
  std::atomic<uint64_t> frames_{0};
  std::atomic<uint64_t> skipped_{0};
  SampleWindow work_;
  SampleWindow latency_;
};

class Metrics {
 public:
  // The metrics of stage `name`, created on first use.
  StageMetrics& Stage(const std::string& name);
  // The metrics of stage `name` if some stage created them, else nullptr
  // (stages are never removed, so the pointer stays valid).
  const StageMetrics* Find(const std::string& name) const;

  // {"stage": {"fps", "frames", "skipped", "work_ms": {...},
  //            "latency_ms": {...}}, ...}; latency is since capture.
  nlohmann::json ToJson(int64_t now_us) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<StageMetrics>> stages_;
};

nlohmann::json PercentilesToJson(const Percentiles& p);

}  // namespace freshframe
