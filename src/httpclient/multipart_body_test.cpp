#include "httpclient/multipart_body.h"

#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace freshframe::httpclient {
namespace {

std::string Part(const std::string& body) {
  return "--b\r\nContent-Type: image/jpeg\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body + "\r\n";
}

std::string Chunk(const std::string& data) {
  char size[16];
  std::snprintf(size, sizeof size, "%zx", data.size());
  return std::string(size) + "\r\n" + data + "\r\n";
}

TEST(MultipartBodyTest, PlainBodyGivesPartsInOrderThenEnds) {
  MultipartBody body("b", false);
  std::vector<std::string> parts;
  auto collect = [&](std::string_view p) { parts.emplace_back(p); };
  const std::string stream = Part("one") + Part("two");
  // Byte by byte: parts come out whole whatever the pieces.
  for (char c : stream) {
    ASSERT_EQ(body.Feed(std::string_view(&c, 1), collect), MultipartBody::Status::kMore);
  }
  EXPECT_EQ(parts, (std::vector<std::string>{"one", "two"}));
  EXPECT_EQ(body.Feed("--b--\r\n", collect), MultipartBody::Status::kEnded);
  EXPECT_EQ(body.ended_by(), "closing boundary");
}

TEST(MultipartBodyTest, ChunkedBodyIsDechunkedAndItsLastChunkEndsIt) {
  MultipartBody body("b", true);
  std::vector<std::string> parts;
  auto collect = [&](std::string_view p) { parts.emplace_back(p); };
  const std::string first = Part("one");
  EXPECT_EQ(body.Feed(Chunk(first.substr(0, 10)) + Chunk(first.substr(10)), collect),
            MultipartBody::Status::kMore);
  EXPECT_EQ(parts, (std::vector<std::string>{"one"}));
  EXPECT_EQ(body.Feed("0\r\n\r\n", collect), MultipartBody::Status::kEnded);
  EXPECT_EQ(body.ended_by(), "last chunk");
}

TEST(MultipartBodyTest, BrokenChunkingOrPartsSayWhy) {
  auto ignore = [](std::string_view) {};
  MultipartBody chunked("b", true);
  EXPECT_EQ(chunked.Feed("zz\r\n", ignore), MultipartBody::Status::kBroken);
  EXPECT_NE(chunked.error().find("bad chunked encoding"), std::string::npos) << chunked.error();
  MultipartBody plain("b", false);
  EXPECT_EQ(plain.Feed("--b\r\nContent-Length: x\r\n\r\n", ignore), MultipartBody::Status::kBroken);
  EXPECT_NE(plain.error().find("bad multipart stream"), std::string::npos) << plain.error();
}

// The socket may hand over good chunks and a broken one in one read: the
// parts before the fault are delivered as they would be from separate reads.
TEST(MultipartBodyTest, PartsBeforeBrokenChunkingInTheSameBytesAreDelivered) {
  const std::string stream = Chunk(Part("one")) + "zz\r\n";
  std::vector<std::string> at_once;
  MultipartBody whole("b", true);
  EXPECT_EQ(whole.Feed(stream, [&](std::string_view p) { at_once.emplace_back(p); }),
            MultipartBody::Status::kBroken);
  EXPECT_EQ(at_once, (std::vector<std::string>{"one"}));
  EXPECT_NE(whole.error().find("bad chunked encoding"), std::string::npos) << whole.error();
}

}  // namespace
}  // namespace freshframe::httpclient
