#include "httpclient/redact.h"

#include <gtest/gtest.h>

namespace freshframe::httpclient {
namespace {

TEST(RedactUrlTest, UserInfoPasswordIsMasked) {
  EXPECT_EQ(RedactUrl("http://alice:hunter2@cam:8080/stream.mjpg"),
            "http://alice:***@cam:8080/stream.mjpg");
  EXPECT_EQ(RedactUrl("rtsp://admin:p%40ss@10.0.0.5/live"), "rtsp://admin:***@10.0.0.5/live");
  // '@' inside the password (unescaped): the last '@' ends the user info.
  EXPECT_EQ(RedactUrl("rtsp://u:a@b@host/x"), "rtsp://u:***@host/x");
  EXPECT_EQ(RedactUrl("http://u:pw@h"), "http://u:***@h");
  // A user name alone is not a secret; an '@' in the path is not user info.
  EXPECT_EQ(RedactUrl("http://alice@cam/x"), "http://alice@cam/x");
  EXPECT_EQ(RedactUrl("http://cam/a:b@c"), "http://cam/a:b@c");
}

TEST(RedactUrlTest, TokenLikeParametersAreMasked) {
  EXPECT_EQ(RedactUrl("http://h:8080/stream.mjpg?token=S3cret"),
            "http://h:8080/stream.mjpg?token=***");
  EXPECT_EQ(RedactUrl("http://h/s?width=320&token=abc&fps=5"),
            "http://h/s?width=320&token=***&fps=5");
  EXPECT_EQ(RedactUrl("https://h/x?X-Amz-Signature=ab&access_token=c&API_KEY=d&password=e#f"),
            "https://h/x?X-Amz-Signature=***&access_token=***&API_KEY=***&password=***");
  EXPECT_EQ(RedactUrl("http://h/s?sig=1&key=2"), "http://h/s?sig=***&key=***");
  // Names that merely look alike stay.
  EXPECT_EQ(RedactUrl("http://h/s?monkey=1&keys=2&tokens"), "http://h/s?monkey=1&keys=2&tokens");
  EXPECT_EQ(RedactUrl("http://h/s?token="), "http://h/s?token=");
}

TEST(RedactUrlTest, PipelinesAndMessages) {
  EXPECT_EQ(RedactUrl("gst:rtspsrc location=rtsp://u:pw@cam/x user-pw=pw2 ! decodebin ! appsink"),
            "gst:rtspsrc location=rtsp://u:***@cam/x user-pw=*** ! decodebin ! appsink");
  // A parameter's value runs to the next space: over-masking is the safe side.
  EXPECT_EQ(RedactUrl("cannot open http://u:pw@h:1/s?token=t: connection refused"),
            "cannot open http://u:***@h:1/s?token=*** connection refused");
  EXPECT_EQ(RedactUrl("no data from http://h/?token=abc for 2 s"),
            "no data from http://h/?token=*** for 2 s");
  EXPECT_EQ(RedactUrl("a://x:y@z b://p:q@r"), "a://x:***@z b://p:***@r");
}

TEST(RedactUrlTest, EverythingElseIsKept) {
  for (const char* kept :
       {"pattern:640x480@30", "/dev/video0", "file:/tmp/a b.avi", "",
        "http://127.0.0.1:8080/stream.mjpg?width=320", "://", "@", "?=&=", "bufcam:320x240@50/4"}) {
    EXPECT_EQ(RedactUrl(kept), kept);
  }
}

}  // namespace
}  // namespace freshframe::httpclient
