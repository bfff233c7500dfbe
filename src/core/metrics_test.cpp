#include "core/metrics.h"

#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace freshframe {
namespace {

size_t BucketOf(double bound) {
  for (size_t i = 0; i < Histogram::kBounds.size(); ++i) {
    if (Histogram::kBounds[i] == bound) return i;
  }
  ADD_FAILURE() << "no bucket " << bound;
  return 0;
}

TEST(MetricsHistogramTest, BucketsAreInclusiveUpperBounds) {
  Histogram h;
  h.Observe(0.001);   // exactly a bound: in that bucket
  h.Observe(0.0011);  // just above: the next
  h.Observe(5.0);
  h.Observe(7.0);  // above every bound: only in the count
  const Histogram::Snapshot s = h.Read();
  EXPECT_EQ(s.cumulative[BucketOf(0.0005)], 0u);
  EXPECT_EQ(s.cumulative[BucketOf(0.001)], 1u);
  EXPECT_EQ(s.cumulative[BucketOf(0.002)], 2u);
  EXPECT_EQ(s.cumulative[BucketOf(2)], 2u);
  EXPECT_EQ(s.cumulative[BucketOf(5)], 3u);
  EXPECT_EQ(s.count, 4u);
  EXPECT_DOUBLE_EQ(s.sum, 0.001 + 0.0011 + 5.0 + 7.0);
}

TEST(MetricsHistogramTest, NegativeAndNanCountAsZero) {
  Histogram h;
  h.Observe(-3.0);
  h.Observe(std::nan(""));
  const Histogram::Snapshot s = h.Read();
  EXPECT_EQ(s.cumulative[0], 2u);
  EXPECT_EQ(s.count, 2u);
  EXPECT_EQ(s.sum, 0.0);
}

TEST(MetricsHistogramTest, ConcurrentReadsAreCumulativeAndNeverGoDown) {
  Histogram h;
  std::atomic<bool> stop{false};
  std::array<uint64_t, 2> observed{};
  std::vector<std::thread> writers;
  for (size_t t = 0; t < observed.size(); ++t) {
    writers.emplace_back([&, t] {
      for (uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        h.Observe(0.0001 * static_cast<double>(i % 100) + 0.5 * static_cast<double>(t));
        observed[t] = i + 1;
      }
    });
  }
  Histogram::Snapshot previous;
  // At least 5000 reads, and on until the writers are seen at work (on a
  // busy machine they may not have run yet), bounded in time.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (int r = 0; r < 5000 || (previous.count == 0 && std::chrono::steady_clock::now() < give_up);
       ++r) {
    const Histogram::Snapshot s = h.Read();
    for (size_t i = 1; i < s.cumulative.size(); ++i) {
      ASSERT_LE(s.cumulative[i - 1], s.cumulative[i]);
    }
    ASSERT_LE(s.cumulative.back(), s.count);
    for (size_t i = 0; i < s.cumulative.size(); ++i) {
      ASSERT_GE(s.cumulative[i], previous.cumulative[i]);
    }
    ASSERT_GE(s.count, previous.count);
    ASSERT_GE(s.sum, previous.sum);
    previous = s;
  }
  stop = true;
  for (auto& w : writers) w.join();
  EXPECT_GT(previous.count, 0u);
  EXPECT_EQ(h.Read().count, observed[0] + observed[1]);
}

TEST(MetricsStageTest, RecordFeedsHistogramsAndKeepsTheWindowApi) {
  Metrics metrics;
  StageMetrics& encode = metrics.Stage("encode");
  encode.Record(1'000'000, 3.0, 4.0);  // work 3 ms, 4 ms since capture
  encode.Record(1'000'000, -1, 10.0);  // no work figure
  metrics.Stage("infer").RecordWork(1'000'000, 20.0);

  EXPECT_EQ(encode.frames(), 2u);
  EXPECT_EQ(encode.Latency(1'000'000).count, 2u);
  EXPECT_EQ(encode.Work(1'000'000).count, 1u);
  const auto latency = encode.LatencyHistogram();
  EXPECT_EQ(latency.count, 2u);
  EXPECT_DOUBLE_EQ(latency.sum, 0.014);
  EXPECT_EQ(latency.cumulative[BucketOf(0.005)], 1u);
  const auto work = encode.WorkHistogram();
  EXPECT_EQ(work.count, 1u);
  EXPECT_DOUBLE_EQ(work.sum, 0.003);

  const StageMetrics* infer = metrics.Find("infer");
  ASSERT_NE(infer, nullptr);
  EXPECT_EQ(infer->WorkHistogram().count, 1u);
  EXPECT_EQ(infer->LatencyHistogram().count, 0u);
}

TEST(MetricsStageTest, StagesListsEveryStageByName) {
  Metrics metrics;
  StageMetrics& send = metrics.Stage("send");
  metrics.Stage("capture");
  const auto stages = metrics.Stages();
  ASSERT_EQ(stages.size(), 2u);
  EXPECT_EQ(stages[0].first, "capture");
  EXPECT_EQ(stages[1].first, "send");
  EXPECT_EQ(stages[1].second, &send);
}

}  // namespace
}  // namespace freshframe
