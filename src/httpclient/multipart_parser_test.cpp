#include "httpclient/multipart_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace freshframe::httpclient {
namespace {

using Status = MultipartParser::Status;

struct Parsed {
  std::vector<std::string> bodies;
  std::vector<std::vector<MultipartParser::Header>> headers;
  Status last = Status::kNeedMore;
  std::string error;
};

// Feeds `pieces` one after another, draining parts after each.
Parsed ParsePieces(const std::string& boundary, const std::vector<std::string>& pieces,
                   size_t max_part = MultipartParser::kDefaultMaxPartBytes) {
  MultipartParser parser(boundary, max_part);
  Parsed out;
  for (const std::string& piece : pieces) {
    parser.Feed(piece);
    MultipartParser::Part part;
    while ((out.last = parser.Next(&part)) == Status::kPart) {
      out.bodies.emplace_back(part.body);
      out.headers.push_back(part.headers);
    }
    if (out.last == Status::kError || out.last == Status::kEnd) break;
  }
  out.error = parser.error();
  return out;
}

Parsed ParseAll(const std::string& boundary, const std::string& stream) {
  return ParsePieces(boundary, {stream});
}

// A body with bytes that look like parts of a delimiter, CRLFs and NULs.
std::string TrickyBody(int i) {
  std::string body = "\xff\xd8 body " + std::to_string(i) + " \r\n--fram\r\n-- frame\n--";
  body.push_back('\0');
  for (int b = 0; b < 256; ++b) body.push_back(static_cast<char>(b));
  body += "--frame_not_it\r\n--framez\r\n\r\n\xff\xd9";
  return body;
}

struct StreamStyle {
  bool content_length = true;
  bool crlf_before_boundary = true;
  bool lf_only = false;
  bool closing = false;
};

std::string BuildStream(const std::vector<std::string>& bodies, const StreamStyle& style) {
  const std::string eol = style.lf_only ? "\n" : "\r\n";
  std::string s;
  for (size_t i = 0; i < bodies.size(); ++i) {
    if (i > 0 && style.crlf_before_boundary) s += eol;
    s += "--frame" + eol + "Content-Type: image/jpeg" + eol;
    if (style.content_length) s += "Content-Length: " + std::to_string(bodies[i].size()) + eol;
    s += "X-Frame-Timestamp: " + std::to_string(1000 + i) + eol + eol + bodies[i];
  }
  // Without a length the last body ends only at a delimiter line.
  if (!bodies.empty() && (style.crlf_before_boundary || !style.content_length)) s += eol;
  if (style.closing)
    s += "--frame--" + eol;
  else
    s += "--frame" + eol;
  return s;
}

TEST(MultipartParserTest, ParsesPartsWithHeaders) {
  const std::vector<std::string> bodies = {"abc", "", "hello\r\nworld"};
  const Parsed p = ParseAll("frame", BuildStream(bodies, {}));
  EXPECT_EQ(p.bodies, bodies);
  ASSERT_EQ(p.headers.size(), 3u);
  EXPECT_EQ(p.headers[0][0].name, "content-type");
  EXPECT_EQ(p.headers[0][0].value, "image/jpeg");
  MultipartParser::Part part;
  part.headers = p.headers[2];
  ASSERT_NE(part.Find("x-frame-timestamp"), nullptr);
  EXPECT_EQ(*part.Find("x-frame-timestamp"), "1002");
  EXPECT_EQ(part.Find("content-disposition"), nullptr);
  EXPECT_EQ(p.last, Status::kNeedMore);
}

// Every style, the stream cut in two at every byte position, and fed one
// byte at a time: always the same parts.
TEST(MultipartParserTest, SplitAtEveryPositionAllStyles) {
  const std::vector<std::string> bodies = {TrickyBody(0), TrickyBody(1), "x", TrickyBody(2)};
  for (int mask = 0; mask < 16; ++mask) {
    StreamStyle style;
    style.content_length = (mask & 1) != 0;
    style.crlf_before_boundary = (mask & 2) != 0;
    style.lf_only = (mask & 4) != 0;
    style.closing = (mask & 8) != 0;
    SCOPED_TRACE("style mask " + std::to_string(mask));
    const std::string stream = BuildStream(bodies, style);
    const Status expected_last = style.closing ? Status::kEnd : Status::kNeedMore;
    for (size_t cut = 0; cut <= stream.size(); ++cut) {
      const Parsed p = ParsePieces("frame", {stream.substr(0, cut), stream.substr(cut)});
      ASSERT_EQ(p.bodies, bodies) << "cut at " << cut << ": " << p.error;
      ASSERT_EQ(p.last, expected_last) << "cut at " << cut;
    }
    std::vector<std::string> bytes;
    for (char c : stream) bytes.emplace_back(1, c);
    const Parsed p = ParsePieces("frame", bytes);
    EXPECT_EQ(p.bodies, bodies) << p.error;
  }
}

TEST(MultipartParserTest, MissingContentLengthScansForBoundary) {
  const std::string stream =
      "--frame\r\nContent-Type: image/jpeg\r\n\r\nfirst\r\n--frame\r\n\r\n"
      "second -- with --fra and --frame_x inside\r\n--frame\r\n";
  const Parsed p = ParseAll("frame", stream);
  ASSERT_EQ(p.bodies.size(), 2u) << p.error;
  EXPECT_EQ(p.bodies[0], "first");
  EXPECT_EQ(p.bodies[1], "second -- with --fra and --frame_x inside");
}

TEST(MultipartParserTest, BoundaryNotPrecededByCrlf) {
  // A counted body followed directly by the next delimiter.
  const std::string stream =
      "--frame\r\nContent-Length: 3\r\n\r\nabc--frame\r\nContent-Length: 2\r\n\r\nde--frame\r\n";
  const Parsed p = ParseAll("frame", stream);
  EXPECT_EQ(p.bodies, (std::vector<std::string>{"abc", "de"})) << p.error;
}

TEST(MultipartParserTest, SkipsPreambleAndExtraBlankLines) {
  const std::string stream =
      "This is a preamble.\r\n\r\n--frame\r\nContent-Length: 1\r\n\r\nA\r\n\r\n\r\n"
      "--frame  \r\nContent-Length: 1\r\n\r\nB\r\n--frame\r\n";
  const Parsed p = ParseAll("frame", stream);
  EXPECT_EQ(p.bodies, (std::vector<std::string>{"A", "B"})) << p.error;
}

TEST(MultipartParserTest, BoundaryDeclaredWithLeadingDashes) {
  // Content-Type said boundary=--myboundary and the server writes
  // "--myboundary" lines (a common mistake); the standard "----myboundary"
  // must work as well.
  const std::string stream =
      "--myboundary\r\nContent-Length: 2\r\n\r\nab\r\n----myboundary\r\n\r\ncd\r\n"
      "--myboundary\r\n\r\nef\r\n--myboundary\r\n";
  const Parsed p = ParseAll("--myboundary", stream);
  EXPECT_EQ(p.bodies, (std::vector<std::string>{"ab", "cd", "ef"})) << p.error;
}

TEST(MultipartParserTest, ClosingDelimiterEndsTheStream) {
  MultipartParser parser("b");
  parser.Feed("--b\r\nContent-Length: 1\r\n\r\nx\r\n--b--\r\nepilogue");
  MultipartParser::Part part;
  ASSERT_EQ(parser.Next(&part), Status::kPart);
  EXPECT_EQ(part.body, "x");
  EXPECT_EQ(parser.Next(&part), Status::kEnd);
  parser.Feed("more epilogue");
  EXPECT_EQ(parser.Next(&part), Status::kEnd);
}

TEST(MultipartParserTest, BufferStaysBounded) {
  MultipartParser parser("frame");
  const std::string body(10000, 'j');
  const std::string part_bytes =
      "--frame\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body + "\r\n";
  size_t max_buffered = 0;
  int parts = 0;
  for (int i = 0; i < 200; ++i) {
    // Fed in ragged pieces, as from a socket.
    for (size_t pos = 0; pos < part_bytes.size(); pos += 4093) {
      parser.Feed(std::string_view(part_bytes).substr(pos, 4093));
      MultipartParser::Part part;
      while (parser.Next(&part) == Status::kPart) {
        ASSERT_EQ(part.body.size(), body.size());
        ++parts;
      }
      max_buffered = std::max(max_buffered, parser.buffered());
    }
  }
  // A counted body is handed out as soon as its last byte arrives, without
  // waiting for the next delimiter: that wait would be latency.
  EXPECT_EQ(parts, 200);
  EXPECT_LT(max_buffered, 2 * part_bytes.size());
}

void ExpectError(const std::string& stream, const std::string& fragment,
                 size_t max_part = MultipartParser::kDefaultMaxPartBytes) {
  SCOPED_TRACE(stream.substr(0, 80));
  const Parsed p = ParsePieces("frame", {stream}, max_part);
  EXPECT_EQ(p.last, Status::kError);
  EXPECT_NE(p.error.find(fragment), std::string::npos) << p.error;
  // Also when the same bytes arrive one at a time.
  std::vector<std::string> bytes;
  for (char c : stream) bytes.emplace_back(1, c);
  const Parsed q = ParsePieces("frame", bytes, max_part);
  EXPECT_EQ(q.last, Status::kError);
}

// A part without Content-Length over the limit is refused however the bytes
// arrive: also when its delimiter comes in the same read (found by
// fuzz/mjpeg_source_fuzzer.cpp: that part used to be returned whole), and a
// part at the limit is returned even when its delimiter trickles in.
TEST(MultipartParserTest, UncountedPartOverTheLimitIsAnErrorHoweverItArrives) {
  const std::string over = "--frame\r\n\r\n" + std::string(65, 'x') + "\r\n--frame\r\n";
  const Parsed at_once = ParsePieces("frame", {over}, 64);
  EXPECT_EQ(at_once.last, Status::kError);
  EXPECT_TRUE(at_once.bodies.empty());
  EXPECT_NE(at_once.error.find("exceeds the limit"), std::string::npos) << at_once.error;
  std::vector<std::string> bytes;
  for (char c : over) bytes.emplace_back(1, c);
  EXPECT_EQ(ParsePieces("frame", bytes, 64).last, Status::kError);

  const std::string at_limit = "--frame\r\n\r\n" + std::string(64, 'x') + "\r\n--frame\r\n";
  bytes.clear();
  for (char c : at_limit) bytes.emplace_back(1, c);
  for (const Parsed& parsed :
       {ParsePieces("frame", {at_limit}, 64), ParsePieces("frame", bytes, 64)}) {
    ASSERT_EQ(parsed.bodies.size(), 1u) << parsed.error;
    EXPECT_EQ(parsed.bodies[0].size(), 64u);
  }
}

TEST(MultipartParserTest, BadHeadersAreErrors) {
  ExpectError("--frame\r\nContent-Type image/jpeg\r\n\r\nabc\r\n--frame\r\n", "colon");
  ExpectError("--frame\r\nBad Name: x\r\n\r\nabc\r\n--frame\r\n", "header name");
  ExpectError("--frame\r\n: empty\r\n\r\nabc\r\n--frame\r\n", "header name");
  ExpectError("--frame\r\nContent-Length: 12x\r\n\r\nabc", "Content-Length");
  ExpectError("--frame\r\nContent-Length: -3\r\n\r\nabc", "Content-Length");
  ExpectError("--frame\r\nContent-Length:\r\n\r\nabc", "Content-Length");
  ExpectError("--frame\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc", "conflicting");
  ExpectError("--frame\r\nContent-Length: 99999999999\r\n\r\n", "exceeds");
  // A body straight after the delimiter, with no header section.
  ExpectError("--frame\r\n\xff\xd8\xff\xe0 binary\r\n\r\n", "colon");
  ExpectError("--frame\r\nX-Long: " + std::string(20000, 'a'), "too long");
}

TEST(MultipartParserTest, StreamErrors) {
  // The counted body is followed by junk instead of a delimiter.
  ExpectError("--frame\r\nContent-Length: 2\r\n\r\nabc\r\n--frame\r\n", "expected the boundary");
  // A wrong length lands in the middle of the next part.
  ExpectError("--frame\r\nContent-Length: 1\r\n\r\nabc\r\n--frame\r\n", "expected the boundary");
  ExpectError(std::string(70000, 'x'), "no multipart boundary");
  ExpectError("--frame\r\n\r\n" + std::string(30000, 'z'), "exceeds", 1000);
}

TEST(MultipartParserTest, EmptyBoundaryIsAnError) {
  MultipartParser parser("");
  parser.Feed("--\r\n\r\n");
  MultipartParser::Part part;
  EXPECT_EQ(parser.Next(&part), Status::kError);
}

}  // namespace
}  // namespace freshframe::httpclient
