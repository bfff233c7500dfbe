// Latency samples of one probe client, and pooling them across clients into
// one set of nearest-rank percentiles.
//
// Memory is bounded: a LatencySamples keeps at most `capacity` samples. Up to
// that many it keeps every sample and the pooled percentiles are exact; past
// it, it keeps a uniform random subset (reservoir sampling), and pooling
// weights each kept sample by how many it stands for. Count, mean and max are
// always exact.
//
// Thread-safety and ownership: not thread-safe; one client thread adds to its
// own LatencySamples, and Pool reads them after those threads have finished.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "core/metrics.h"

namespace freshframe::probe {

class LatencySamples {
 public:
  explicit LatencySamples(size_t capacity, uint32_t seed = 1);

  void Add(double ms);

  uint64_t count() const { return count_; }
  size_t kept() const { return kept_.size(); }

  // All samples of all `sets` as one distribution: nearest-rank p50/p90/p99,
  // exact count, max and mean. Zeros if there are no samples.
  static Percentiles Pool(std::span<const LatencySamples* const> sets);

 private:
  size_t capacity_;
  std::vector<float> kept_;  // float: 0.1 us resolution at 1 s is plenty
  uint64_t count_ = 0;
  double sum_ = 0;
  double max_ = 0;
  std::minstd_rand rng_;
};

}  // namespace freshframe::probe
