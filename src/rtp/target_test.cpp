#include <gtest/gtest.h>

#include "rtp/rtp.h"

namespace freshframe::rtp {
namespace {

TEST(ParseTargetTest, ReadsHostAndPort) {
  Expected<Target> v4 = ParseTarget("127.0.0.1:8004");
  ASSERT_TRUE(v4.ok()) << v4.error().message;
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 8004);
  Expected<Target> v6 = ParseTarget("[::1]:5004");
  ASSERT_TRUE(v6.ok()) << v6.error().message;
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(ToString(*v6), "[::1]:5004");
  Expected<Target> name = ParseTarget("localhost:65534");
  ASSERT_TRUE(name.ok()) << name.error().message;
  EXPECT_EQ(ToString(*name), "localhost:65534");
}

TEST(ParseTargetTest, RefusesWithOneLineNamingTheFlag) {
  for (const char* bad :
       {"127.0.0.1", "127.0.0.1:", ":8004", "127.0.0.1:0", "127.0.0.1:65535", "127.0.0.1:80x",
        "127.0.0.1:-1", "::1:8004", "[::1]8004", "[::1", "[]:8004", "no such host:8004", ""}) {
    Expected<Target> target = ParseTarget(bad);
    ASSERT_FALSE(target.ok()) << bad;
    EXPECT_TRUE(target.error().message.starts_with("--rtp-out: ")) << target.error().message;
    EXPECT_EQ(target.error().message.find('\n'), std::string::npos);
  }
}

}  // namespace
}  // namespace freshframe::rtp
