#include "http/stream_query.h"

#include <gtest/gtest.h>

namespace freshframe::http {
namespace {

const SourceFormat kSource{640, 480, 30};

TEST(RouterStreamQueryTest, DefaultsWithoutOptions) {
  for (const char* target : {"/stream.mjpg", "/?action=stream", "/ws/stream?token=x", "/x?"}) {
    auto query = ParseStreamQuery(target, kSource);
    ASSERT_TRUE(query.ok()) << target << ": " << query.error().message;
    EXPECT_EQ(query->fps, 0);
    EXPECT_TRUE(query->variant.is_default());
  }
}

TEST(RouterStreamQueryTest, ReadsFpsMirrorAndWidth) {
  auto query = ParseStreamQuery("/?action=stream&fps=5&mirror=1&width=320", kSource);
  ASSERT_TRUE(query.ok()) << query.error().message;
  EXPECT_EQ(query->fps, 5);
  EXPECT_TRUE(query->variant.mirror);
  EXPECT_EQ(query->variant.width, 320);
  EXPECT_EQ(ParseStreamQuery("/ws/stream?fps=2.5", kSource)->fps, 2.5);
  EXPECT_EQ(ParseStreamQuery("/ws/stream?fps=30", kSource)->fps, 30);
  EXPECT_FALSE(ParseStreamQuery("/ws/stream?mirror=false", kSource)->variant.mirror);
  EXPECT_TRUE(ParseStreamQuery("/ws/stream?mirror=true", kSource)->variant.mirror);
  // The source's own width is no scaling: the default variant.
  EXPECT_TRUE(ParseStreamQuery("/stream.mjpg?width=640", kSource)->variant.is_default());
  // 29.97 fps: 30 is fine.
  EXPECT_TRUE(ParseStreamQuery("/stream.mjpg?fps=30", SourceFormat{640, 480, 29.97}).ok());
}

TEST(RouterStreamQueryTest, RejectsBadValuesWithAClearMessage) {
  for (const char* target :
       {"/s?fps=",       "/s?fps",        "/s?fps=0",       "/s?fps=-1",
        "/s?fps=31",     "/s?fps=abc",    "/s?fps=5fps",    "/s?fps=nan",
        "/s?fps=inf",    "/s?mirror=2",   "/s?mirror=",     "/s?mirror=yes",
        "/s?width=15",   "/s?width=17",   "/s?width=642",   "/s?width=",
        "/s?width=32.0", "/s?width=-320", "/s?width=320px", "/s?width=99999999999999"}) {
    auto query = ParseStreamQuery(target, kSource);
    EXPECT_FALSE(query.ok()) << target;
    if (!query.ok()) {
      EXPECT_FALSE(query.error().message.empty());
    }
  }
  EXPECT_NE(ParseStreamQuery("/s?fps=31", kSource).error().message.find("(0, 30]"),
            std::string::npos);
  EXPECT_NE(ParseStreamQuery("/s?width=15", kSource).error().message.find("[16, 640]"),
            std::string::npos);
}

// Regression (issue 14, finding 8): every distinct width was a variant of its
// own (an encoder, a buffer and an encode per frame). Widths are rounded
// down to a multiple of 16, so nearby ones share one variant.
TEST(RouterStreamQueryTest, WidthsAreRoundedDownToSteps) {
  for (const char* target : {"/s?width=320", "/s?width=322", "/s?width=330", "/s?width=334"}) {
    auto query = ParseStreamQuery(target, kSource);
    ASSERT_TRUE(query.ok()) << target << ": " << query.error().message;
    EXPECT_EQ(query->variant.width, 320) << target;
  }
  EXPECT_EQ(ParseStreamQuery("/s?width=336", kSource)->variant.width, 336);
  EXPECT_EQ(ParseStreamQuery("/s?width=30", kSource)->variant.width, kMinVariantWidth);
  EXPECT_EQ(ParseStreamQuery("/s?width=638", kSource)->variant.width, 624);
  // The source's own width is no scaling, even when it is not a step.
  const SourceFormat odd{1000, 750, 30};
  EXPECT_TRUE(ParseStreamQuery("/s?width=1000", odd)->variant.is_default());
  EXPECT_EQ(ParseStreamQuery("/s?width=998", odd)->variant.width, 992);
  EXPECT_EQ(ParseStreamQuery("/s?width=7678", SourceFormat{})->variant.width, 7664);
}

TEST(RouterStreamQueryTest, PartsEarlyOrFull) {
  EXPECT_FALSE(ParseStreamQuery("/stream.mjpg", kSource)->early_parts);
  EXPECT_TRUE(ParseStreamQuery("/stream.mjpg?parts=early&t=1", kSource)->early_parts);
  EXPECT_FALSE(ParseStreamQuery("/stream.mjpg?parts=full", kSource)->early_parts);
  for (const char* target : {"/s?parts=", "/s?parts=1", "/s?parts=EARLY"}) {
    auto query = ParseStreamQuery(target, kSource);
    ASSERT_FALSE(query.ok()) << target;
    EXPECT_NE(query.error().message.find("early or full"), std::string::npos);
  }
}

TEST(RouterStreamQueryTest, UnknownSourceHasWideLimits) {
  const SourceFormat unknown;
  EXPECT_TRUE(ParseStreamQuery("/s?fps=240&width=7680", unknown).ok());
  EXPECT_FALSE(ParseStreamQuery("/s?fps=241", unknown).ok());
  EXPECT_FALSE(ParseStreamQuery("/s?width=7681", unknown).ok());
}

}  // namespace
}  // namespace freshframe::http
