#include "probe/latency_samples.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace freshframe::probe {

LatencySamples::LatencySamples(size_t capacity, uint32_t seed)
    : capacity_(std::max<size_t>(capacity, 1)), rng_(seed) {}

void LatencySamples::Add(double ms) {
  max_ = count_ == 0 ? ms : std::max(max_, ms);
  sum_ += ms;
  ++count_;
  if (kept_.size() < capacity_) {
    kept_.push_back(static_cast<float>(ms));
    return;
  }
  // Algorithm R: the n-th sample replaces a kept one with probability
  // capacity / n, which keeps the subset uniform over all samples so far.
  std::uniform_int_distribution<uint64_t> pick(0, count_ - 1);
  const uint64_t slot = pick(rng_);
  if (slot < capacity_) kept_[static_cast<size_t>(slot)] = static_cast<float>(ms);
}

Percentiles LatencySamples::Pool(std::span<const LatencySamples* const> sets) {
  Percentiles p;
  std::vector<std::pair<float, double>> weighted;  // (value, samples it stands for)
  double sum = 0;
  bool any = false;
  for (const LatencySamples* set : sets) {
    if (set == nullptr || set->count_ == 0) continue;
    const double weight = static_cast<double>(set->count_) / static_cast<double>(set->kept_.size());
    for (float v : set->kept_) weighted.emplace_back(v, weight);
    p.count += set->count_;
    sum += set->sum_;
    p.max = any ? std::max(p.max, set->max_) : set->max_;
    any = true;
  }
  if (!any) return p;
  std::sort(weighted.begin(), weighted.end());
  const double total = static_cast<double>(p.count);
  // Nearest rank: the smallest sample with at least q of all samples at or
  // below it. With every weight 1 (no reservoir) this is the textbook rank.
  auto rank = [&](double q) {
    const double target = std::max(1.0, std::ceil(q * total));
    double cumulative = 0;
    for (const auto& [value, weight] : weighted) {
      cumulative += weight;
      // The tolerance absorbs rounding in the summed fractional weights.
      if (cumulative >= target - 1e-9 * total) return std::min(static_cast<double>(value), p.max);
    }
    return p.max;
  };
  p.p50 = rank(0.50);
  p.p90 = rank(0.90);
  p.p99 = rank(0.99);
  p.mean = sum / total;
  return p;
}

}  // namespace freshframe::probe
