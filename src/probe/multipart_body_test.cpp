#include "probe/multipart_body.h"

#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace freshframe::probe {
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

}  // namespace
}  // namespace freshframe::probe
