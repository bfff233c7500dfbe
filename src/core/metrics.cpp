#include "core/metrics.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <nlohmann/json.hpp>

namespace freshframe {
namespace {

double Rank(const std::vector<double>& sorted, double q) {
  // Nearest-rank percentile: the smallest sample with at least q of the
  // samples at or below it.
  const auto n = static_cast<double>(sorted.size());
  auto rank = static_cast<size_t>(std::ceil(q * n));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

double Round3(double v) { return std::round(v * 1000.0) / 1000.0; }

}  // namespace

void SampleWindow::Record(int64_t now_us, double value) {
  std::lock_guard lock(mutex_);
  times_[next_] = now_us;
  values_[next_] = value;
  next_ = (next_ + 1) % kCapacity;
  size_ = std::min(size_ + 1, kCapacity);
}

Percentiles SampleWindow::Snapshot(int64_t now_us) const {
  std::vector<double> recent;
  {
    std::lock_guard lock(mutex_);
    recent.reserve(size_);
    for (size_t i = 0; i < size_; ++i) {
      if (now_us - times_[i] <= kWindowUs) recent.push_back(values_[i]);
    }
  }
  Percentiles p;
  if (recent.empty()) return p;
  std::sort(recent.begin(), recent.end());
  p.count = recent.size();
  p.p50 = Rank(recent, 0.50);
  p.p90 = Rank(recent, 0.90);
  p.p99 = Rank(recent, 0.99);
  p.max = recent.back();
  double sum = 0;
  for (double v : recent) sum += v;
  p.mean = sum / static_cast<double>(recent.size());
  return p;
}

double SampleWindow::Rate(int64_t now_us) const {
  std::lock_guard lock(mutex_);
  int64_t oldest = now_us;
  size_t count = 0;
  for (size_t i = 0; i < size_; ++i) {
    if (now_us - times_[i] <= kWindowUs) {
      oldest = std::min(oldest, times_[i]);
      ++count;
    }
  }
  if (count < 2) return 0.0;
  // Events per second from the oldest sample in the window to now, so that a
  // stage that stopped shows its rate falling rather than frozen.
  const auto span_s = static_cast<double>(now_us - oldest) / 1e6;
  return span_s > 0 ? static_cast<double>(count - 1) / span_s : 0.0;
}

void Histogram::Observe(double seconds) {
  if (!(seconds > 0)) seconds = 0;  // also NaN
  const auto bound = std::lower_bound(kBounds.begin(), kBounds.end(), seconds);
  const auto bucket = static_cast<size_t>(bound - kBounds.begin());
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  // Capped at 1e18 ns (~31 years) so that the conversion is defined; the
  // total wraps only after 584 years of summed durations.
  const double ns = std::min(seconds * 1e9, 1e18);
  sum_ns_.fetch_add(static_cast<uint64_t>(std::llround(ns)), std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot out;
  uint64_t running = 0;
  for (size_t i = 0; i < kBounds.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    out.cumulative[i] = running;
  }
  out.count = running + buckets_[kBounds.size()].load(std::memory_order_relaxed);
  out.sum = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
  return out;
}

void StageMetrics::Record(int64_t now_us, double work_ms, double since_capture_ms) {
  frames_.fetch_add(1, std::memory_order_relaxed);
  if (work_ms >= 0) {
    work_.Record(now_us, work_ms);
    work_histogram_.Observe(work_ms / 1000.0);
  }
  latency_.Record(now_us, since_capture_ms);
  latency_histogram_.Observe(since_capture_ms / 1000.0);
}

void StageMetrics::RecordWork(int64_t now_us, double work_ms) {
  frames_.fetch_add(1, std::memory_order_relaxed);
  work_.Record(now_us, work_ms);
  work_histogram_.Observe(work_ms / 1000.0);
}

StageMetrics& Metrics::Stage(const std::string& name) {
  std::lock_guard lock(mutex_);
  auto& slot = stages_[name];
  if (!slot) slot = std::make_unique<StageMetrics>();
  return *slot;
}

const StageMetrics* Metrics::Find(const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = stages_.find(name);
  return it == stages_.end() ? nullptr : it->second.get();
}

std::vector<std::pair<std::string, const StageMetrics*>> Metrics::Stages() const {
  std::vector<std::pair<std::string, const StageMetrics*>> out;
  std::lock_guard lock(mutex_);
  out.reserve(stages_.size());
  for (const auto& [name, stage] : stages_) out.emplace_back(name, stage.get());
  return out;
}

nlohmann::json PercentilesToJson(const Percentiles& p) {
  return {{"count", p.count},     {"p50", Round3(p.p50)}, {"p90", Round3(p.p90)},
          {"p99", Round3(p.p99)}, {"max", Round3(p.max)}, {"mean", Round3(p.mean)}};
}

nlohmann::json Metrics::ToJson(int64_t now_us) const {
  nlohmann::json out = nlohmann::json::object();
  std::lock_guard lock(mutex_);
  for (const auto& [name, stage] : stages_) {
    out[name] = {{"fps", Round3(stage->Fps(now_us))},
                 {"frames", stage->frames()},
                 {"skipped", stage->skipped()},
                 {"work_ms", PercentilesToJson(stage->Work(now_us))},
                 {"latency_ms", PercentilesToJson(stage->Latency(now_us))}};
  }
  return out;
}

}  // namespace freshframe
