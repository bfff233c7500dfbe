// libFuzzer target: the client's bytes on a GET /ws/stream connection after
// the handshake, read as the server reads them, and the frame header of the
// server's messages (src/http/ws_frame.h).
//
// The input is what a client sends once the upgrade is answered: WebSocket
// frames of any kind (masked or not, 7-, 16- and 64-bit lengths, control
// frames, fragments, close codes, text that is not UTF-8, garbage). The
// server's end is a Beast websocket::stream over beast::test::stream (no
// socket), accepted from a parsed upgrade request and configured with the
// session's SetServerMessageOptions (ws_frame.h: 4 KiB message limit,
// binary, one frame per message). As WsSession (ws_session.cpp) does, a read
// is always pending and every message read is dropped, while the server
// writes frames (MakeWsHeader's 32-byte header and a payload) one at a time.
// The bytes arrive in pieces of a size taken from the input; when they are
// used up the client closes the connection.
//
// Beyond "no sanitizer report", it checks:
// - the read loop ends (with the client's close, its end of stream, or a
//   protocol error), and no message longer than kWsMaxClientMessage is
//   ever handed to the session;
// - everything the server sent is a valid server-to-client stream: the 101
//   answer, then whole frames only, never masked, no RSV bits, no
//   continuation (one frame per message), control frames final and at most
//   125 bytes, close payloads empty or a code that may be on the wire,
//   nothing after a close;
// - the binary messages the server sent are exactly the ones it wrote, in
//   order, and each header parses back (ParseWsHeader) to what was written;
// - ParseWsHeader on the raw input and on every client message keeps to its
//   contract (a header length within 32..size).
//
// Build and run: fuzz/README.md.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket.hpp>

#include "http/ws_frame.h"

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace websocket = boost::beast::websocket;
namespace fh = freshframe::http;

constexpr int kServerMessages = 3;  // frames the server writes while it reads

// A failed property: libFuzzer saves the input as a crash artifact.
void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "ws_frame_fuzzer: check failed: %s\n", what);
    std::abort();
  }
}

void CheckHeaderContract(const unsigned char* data, size_t size) {
  const auto fields = fh::ParseWsHeader(data, size);
  if (!fields) return;
  Check(size >= fh::kWsHeaderSize, "header parsed from fewer than 32 bytes");
  Check(fields->header_length >= fh::kWsHeaderSize && fields->header_length <= size,
        "header length out of 32..size");
}

bhttp::request<bhttp::string_body> UpgradeRequest() {
  bhttp::request<bhttp::string_body> request{bhttp::verb::get, "/ws/stream", 11};
  request.set(bhttp::field::host, "127.0.0.1:8080");
  request.set(bhttp::field::upgrade, "websocket");
  request.set(bhttp::field::connection, "Upgrade");
  request.set(bhttp::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
  request.set(bhttp::field::sec_websocket_version, "13");
  return request;
}

// What the server writes: its messages' bytes (header + payload) in order.
struct Written {
  std::vector<std::string> messages;
};

// WsSession's read loop and writes on a test stream.
class Server {
 public:
  Server(net::io_context& io, Written& written, uint64_t first_sequence)
      : ws_(io), written_(written), sequence_(first_sequence) {}

  beast::test::stream& transport() { return ws_.next_layer(); }

  void Start() {
    fh::SetServerMessageOptions(ws_);
    ws_.async_accept(UpgradeRequest(), [this](beast::error_code ec) {
      Check(!ec, "a valid upgrade refused");
      accepted_ = true;
      DoRead();
      DoWrite();
    });
  }

  bool accepted() const { return accepted_; }
  bool read_ended() const { return read_ended_; }

 private:
  void DoRead() {
    ws_.async_read(incoming_, [this](beast::error_code ec, size_t bytes) {
      if (ec) {
        read_ended_ = true;
        return;
      }
      Check(bytes <= fh::kWsMaxClientMessage && incoming_.size() <= fh::kWsMaxClientMessage,
            "a message over the limit was read");
      const auto data = incoming_.cdata();
      CheckHeaderContract(static_cast<const unsigned char*>(data.data()), data.size());
      incoming_.clear();  // a data message from the client means nothing here
      DoRead();
    });
  }

  void DoWrite() {
    if (writes_ == kServerMessages || read_ended_) return;
    freshframe::encode::EncodedFrame frame;
    frame.meta.sequence = sequence_ + static_cast<uint64_t>(writes_);
    frame.meta.stamps.capture_us = 1000 + writes_;
    frame.meta.width = 640;
    frame.meta.height = 480;
    header_ = fh::MakeWsHeader(frame);
    payload_ = std::string(static_cast<size_t>(100 * writes_ + 2), 'J');
    std::string message(header_.begin(), header_.end());
    message += payload_;
    written_.messages.push_back(std::move(message));
    ++writes_;
    const std::array<net::const_buffer, 2> buffers{net::buffer(header_), net::buffer(payload_)};
    ws_.async_write(buffers, [this](beast::error_code ec, size_t) {
      if (!ec) DoWrite();
    });
  }

  websocket::stream<beast::test::stream> ws_;
  Written& written_;
  uint64_t sequence_;
  beast::flat_buffer incoming_;
  fh::WsHeader header_{};
  std::string payload_;
  int writes_ = 0;
  bool accepted_ = false;
  bool read_ended_ = false;
};

// A close code that may be on the wire (RFC 6455 7.4): never below 1000,
// 1004-1006 (reserved, or only for reporting), 1015 (TLS) or the rest of
// 1016-2999. Beast answers a client's close with the client's code, and
// accepts codes above 4999, which the RFC leaves undefined.
bool SendableCloseCode(unsigned code) {
  return code >= 1000 && !(code >= 1004 && code <= 1006) && !(code >= 1015 && code <= 2999);
}

// Checks the server-to-client byte stream; returns the binary messages.
std::vector<std::string> ServerFrames(std::string_view out) {
  const auto end_of_header = out.find("\r\n\r\n");
  Check(out.starts_with("HTTP/1.1 101 ") && end_of_header != std::string_view::npos,
        "no 101 answer");
  out.remove_prefix(end_of_header + 4);
  std::vector<std::string> messages;
  bool closed = false;
  while (!out.empty()) {
    Check(!closed, "a frame after the close frame");
    Check(out.size() >= 2, "a partial frame header");
    const auto b0 = static_cast<unsigned char>(out[0]);
    const auto b1 = static_cast<unsigned char>(out[1]);
    const bool fin = (b0 & 0x80) != 0;
    const unsigned opcode = b0 & 0x0F;
    Check((b0 & 0x70) == 0, "RSV bits set");
    Check((b1 & 0x80) == 0, "a masked server frame");
    uint64_t length = b1 & 0x7F;
    size_t header = 2;
    if (length == 126 || length == 127) {
      const size_t bytes = length == 126 ? 2 : 8;
      Check(out.size() >= 2 + bytes, "a partial extended length");
      length = 0;
      for (size_t i = 0; i < bytes; ++i) {
        length = (length << 8) | static_cast<unsigned char>(out[2 + i]);
      }
      Check(length >= (bytes == 2 ? 126U : 65536U), "a length not in its shortest form");
      header += bytes;
    }
    Check(length <= out.size() - header, "a partial frame payload");
    const std::string_view payload = out.substr(header, static_cast<size_t>(length));
    out.remove_prefix(header + static_cast<size_t>(length));
    switch (opcode) {
      case 0x2:
        Check(fin, "a fragmented server message");
        messages.emplace_back(payload);
        break;
      case 0x8:
        Check(fin && payload.size() <= 125, "a bad close frame");
        Check(payload.size() != 1, "a close payload of one byte");
        if (payload.size() >= 2) {
          const unsigned code = static_cast<unsigned>(static_cast<unsigned char>(payload[0]) << 8) |
                                static_cast<unsigned char>(payload[1]);
          Check(SendableCloseCode(code), "a close code a server may not send");
        }
        closed = true;
        break;
      case 0x9:
      case 0xA:
        Check(fin && payload.size() <= 125, "a bad ping or pong");
        break;
      default:
        Check(false, "an opcode the server never sends");
    }
  }
  return messages;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  CheckHeaderContract(data, size);

  // One io_context for all inputs: making one (and its reactor) costs more
  // than most inputs. No work is left in it between inputs.
  static net::io_context io;
  io.restart();
  Written written;
  Server server(io, written, 1 + size);
  beast::test::stream client(io);
  server.transport().connect(client);
  // Bytes arrive as the socket delivers them: in pieces of a size from the
  // input (so that every input reproduces exactly), sometimes all at once.
  const size_t step = size % 5 == 0 ? size + 1 : 1 + size % 67;
  server.transport().read_size(step);
  server.transport().append(input);
  server.Start();
  // Until the server has read all it was sent and answered it; then the
  // client goes away and the pending read ends.
  while (io.poll() > 0) {
  }
  client.close();
  io.restart();
  io.run();
  Check(server.accepted(), "the handshake did not complete");
  Check(server.read_ended(), "the read loop did not end");

  const std::vector<std::string> sent = ServerFrames(client.str());
  Check(sent.size() <= written.messages.size(), "the server sent messages nobody wrote");
  for (size_t i = 0; i < sent.size(); ++i) {
    Check(sent[i] == written.messages[i], "a message other than the one written");
    const auto fields =
        fh::ParseWsHeader(reinterpret_cast<const unsigned char*>(sent[i].data()), sent[i].size());
    Check(fields && fields->version == fh::kWsVersion &&
              fields->header_length == fh::kWsHeaderSize && fields->sequence == 1 + size + i &&
              fields->capture_us == 1000 + i && fields->width == 640 && fields->height == 480,
          "the frame header does not parse back");
  }
  return 0;
}
