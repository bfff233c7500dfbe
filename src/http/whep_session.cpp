// POST /whep (draft-ietf-wish-whep): the exchange of one WebRTC offer for its
// answer. The offer goes to the stream's WebRTC peers (http.h WhepDeps, the
// webrtc module), which negotiate on their own thread and call back; the
// answer is sent on this connection's strand, which then closes. The peer
// keeps the connection's lease, so a WebRTC viewer holds its places in the
// limits (--max-clients, per address) as long as it lives, like any viewer.
#include <chrono>
#include <memory>

#include <spdlog/spdlog.h>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http.hpp>

#include "http/session.h"

namespace freshframe::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

// ICE gathering on a LAN takes tens of milliseconds; the webrtc module
// bounds it itself. This is the backstop if it never answers.
constexpr std::chrono::seconds kWhepAnswerTimeout{10};

class WhepExchange : public std::enable_shared_from_this<WhepExchange> {
 public:
  WhepExchange(beast::tcp_stream stream, ServerContext& context, StreamContextPtr target,
               std::string peer, LeasePtr lease, std::string prefix, std::string allow_origin)
      : stream_(std::move(stream)),
        context_(context),
        target_(std::move(target)),
        peer_(std::move(peer)),
        lease_(std::move(lease)),
        prefix_(std::move(prefix)),
        allow_origin_(std::move(allow_origin)),
        timer_(stream_.get_executor()) {}

  void Start(std::string offer) {
    // The timer's wait keeps this exchange alive until the answer comes.
    timer_.expires_after(kWhepAnswerTimeout);
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec) return;
      self->Answer({503, "WebRTC negotiation timed out", {}, {}});
    });
    auto done = [weak = weak_from_this(), life = context_.life,
                 executor = stream_.get_executor()](WhepAnswer answer) {
      life->Post(executor, [weak, answer = std::move(answer)]() mutable {
        if (auto self = weak.lock()) self->Answer(std::move(answer));
      });
    };
    target_->deps.whep.offer(std::move(offer), peer_, lease_, std::move(done));
  }

 private:
  void Answer(WhepAnswer answer) {
    if (answered_) return;
    answered_ = true;
    timer_.cancel();
    const bool created = answer.status == 201;
    if (created) {
      spdlog::info("client {}: WebRTC session {} started", peer_, answer.id);
    } else {
      spdlog::info("client {}: WHEP offer refused: {} {}", peer_, answer.status, answer.body);
    }
    response_.result(static_cast<bhttp::status>(answer.status));
    response_.version(11);
    response_.set(bhttp::field::server, "freshframe/" FRESHFRAME_VERSION);
    response_.set(bhttp::field::cache_control, "no-store");
    response_.set(bhttp::field::content_type,
                  created ? "application/sdp" : "text/plain; charset=utf-8");
    if (created) {
      response_.set(bhttp::field::location, prefix_ + "whep/" + answer.id);
      response_.set(bhttp::field::etag, "\"" + answer.etag + "\"");
    } else {
      answer.body.append("\n");
    }
    if (answer.status == 503) response_.set(bhttp::field::retry_after, "5");
    if (!allow_origin_.empty()) {
      response_.set(bhttp::field::access_control_allow_origin, allow_origin_);
      response_.set(bhttp::field::vary, "Origin");
      response_.set(bhttp::field::access_control_expose_headers, "Location, ETag");
    }
    response_.body() = std::move(answer.body);
    response_.keep_alive(false);
    response_.prepare_payload();
    stream_.expires_after(context_.options.write_stall_timeout);
    bhttp::async_write(stream_, response_,
                       [self = shared_from_this()](beast::error_code, size_t) { self->Close(); });
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  ServerContext& context_;
  const StreamContextPtr target_;
  const std::string peer_;
  const LeasePtr lease_;
  const std::string prefix_;
  const std::string allow_origin_;
  net::steady_timer timer_;
  bhttp::response<bhttp::string_body> response_;
  bool answered_ = false;
};

}  // namespace

void StartWhepExchange(beast::tcp_stream stream, ServerContext& context, StreamContextPtr target,
                       std::string peer, LeasePtr lease, std::string offer, std::string prefix,
                       std::string allow_origin) {
  auto exchange =
      std::make_shared<WhepExchange>(std::move(stream), context, std::move(target), std::move(peer),
                                     std::move(lease), std::move(prefix), std::move(allow_origin));
  exchange->Start(std::move(offer));
}

}  // namespace freshframe::http
