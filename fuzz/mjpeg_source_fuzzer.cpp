// libFuzzer target: what the MJPEG source (src/capture/mjpeg_source.cpp)
// does with the bytes an upstream HTTP server sends, without the socket.
//
// Input: 5 control bytes, then the raw response as it would come off the
// connection (head and endless body). Control byte 0 picks the part size
// limit (64 B .. 8 KiB, so that the limit is reached often); bytes 1..4 are
// the lengths (1..256) of the pieces the "socket" delivers, used in turn.
// The response goes through the source's own code: httpclient::FindHeadEnd as the
// head arrives piece by piece, capture::ParseMjpegResponse (status,
// multipart boundary, Transfer-Encoding, Content-Encoding), then
// httpclient::MultipartBody (de-chunking, multipart boundaries, part headers,
// Content-Length), and capture::JpegSize / JpegPartProblem on every part.
//
// Beyond "no sanitizer report", it checks:
// - the head ends at the same byte whether it arrives at once or in pieces;
// - a refused head's message starts with the (redacted) URL it was given;
// - the body fed at once and fed in pieces gives the same parts, in the same
//   order, and the same final status (more / ended / broken);
// - no part is larger than the configured limit;
// - a part JpegPartProblem accepts has a size within the decoder limits;
// - an X-Server-Timestamp that capture::ParseStampSeconds accepts is digits
//   with at most one dot and gives a non-negative time; the RemoteClock fed
//   with every accepted one reports the smallest sample as its offset (or 0).
//
// Build and run: fuzz/README.md.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "capture/mjpeg_stream.h"
#include "capture/remote_clock.h"
#include "httpclient/http_response.h"
#include "httpclient/multipart_body.h"

namespace {

using freshframe::httpclient::MultipartBody;

constexpr size_t kControlBytes = 5;
const std::string kShownUrl = "http://upstream:8080/stream.mjpg?token=***";

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "property violated: %s\n", what);
    std::abort();
  }
}

struct Outcome {
  std::vector<std::string> parts;
  std::vector<std::string> server_stamps;  // X-Server-Timestamp values, as sent
  MultipartBody::Status status = MultipartBody::Status::kMore;
};

// Feeds `body` in pieces of the given lengths (cycled; one piece if empty),
// stopping at the first status other than kMore, as the source does.
Outcome FeedInPieces(const freshframe::capture::MjpegStreamFormat& format, size_t max_part,
                     std::string_view body, const std::vector<size_t>& pieces) {
  Outcome out;
  MultipartBody parser(format.boundary, format.chunked, max_part);
  auto collect = [&out](const freshframe::httpclient::MultipartParser::Part& part) {
    out.parts.emplace_back(part.body);
    if (const std::string* stamp = part.Find("x-server-timestamp")) {
      out.server_stamps.push_back(*stamp);
    }
  };
  size_t next = 0;
  while (!body.empty() && out.status == MultipartBody::Status::kMore) {
    const size_t n = pieces.empty() ? body.size() : std::min(body.size(), pieces[next]);
    next = pieces.empty() ? 0 : (next + 1) % pieces.size();
    out.status = parser.Feed(body.substr(0, n), collect);
    body.remove_prefix(n);
  }
  return out;
}

void CheckJpeg(std::string_view part) {
  using namespace freshframe::capture;
  const auto size = JpegSize(part);
  if (size) Check(size->first >= 0 && size->first <= 0xFFFF, "JpegSize width out of range");
  if (size) Check(size->second >= 0 && size->second <= 0xFFFF, "JpegSize height out of range");
  if (JpegPartProblem(part).empty()) {
    Check(size.has_value(), "a part without a size was accepted");
    Check(size->first > 0 && size->second > 0 && size->first <= kMaxJpegSide &&
              size->second <= kMaxJpegSide && int64_t{size->first} * size->second <= kMaxJpegPixels,
          "an absurd JPEG size was accepted");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < kControlBytes) return 0;
  const size_t max_part = size_t{64} << (data[0] % 8);
  std::vector<size_t> pieces;
  for (size_t i = 1; i < kControlBytes; ++i) pieces.push_back(size_t{data[i]} + 1);
  const std::string_view stream(reinterpret_cast<const char*>(data) + kControlBytes,
                                size - kControlBytes);

  // The head, as ReadHead assembles it.
  const size_t head_end = freshframe::httpclient::FindHeadEnd(stream);
  std::string head;
  size_t found = std::string::npos;
  for (size_t at = 0, next = 0; at < stream.size() && found == std::string::npos;) {
    const size_t n = std::min(stream.size() - at, pieces[next]);
    next = (next + 1) % pieces.size();
    head.append(stream.substr(at, n));
    at += n;
    found = freshframe::httpclient::FindHeadEnd(head);
  }
  Check(found == head_end, "the head ends elsewhere when it arrives in pieces");
  if (head_end == std::string::npos || head_end > freshframe::httpclient::kMaxResponseHeadBytes) {
    return 0;
  }

  auto format = freshframe::capture::ParseMjpegResponse(stream.substr(0, head_end), kShownUrl);
  if (!format) {
    Check(format.error().message.rfind(kShownUrl, 0) == 0, "an error does not name the URL");
    return 0;
  }
  Check(!format->boundary.empty(), "an empty boundary was accepted");

  const std::string_view body = stream.substr(head_end);
  const Outcome at_once = FeedInPieces(*format, max_part, body, {});
  const Outcome in_pieces = FeedInPieces(*format, max_part, body, pieces);
  Check(at_once.status == in_pieces.status, "pieces change the final status");
  Check(at_once.parts == in_pieces.parts, "pieces change the parts");
  Check(at_once.server_stamps == in_pieces.server_stamps, "pieces change the part headers");
  freshframe::capture::RemoteClock clock;
  int64_t received_us = 1'000'000'000'000;
  int64_t smallest = INT64_MAX;
  for (const std::string& stamp : at_once.server_stamps) {
    const std::optional<int64_t> sent = freshframe::capture::ParseStampSeconds(stamp);
    if (!sent) continue;
    Check(*sent >= 0, "a negative stamp was accepted");
    Check(stamp.find_first_not_of("0123456789.") == std::string::npos &&
              stamp.find('.') == stamp.rfind('.'),
          "a stamp that is not SECONDS[.FRACTION] was accepted");
    received_us += 1000;
    clock.Sample(received_us, *sent);
    smallest = std::min(smallest, received_us - *sent);
  }
  if (smallest != INT64_MAX) {
    const int64_t offset = clock.offset().value_or(-1);
    Check(offset == smallest ||
              (offset == 0 && std::llabs(smallest) < freshframe::capture::RemoteClock::kSameHostUs),
          "the clock offset is not the smallest sample");
  }
  for (const std::string& part : at_once.parts) {
    Check(part.size() <= max_part, "a part exceeds the configured maximum");
    CheckJpeg(part);
  }
  // The sizing also runs on the raw body: it is what arrives when a part's
  // headers are wrong.
  CheckJpeg(body);
  return 0;
}
