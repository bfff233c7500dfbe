#include "rtsp/credentials.h"

#include <gtest/gtest.h>

namespace freshframe::rtsp {
namespace {

TEST(RtspCredentialsTest, BasicUserPassAndTheTokenAsPassword) {
  const Credentials both{.basic_auth = "user:pass", .token = "s3cret"};
  EXPECT_TRUE(both.required());
  EXPECT_TRUE(both.Accepts("Basic dXNlcjpwYXNz"));        // user:pass
  EXPECT_TRUE(both.Accepts("  basic   dXNlcjpwYXNz  "));  // scheme in any case, spaces
  EXPECT_TRUE(both.Accepts("Basic YW55OnMzY3JldA=="));    // any:s3cret
  EXPECT_FALSE(both.Accepts("Basic Om1zM2NyZXQ="));       // ":ms3cret"
  EXPECT_TRUE(both.Accepts("Basic OnMzY3JldA=="));        // ":s3cret": an empty user name
  EXPECT_FALSE(both.Accepts("Basic dXNlcjp3cm9uZw=="));   // user:wrong
  EXPECT_FALSE(both.Accepts("Basic czNjcmV0"));           // "s3cret" without a colon
  EXPECT_FALSE(both.Accepts("Bearer s3cret"));            // RTSP clients send Basic only
  EXPECT_FALSE(both.Accepts("Basic !!!"));                // not base64
  EXPECT_FALSE(both.Accepts(""));
  const Credentials basic_only{.basic_auth = "user:pass", .token = ""};
  EXPECT_FALSE(basic_only.Accepts("Basic OnBhc3M="));  // ":pass" is not the token path
  const Credentials none;
  EXPECT_FALSE(none.required());
  EXPECT_FALSE(none.Accepts("Basic dXNlcjpwYXNz"));
}

}  // namespace
}  // namespace freshframe::rtsp
