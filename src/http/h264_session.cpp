// The session of GET /stream.h264: the H.264 elementary stream (Annex B, SPS
// and PPS before each IDR) as the body of one endless response, for ffplay,
// ffmpeg, VLC and GStreamer. It starts at an IDR and skips to the next one
// when the client cannot keep up (part_session.h), so a player never gets a
// P-frame whose reference it missed.
#include <array>

#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>

#include "http/client_log.h"
#include "http/part_session.h"

namespace freshframe::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;

class H264Session final : public PartSession {
 public:
  H264Session(beast::tcp_stream stream, ServerContext& context, StreamContextPtr target,
              std::string peer, std::string path, LeasePtr lease)
      : PartSession(stream.get_executor(), context, std::move(target), std::move(peer),
                    std::move(path), std::move(lease), StreamQuery{}, "h264", encode::Codec::kH264),
        socket_(stream.release_socket()) {}

  void Start() {
    DoWatchClient();
    StartParts();
  }

 private:
  // The client has nothing to say: a read that completes means it went away
  // (or sent junk, which is discarded).
  void DoWatchClient() {
    socket_.async_read_some(net::buffer(discard_),
                            [self = SharedAs<H264Session>()](beast::error_code ec, size_t) {
                              if (self->ended()) return;
                              if (ec) return self->End(DisconnectReason(ec));
                              self->DoWatchClient();
                            });
  }

  net::ip::tcp::socket& Socket() override { return socket_; }

  // The access unit as it is: Annex B is self-delimiting (start codes).
  void WritePart(const StreamPart& part) override {
    const auto& bytes = part.frame->bytes;
    net::async_write(socket_, net::buffer(bytes.data(), bytes.size()),
                     [self = SharedAs<H264Session>()](beast::error_code ec, size_t written) {
                       self->OnPartWritten(ec, written);
                     });
  }

  void CloseTransport() override {
    beast::error_code ignored;
    socket_.shutdown(net::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  net::ip::tcp::socket socket_;
  std::array<char, 512> discard_{};
};

}  // namespace

void StartH264Session(beast::tcp_stream stream, ServerContext& context, StreamContextPtr target,
                      std::string peer, std::string path, LeasePtr lease) {
  std::make_shared<H264Session>(std::move(stream), context, std::move(target), std::move(peer),
                                std::move(path), std::move(lease))
      ->Start();
}

}  // namespace freshframe::http
