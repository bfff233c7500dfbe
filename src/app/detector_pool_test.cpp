// DetectorPool: which streams share a loaded detector.
#include "app/detector_pool.h"

#include <gtest/gtest.h>

#include "core/latest_slot.h"
#include "core/metrics.h"

namespace freshframe::app {
namespace {

// The slots and metrics of one stream.
struct FakeStream {
  LatestSlot<FramePtr> raw;
  LatestSlot<infer::DetectionSetPtr> detections;
  Metrics metrics;

  infer::DetectorBinding Binding() {
    infer::DetectorBinding binding;
    binding.raw = &raw;
    binding.detections = &detections;
    binding.metrics = &metrics.Stage("infer");
    return binding;
  }
};

TEST(DetectorPoolTest, StreamsNamingTheSameModelShareOneInstance) {
  DetectorPool pool;
  FakeStream a, b, c;
  const infer::DetectorOptions options;
  auto first = pool.Bind("faces", options, a.Binding());
  ASSERT_TRUE(first) << first.error().message;
  auto second = pool.Bind("faces", options, b.Binding());
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(&(*first)->detector(), &(*second)->detector());
  EXPECT_EQ((*first)->detector().bindings(), 2U);
  EXPECT_EQ(pool.loaded(), 1U);
  // Other options compute something else: another instance.
  infer::DetectorOptions finer = options;
  finer.min_neighbours = 7;
  auto third = pool.Bind("faces", finer, c.Binding());
  ASSERT_TRUE(third) << third.error().message;
  EXPECT_NE(&(*third)->detector(), &(*first)->detector());
  EXPECT_EQ(pool.loaded(), 2U);
  // A binding let go leaves the others; the last one unloads the model.
  first->reset();
  EXPECT_EQ((*second)->detector().bindings(), 1U);
  second->reset();
  third->reset();
  EXPECT_EQ(pool.loaded(), 0U);
}

TEST(DetectorPoolTest, MotionIsPerCameraAndNoneIsNoDetector) {
  DetectorPool pool;
  FakeStream a, b;
  auto first = pool.Bind("motion", {}, a.Binding());
  auto second = pool.Bind("motion", {}, b.Binding());
  ASSERT_TRUE(first && second);
  EXPECT_NE(&(*first)->detector(), &(*second)->detector());
  auto none = pool.Bind("none", {}, a.Binding());
  ASSERT_TRUE(none);
  EXPECT_EQ(*none, nullptr);
}

TEST(DetectorPoolTest, AModelThatDoesNotLoadIsAnError) {
  DetectorPool pool;
  FakeStream a;
  auto bound = pool.Bind("cascade:/nonexistent/cascade.xml", {}, a.Binding());
  ASSERT_FALSE(bound);
  EXPECT_NE(bound.error().message.find("/nonexistent/cascade.xml"), std::string::npos)
      << bound.error().message;
}

}  // namespace
}  // namespace freshframe::app
