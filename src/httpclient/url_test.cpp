// ParseUrl and Url: the forms accepted and refused, and the credentials they
// carry.
#include "httpclient/url.h"

#include <gtest/gtest.h>

#include <string>

namespace freshframe::httpclient {
namespace {

TEST(UrlTest, AcceptedForms) {
  auto url = ParseUrl("http://127.0.0.1:8080/stream.mjpg?x=1");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->host, "127.0.0.1");
  EXPECT_EQ(url->port, 8080);
  EXPECT_EQ(url->target, "/stream.mjpg?x=1");
  EXPECT_EQ(url->HostHeader(), "127.0.0.1:8080");

  url = ParseUrl("HTTP://localhost:9");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->host, "localhost");
  EXPECT_EQ(url->target, "/stream.mjpg");

  url = ParseUrl("http://[::1]:8080/");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->target, "/stream.mjpg");
  EXPECT_EQ(url->HostHeader(), "[::1]:8080");

  url = ParseUrl("http://cam.local/live/feed.mjpg#top");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->port, 80);
  EXPECT_EQ(url->target, "/live/feed.mjpg");

  url = ParseUrl("http://h:1?token=a%20b");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->target, "/stream.mjpg?token=a%20b");
}

TEST(UrlTest, RejectedForms) {
  for (const char* bad : {"",
                          "127.0.0.1:8080/stream.mjpg",
                          "https://127.0.0.1/",
                          "ftp://h/",
                          "http://",
                          "http://:80/",
                          "http://h:/",
                          "http://h:0/",
                          "http://h:65536/",
                          "http://h:80x/",
                          "http://h:123456/",
                          "http://[::1/",
                          "http://[::1]x/",
                          "http://[zz]/",
                          "http://@h/",
                          "http://:p@h/",
                          "http://u%zz:p@h/",
                          "http://u:p%4@h/",
                          "http://h/a b",
                          "http://h\n/",
                          "http://h!/"}) {
    std::string why;
    EXPECT_FALSE(ParseUrl(bad, &why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
}

// Credentials in the URL go in a header, never in the request target.
TEST(UrlTest, UserInfoBecomesBasicCredentials) {
  auto url = ParseUrl("http://alice:s%40cret:x@127.0.0.1:8080/stream.mjpg");
  ASSERT_TRUE(url);
  EXPECT_EQ(url->host, "127.0.0.1");
  EXPECT_EQ(url->user, "alice");
  EXPECT_EQ(url->password, "s@cret:x");
  EXPECT_EQ(url->target, "/stream.mjpg");
  // base64("alice:s@cret:x")
  EXPECT_EQ(url->AuthorizationHeader(), "Authorization: Basic YWxpY2U6c0BjcmV0Ong=\r\n");
  // A bearer token wins; without either there is no header.
  EXPECT_EQ(url->AuthorizationHeader("T0k"), "Authorization: Bearer T0k\r\n");
  EXPECT_EQ(ParseUrl("http://h/")->AuthorizationHeader(), "");
  // Base64 padding of each length class.
  EXPECT_EQ(ParseUrl("http://a:@h/")->AuthorizationHeader(), "Authorization: Basic YTo=\r\n");
  EXPECT_EQ(ParseUrl("http://ab:@h/")->AuthorizationHeader(), "Authorization: Basic YWI6\r\n");
  EXPECT_EQ(ParseUrl("http://abc:d@h/")->AuthorizationHeader(),
            "Authorization: Basic YWJjOmQ=\r\n");
}

}  // namespace
}  // namespace freshframe::httpclient
