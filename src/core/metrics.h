// Per-stage figures: rate, processing time and latency since capture.
//
// Every stage owns a StageMetrics (obtained once from Metrics::Stage) and
// records into it as frames pass; readers (/api/stats, /metrics, tests) take
// snapshots. Windows are bounded: a StageMetrics keeps at most
// kWindowCapacity samples and reports only those from the last kWindowUs, so
// memory is constant however long the process runs. Alongside the windows,
// cumulative histograms (fixed buckets, counted since start) feed /metrics.
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
#include <utility>
#include <vector>

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

// Durations in seconds, counted since start into fixed buckets (the shape of
// a Prometheus histogram). Lock-free: Observe is a few relaxed atomic adds.
class Histogram {
 public:
  // Upper bounds (inclusive) of the finite buckets, in seconds.
  static constexpr std::array<double, 13> kBounds = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
                                                     0.1,    0.2,   0.5,   1,     2,    5};

  struct Snapshot {
    // cumulative[i]: observations <= kBounds[i]. Non-decreasing in i.
    std::array<uint64_t, kBounds.size()> cumulative{};
    uint64_t count = 0;  // all observations (the +Inf bucket): >= every cumulative[i]
    double sum = 0;      // seconds
  };

  // Negative or NaN durations count as 0.
  void Observe(double seconds);
  Snapshot Read() const;

 private:
  // Relaxed: each counter is an independent statistic and publishes no other
  // data, so no ordering is needed; a reader racing Observe may see the sum
  // one observation apart from the buckets. Read derives count from the
  // buckets, so the +Inf bucket always equals the count, and every counter
  // only grows, so successive reads never go down.
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};  // last: above kBounds
  std::atomic<uint64_t> sum_ns_{0};  // integer nanoseconds: exact, no CAS loop
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
  // Since start, in seconds: what Work and Latency show for the last window.
  Histogram::Snapshot WorkHistogram() const { return work_histogram_.Read(); }
  Histogram::Snapshot LatencyHistogram() const { return latency_histogram_.Read(); }

 private:
  // Relaxed: these are statistics, read independently of any other data.
  std::atomic<uint64_t> frames_{0};
  std::atomic<uint64_t> skipped_{0};
  SampleWindow work_;
  SampleWindow latency_;
  Histogram work_histogram_;
  Histogram latency_histogram_;
};

class Metrics {
 public:
  // The metrics of stage `name`, created on first use.
  StageMetrics& Stage(const std::string& name);
  // The metrics of stage `name` if some stage created them, else nullptr
  // (stages are never removed, so the pointer stays valid).
  const StageMetrics* Find(const std::string& name) const;
  // Every stage created so far, by name (the pointers stay valid).
  std::vector<std::pair<std::string, const StageMetrics*>> Stages() const;

  // {"stage": {"fps", "frames", "skipped", "work_ms": {...},
  //            "latency_ms": {...}}, ...}; latency is since capture.
  nlohmann::json ToJson(int64_t now_us) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<StageMetrics>> stages_;
};

nlohmann::json PercentilesToJson(const Percentiles& p);

}  // namespace freshframe
