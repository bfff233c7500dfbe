// VariantStreams' cap on distinct pixel variants (--max-variants) and the
// places Reserve keeps for the sessions that open them later.
#include "http/variant_streams.h"

#include <chrono>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/clock.h"

namespace freshframe::http {
namespace {

using encode::VariantKey;

constexpr int64_t kReservationUs =
    std::chrono::duration_cast<std::chrono::microseconds>(VariantStreams::kReservationTimeout)
        .count();

class VariantStreamsTest : public ::testing::Test {
 protected:
  // The encoders' thread is not started: these tests are about places only.
  LatestSlot<FramePtr> annotated_;
  Metrics metrics_;
  encode::VariantEncoders encoders_{80, annotated_, metrics_};
  PartStream default_stream_;
  Demand demand_;
  VariantStreams variants_{&encoders_, default_stream_, demand_};
  const int64_t now_ = MonotonicMicros();
};

// Regression (issue 14, finding 8): every distinct ?width / ?mirror added an
// encoder, a full-size buffer and an encode per frame, without limit.
TEST_F(VariantStreamsTest, RefusesANewVariantBeyondTheCapButNotExistingOnes) {
  auto a = variants_.Open({false, 320}, 2, now_);
  auto b = variants_.Open({true, 0}, 2, now_);
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(b.ok()) << b.error().message;

  auto third = variants_.Reserve({false, 160}, 2, now_);
  ASSERT_FALSE(third.ok());
  const std::string& why = third.error().message;
  EXPECT_NE(why.find("--max-variants"), std::string::npos) << why;
  EXPECT_NE(why.find("width=320"), std::string::npos) << why;  // what is available instead
  EXPECT_NE(why.find("mirror=1"), std::string::npos) << why;
  EXPECT_EQ(why.find('\n'), std::string::npos) << why;  // one line
  EXPECT_FALSE(variants_.Open({false, 160}, 2, now_).ok());
  EXPECT_EQ(encoders_.active(), 2U);

  // More clients of a variant in use are never refused, nor is the default.
  EXPECT_TRUE(variants_.Reserve({false, 320}, 2, now_).ok());
  auto a2 = variants_.Open({false, 320}, 2, now_);
  ASSERT_TRUE(a2.ok());
  EXPECT_EQ(a2->get(), a->get());  // the same part stream: one encoder
  EXPECT_TRUE(variants_.Open({}, 2, now_).ok());
  EXPECT_EQ(encoders_.active(), 2U);

  // A place frees up when the last client of a variant goes.
  b = Error{"gone"};
  EXPECT_TRUE(variants_.Reserve({false, 160}, 2, now_).ok());
  EXPECT_EQ(variants_.ToJson().size(), 1U);  // in use: width=320 only, the rest is reserved
}

TEST_F(VariantStreamsTest, ZeroMeansNoLimit) {
  std::vector<std::shared_ptr<PartStream>> feeds;
  for (int width = 16; width <= 320; width += 16) {
    auto feed = variants_.Open({false, width}, 0, now_);
    ASSERT_TRUE(feed.ok()) << width;
    feeds.push_back(*feed);
  }
  EXPECT_EQ(encoders_.active(), 20U);
}

// The check happens before the stream's header is sent, the open after: the
// place taken by the check is kept, so a client that asked in between cannot
// take it (nor get a header and then nothing).
TEST_F(VariantStreamsTest, AReservedPlaceIsKeptForItsOpen) {
  ASSERT_TRUE(variants_.Reserve({false, 320}, 1, now_).ok());
  EXPECT_FALSE(variants_.Reserve({true, 0}, 1, now_).ok());
  EXPECT_FALSE(variants_.Open({true, 0}, 1, now_).ok());
  auto feed = variants_.Open({false, 320}, 1, now_ + 1000);
  ASSERT_TRUE(feed.ok()) << feed.error().message;
  EXPECT_FALSE(variants_.Reserve({true, 0}, 1, now_).ok());  // now in use
  feed = Error{"gone"};
  EXPECT_TRUE(variants_.Reserve({true, 0}, 1, now_).ok());  // the open took the reservation
}

// A reservation nobody opens (HEAD, a refused upgrade, a client gone before
// its header was written) gives its place back after kReservationTimeout.
TEST_F(VariantStreamsTest, AnUnusedReservationExpires) {
  ASSERT_TRUE(variants_.Reserve({false, 320}, 1, now_).ok());
  ASSERT_TRUE(variants_.Reserve({false, 320}, 1, now_).ok());  // a second client, same place
  EXPECT_FALSE(variants_.Reserve({true, 0}, 1, now_ + kReservationUs - 1).ok());
  EXPECT_TRUE(variants_.Reserve({true, 0}, 1, now_ + kReservationUs + 1).ok());
  EXPECT_EQ(encoders_.active(), 0U);  // reservations cost no encoder
}

TEST_F(VariantStreamsTest, RefusesVariantsWithoutEncodersOrOnceClosed) {
  VariantStreams without{nullptr, default_stream_, demand_};
  EXPECT_FALSE(without.Reserve({true, 0}, 4, now_).ok());
  EXPECT_FALSE(without.Open({true, 0}, 4, now_).ok());
  EXPECT_TRUE(without.Open({}, 4, now_).ok());
  EXPECT_TRUE(without.Reserve({}, 4, now_).ok());

  variants_.Close();
  EXPECT_FALSE(variants_.Reserve({true, 0}, 4, now_).ok());
  EXPECT_FALSE(variants_.Open({true, 0}, 4, now_).ok());
}

}  // namespace
}  // namespace freshframe::http
