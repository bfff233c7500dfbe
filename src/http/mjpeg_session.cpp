// The MJPEG session of GET /stream.mjpg and /?action=stream: one multipart
// part per frame, newest-only with at most one part in flight
// (part_session.h).
#include <array>

#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>

#include "http/client_log.h"
#include "http/part_session.h"

namespace freshframe::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;

constexpr std::string_view kPartTrailer = "\r\n";

class MjpegSession final : public PartSession {
 public:
  // The tcp_stream's own timeouts are not used: the session's stall
  // deadline is.
  MjpegSession(beast::tcp_stream stream, ServerContext& context, std::string peer, std::string path,
               LeasePtr lease, StreamQuery query)
      : PartSession(stream.get_executor(), context, std::move(peer), std::move(path),
                    std::move(lease), query, "mjpeg"),
        socket_(stream.release_socket()) {}

  void Start() {
    DoWatchClient();
    StartParts();
  }

 private:
  // A stream client has nothing more to say; a read that completes means it
  // went away (or sent junk, which is discarded). Keeping this read pending
  // also keeps the session alive while it waits for the next part.
  void DoWatchClient() {
    socket_.async_read_some(net::buffer(discard_),
                            [self = SharedAs<MjpegSession>()](beast::error_code ec, size_t) {
                              self->OnClientData(ec);
                            });
  }

  void OnClientData(beast::error_code ec) {
    if (ended()) return;
    if (ec) return End(DisconnectReason(ec));
    DoWatchClient();
  }

  net::ip::tcp::socket& Socket() override { return socket_; }

  // One scatter/gather write: the part's header, the shared JPEG, CRLF.
  void WritePart(const StreamPart& part) override {
    const auto& jpeg = part.frame->jpeg;
    const std::array<net::const_buffer, 3> buffers{
        net::buffer(part.header), net::buffer(jpeg.data(), jpeg.size()),
        net::buffer(kPartTrailer.data(), kPartTrailer.size())};
    net::async_write(socket_, buffers,
                     [self = SharedAs<MjpegSession>()](beast::error_code ec, size_t bytes) {
                       self->OnPartWritten(ec, bytes);
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

void StartMjpegSession(beast::tcp_stream stream, ServerContext& context, std::string peer,
                       std::string path, LeasePtr lease) {
  // HttpSession has checked the query against the same source; should the
  // source have changed size since, the client gets the default picture.
  auto query = ParseStreamQuery(path, context.Source());
  std::make_shared<MjpegSession>(std::move(stream), context, std::move(peer), std::move(path),
                                 std::move(lease), query ? *query : StreamQuery{})
      ->Start();
}

}  // namespace freshframe::http
