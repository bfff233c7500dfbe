#include "probe/latency_samples.h"

#include <gtest/gtest.h>

#include <vector>

namespace freshframe::probe {
namespace {

Percentiles PoolOf(const std::vector<const LatencySamples*>& sets) {
  return LatencySamples::Pool(sets);
}

TEST(LatencySamplesTest, EmptyIsZero) {
  LatencySamples a(10);
  const Percentiles p = PoolOf({&a});
  EXPECT_EQ(p.count, 0u);
  EXPECT_EQ(p.p50, 0);
  EXPECT_EQ(p.max, 0);
  EXPECT_EQ(PoolOf({}).count, 0u);
}

TEST(LatencySamplesTest, NearestRankOverPooledClients) {
  // 1..100 split unevenly between three clients.
  LatencySamples a(1000), b(1000), c(1000);
  for (int v = 1; v <= 100; ++v) (v % 3 == 0 ? a : v % 3 == 1 ? b : c).Add(v);
  const Percentiles p = PoolOf({&a, &b, &c});
  EXPECT_EQ(p.count, 100u);
  EXPECT_DOUBLE_EQ(p.p50, 50);
  EXPECT_DOUBLE_EQ(p.p90, 90);
  EXPECT_DOUBLE_EQ(p.p99, 99);
  EXPECT_DOUBLE_EQ(p.max, 100);
  EXPECT_DOUBLE_EQ(p.mean, 50.5);
}

TEST(LatencySamplesTest, SmallCounts) {
  LatencySamples a(10);
  a.Add(7.5);
  Percentiles p = PoolOf({&a});
  EXPECT_EQ(p.count, 1u);
  EXPECT_DOUBLE_EQ(p.p50, 7.5);
  EXPECT_DOUBLE_EQ(p.p99, 7.5);
  a.Add(2.5);
  p = PoolOf({&a});
  EXPECT_DOUBLE_EQ(p.p50, 2.5);  // rank ceil(0.5 * 2) = 1
  EXPECT_DOUBLE_EQ(p.p90, 7.5);
  EXPECT_DOUBLE_EQ(p.mean, 5.0);
}

TEST(LatencySamplesTest, ReservoirKeepsMemoryBoundedAndStaysClose) {
  LatencySamples a(1000, 3), b(100000, 4);
  // a sees 100k samples uniform over [0, 100); b sees 2k samples of 1000.
  for (int i = 0; i < 100000; ++i) a.Add((i * 37) % 100000 / 1000.0);
  for (int i = 0; i < 2000; ++i) b.Add(1000.0);
  EXPECT_EQ(a.kept(), 1000u);
  EXPECT_EQ(a.count(), 100000u);
  const Percentiles p = PoolOf({&a, &b});
  EXPECT_EQ(p.count, 102000u);
  EXPECT_DOUBLE_EQ(p.max, 1000.0);
  // a's thousand kept samples stand for 100k: p50 of the pool is ~51.
  EXPECT_NEAR(p.p50, 51.0, 5.0);
  EXPECT_NEAR(p.p90, 91.8, 5.0);
  EXPECT_DOUBLE_EQ(p.p99, 1000.0);  // the top ~2% are b's
  EXPECT_NEAR(p.mean, (100000 * 49.9995 + 2000 * 1000.0) / 102000, 1e-6);
}

}  // namespace
}  // namespace freshframe::probe
