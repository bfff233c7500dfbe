// The MJPEG session of GET /stream.mjpg and /?action=stream: one multipart
// part per frame, newest-only with at most one part in flight
// (part_session.h).
#include <array>
#include <cstdio>

#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>

#include "core/clock.h"
#include "http/client_log.h"
#include "http/part_session.h"

namespace freshframe::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;

// Each part is followed at once by the next delimiter rather than preceded
// by it, so that a client knows a part has ended without waiting for the
// next one (mjpg-streamer and uStreamer end their parts the same way).
constexpr std::string_view kOpening = "--freshframe-boundary\r\n";
constexpr std::string_view kPartTrailer = "\r\n--freshframe-boundary\r\n";
// ?parts=early: the next part's headers follow the delimiter at once.
// Browsers (Chromium, Firefox) show a part only when the NEXT part's headers
// have arrived, whatever Content-Length says: with full headers, which can
// only be written once the next frame exists, every frame would wait on
// screen for the next one, a whole frame interval (33 ms at 30 fps, 1 s at
// 1 fps). Early headers cannot hold the next frame's Content-Length or
// stamps, so these parts carry Content-Type only.
constexpr std::string_view kEarlyHeader = "Content-Type: image/jpeg\r\n\r\n";

// A part's headers, with its stamps (as uStreamer puts them in its headers)
// and this server's clock as the part goes out (formatted by the first
// session that sends it): another host reading the stream learns from it how
// our CLOCK_MONOTONIC, the stamps' and the strip's clock, relates to its own
// (capture/remote_clock.h).
std::string MultipartHeader(const encode::EncodedFrame& frame) {
  char header[320];
  const int n = std::snprintf(
      header, sizeof header,
      "Content-Type: image/jpeg\r\nContent-Length: %zu\r\n"
      "X-Frame-Timestamp: %s\r\nX-Frame-Sequence: %llu\r\nX-Server-Timestamp: %s\r\n\r\n",
      frame.bytes.size(), FormatStampSeconds(frame.meta.stamps.capture_us).c_str(),
      static_cast<unsigned long long>(frame.meta.sequence),
      FormatStampSeconds(MonotonicMicros()).c_str());
  return std::string(header, static_cast<size_t>(n));
}
static_assert(kOpening.substr(2, kBoundary.size()) == kBoundary);
static_assert(kPartTrailer.substr(4, kBoundary.size()) == kBoundary);

class MjpegSession final : public BodyPartSession {
 public:
  // The tcp_stream's own timeouts are not used: the session's stall
  // deadline is.
  MjpegSession(beast::tcp_stream stream, ServerContext& context, StreamContextPtr target,
               std::string peer, std::string path, LeasePtr lease, StreamQuery query)
      : BodyPartSession(std::move(stream), context, std::move(target), std::move(peer),
                        std::move(path), std::move(lease), query, "mjpeg"),
        early_(query.early_parts) {}

  void Start() { StartBody(); }

 private:
  // One scatter/gather write: the opening delimiter (first part only), the
  // part's headers (unless sent early), the shared JPEG, the delimiter that
  // ends the part (and, early, the next part's headers).
  void WritePart(const StreamPart& part) override {
    const auto& jpeg = part.frame->bytes;
    const std::string_view opening = opened_ ? std::string_view() : kOpening;
    const std::string_view header =
        !early_   ? std::string_view(part.Framed(Framing::kMultipart, &MultipartHeader))
        : opened_ ? std::string_view()
                  : kEarlyHeader;
    opened_ = true;
    const std::array<net::const_buffer, 5> buffers{
        net::buffer(opening.data(), opening.size()), net::buffer(header.data(), header.size()),
        net::buffer(jpeg.data(), jpeg.size()),
        net::buffer(kPartTrailer.data(), kPartTrailer.size()),
        early_ ? net::buffer(kEarlyHeader.data(), kEarlyHeader.size()) : net::const_buffer()};
    WriteBody(buffers);
  }

  const bool early_;     // ?parts=early
  bool opened_ = false;  // the opening delimiter was sent
};

}  // namespace

void StartMjpegSession(beast::tcp_stream stream, ServerContext& context, StreamContextPtr target,
                       std::string peer, std::string path, LeasePtr lease) {
  // HttpSession has checked the query against the same source; should the
  // source have changed size since, the client gets the default picture.
  auto query = ParseStreamQuery(path, target->Source());
  std::make_shared<MjpegSession>(std::move(stream), context, std::move(target), std::move(peer),
                                 std::move(path), std::move(lease), query ? *query : StreamQuery{})
      ->Start();
}

}  // namespace freshframe::http
