#include "httpclient/http_response.h"

#include <gtest/gtest.h>

#include <string>

namespace freshframe::httpclient {
namespace {

TEST(HttpResponseTest, FindHeadEnd) {
  EXPECT_EQ(FindHeadEnd("HTTP/1.1 200 OK\r\nA: b\r\n"), std::string_view::npos);
  EXPECT_EQ(FindHeadEnd("HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody"), 25u);
  EXPECT_EQ(FindHeadEnd("HTTP/1.1 200 OK\nA: b\n\nbody"), 22u);
  EXPECT_EQ(FindHeadEnd("HTTP/1.1 200 OK\r\n\r\n"), 19u);
  EXPECT_EQ(FindHeadEnd(""), std::string_view::npos);
}

TEST(HttpResponseTest, ParsesStatusAndHeaders) {
  std::string error;
  const auto head = ParseResponseHead(
      "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace;boundary=frame\r\n"
      "Cache-Control:no-cache \r\n\r\n",
      &error);
  ASSERT_TRUE(head) << error;
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->reason, "OK");
  ASSERT_NE(head->Find("content-type"), nullptr);
  EXPECT_EQ(*head->Find("content-type"), "multipart/x-mixed-replace;boundary=frame");
  EXPECT_EQ(*head->Find("cache-control"), "no-cache");
  EXPECT_EQ(head->Find("content-length"), nullptr);

  const auto not_found = ParseResponseHead("HTTP/1.0 404 Not Found\r\n\r\n");
  ASSERT_TRUE(not_found);
  EXPECT_EQ(not_found->status, 404);
  EXPECT_EQ(not_found->reason, "Not Found");
  const auto no_reason = ParseResponseHead("HTTP/1.1 204\r\n\r\n");
  ASSERT_TRUE(no_reason);
  EXPECT_EQ(no_reason->status, 204);
}

TEST(HttpResponseTest, RejectsBadHeads) {
  std::string error;
  EXPECT_FALSE(ParseResponseHead("ICY 200 OK\r\n\r\n", &error));
  EXPECT_NE(error.find("status line"), std::string::npos);
  EXPECT_FALSE(ParseResponseHead("HTTP/1.1 2x0 OK\r\n\r\n"));
  EXPECT_FALSE(ParseResponseHead("HTTP/1.1 200OK\r\n\r\n"));
  EXPECT_FALSE(ParseResponseHead("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", &error));
  EXPECT_NE(error.find("header"), std::string::npos);
  EXPECT_FALSE(ParseResponseHead("HTTP/1.1 200 OK\r\nbad name: x\r\n\r\n"));
  EXPECT_FALSE(ParseResponseHead(""));
}

TEST(HttpResponseTest, MultipartBoundary) {
  EXPECT_EQ(MultipartBoundary("multipart/x-mixed-replace;boundary=frame"), "frame");
  EXPECT_EQ(MultipartBoundary("Multipart/X-Mixed-Replace; Boundary=\"a;b c\"; x=y"), "a;b c");
  EXPECT_EQ(MultipartBoundary("multipart/x-mixed-replace; charset=x; boundary = --jpgboundary"),
            "--jpgboundary");
  EXPECT_EQ(MultipartBoundary("multipart/mixed;boundary=\"q\\\"x\""), "q\"x");
  EXPECT_FALSE(MultipartBoundary("multipart/x-mixed-replace"));
  EXPECT_FALSE(MultipartBoundary("multipart/x-mixed-replace; boundary="));
  EXPECT_FALSE(MultipartBoundary("multipart/x-mixed-replace; boundary=\"open"));
  EXPECT_FALSE(MultipartBoundary("text/html; boundary=frame"));
  EXPECT_FALSE(MultipartBoundary(""));
}

TEST(HttpResponseTest, ChunkedDecodesAtEverySplit) {
  const std::string encoded =
      "5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n6\nworld!\n0\r\nTrailer: x\r\n\r\n";
  const std::string expected = "hello 0123456789world!";
  for (size_t cut = 0; cut <= encoded.size(); ++cut) {
    ChunkedDecoder decoder;
    std::string out;
    ASSERT_TRUE(decoder.Decode(std::string_view(encoded).substr(0, cut), &out)) << cut;
    ASSERT_TRUE(decoder.Decode(std::string_view(encoded).substr(cut), &out)) << decoder.error();
    EXPECT_EQ(out, expected) << cut;
    EXPECT_TRUE(decoder.done());
  }
}

TEST(HttpResponseTest, ChunkedErrors) {
  for (const char* bad : {"zz\r\n", "5\r\nhelloX\r\n", "12345678901234567\r\n"}) {
    ChunkedDecoder decoder;
    std::string out;
    EXPECT_FALSE(decoder.Decode(bad, &out)) << bad;
    EXPECT_FALSE(decoder.error().empty());
    EXPECT_FALSE(decoder.Decode("5\r\nhello\r\n", &out));  // sticky
  }
  ChunkedDecoder decoder;
  std::string out;
  EXPECT_FALSE(decoder.Decode(std::string(5000, '1'), &out));
}

}  // namespace
}  // namespace freshframe::httpclient
