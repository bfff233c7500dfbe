// The WebSocket session of GET /ws/stream: one binary message per frame (a
// 32-byte header, then the JPEG; ws_frame.h, docs/websocket.md), newest-only
// with at most one message in flight, like the MJPEG stream (part_session.h).
// GET /ws/h264 is the same session over the H.264 access units (header
// "FFH4"), skipping to the next keyframe when slow; its client may send the
// text message "key" to ask for an IDR.
#include <array>

#include <spdlog/spdlog.h>
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

#include "http/client_log.h"
#include "http/part_session.h"
#include "http/ws_frame.h"

namespace freshframe::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;

std::string WsHeaderText(const encode::EncodedFrame& frame) {
  const WsHeader header = MakeWsHeader(frame);
  return std::string(header.begin(), header.end());
}

class WsSession final : public PartSession {
 public:
  WsSession(beast::tcp_stream stream, ServerContext& context, StreamContextPtr target,
            std::string peer, std::string path, LeasePtr lease, StreamQuery query,
            WsRequest request, encode::Codec codec)
      : PartSession(stream.get_executor(), context, std::move(target), std::move(peer),
                    std::move(path), std::move(lease), query,
                    codec == encode::Codec::kH264 ? "ws-h264" : "ws", codec),
        ws_(std::move(stream)),
        request_(std::move(request)) {}

  void Start() {
    // Beast's timeouts replace the tcp_stream's: 30 s for the handshake; an
    // idle client is pinged after 150 s and dropped after 300 s without an
    // answer (browsers answer pings by themselves). Writes have the
    // session's stall deadline.
    beast::get_lowest_layer(ws_).expires_never();
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& response) {
      response.set(beast::http::field::server, "freshframe/" FRESHFRAME_VERSION);
    }));
    SetServerMessageOptions(ws_);  // ws_frame.h: limits, binary, one frame per message
    // Answers 101, or 400 / 426 (wrong Sec-WebSocket-Version) for a request
    // that is no valid handshake, and then fails with the reason.
    ws_.async_accept(request_,
                     [self = SharedAs<WsSession>()](beast::error_code ec) { self->OnAccept(ec); });
  }

 private:
  void OnAccept(beast::error_code ec) {
    request_ = {};
    if (ec) {
      spdlog::debug("client {}: WebSocket handshake refused: {}", peer_, ec.message());
      return End("handshake refused: " + ec.message());
    }
    DoRead();
    StartParts();
  }

  // A read is always pending: it lets Beast answer pings and the closing
  // handshake, notices a client that went away, and keeps the session alive.
  void DoRead() {
    ws_.async_read(incoming_, [self = SharedAs<WsSession>()](beast::error_code ec, size_t) {
      self->OnRead(ec);
    });
  }

  void OnRead(beast::error_code ec) {
    if (ended()) return;
    if (ec == websocket::error::closed) return End(std::string(kPeerClosed));
    if (ec) return End(DisconnectReason(ec));
    // The only message that means anything: an H.264 client's key request
    // (rate-limited by the encoder's KeyframeRequests, so a flood costs
    // nothing more). Anything else is read and dropped.
    if (h264() && ws_.got_text() && beast::buffers_to_string(incoming_.data()) == kWsKeyRequest) {
      RequestKeyframe(h264::KeyReason::kClient);
    }
    incoming_.clear();
    DoRead();
  }

  net::ip::tcp::socket& Socket() override { return beast::get_lowest_layer(ws_).socket(); }

  void WritePart(const StreamPart& part) override {
    const auto& jpeg = part.frame->bytes;
    const std::string& header = part.Framed(Framing::kWebSocket, &WsHeaderText);
    const std::array<net::const_buffer, 2> buffers{net::buffer(header),
                                                   net::buffer(jpeg.data(), jpeg.size())};
    // Beast reports the payload's bytes; the frame header adds 2 to 10.
    ws_.async_write(buffers, [self = SharedAs<WsSession>()](beast::error_code ec, size_t bytes) {
      self->OnPartWritten(ec, bytes);
    });
  }

  // No closing handshake: the session ends because the client went away,
  // stalled, or the handshake failed (Beast has answered that).
  void CloseTransport() override {
    beast::error_code ignored;
    Socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
    Socket().close(ignored);
  }

  websocket::stream<beast::tcp_stream> ws_;
  WsRequest request_;  // until the handshake is answered
  beast::flat_buffer incoming_;
};

}  // namespace

void StartWsSession(beast::tcp_stream stream, ServerContext& context, StreamContextPtr target,
                    std::string peer, std::string path, LeasePtr lease, StreamQuery query,
                    WsRequest request, encode::Codec codec) {
  std::make_shared<WsSession>(std::move(stream), context, std::move(target), std::move(peer),
                              std::move(path), std::move(lease), query, std::move(request), codec)
      ->Start();
}

}  // namespace freshframe::http
