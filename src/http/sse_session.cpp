// The SSE session of GET /api/events: detection sets as Server-Sent Events,
// newest-only, with keep-alive comments while idle.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <chrono>

#include <spdlog/spdlog.h>
#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "core/clock.h"
#include "http/session.h"

namespace freshframe::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;

// A comment line: ignored by EventSource, but it keeps proxies from timing
// the stream out and lets a dead peer be noticed (the write fails or stalls).
constexpr std::string_view kKeepAlive = ": keepalive\n\n";
constexpr std::chrono::seconds kKeepAliveInterval{15};

// Newest-only: at most one write in flight; while it is, only the newest
// offered event is kept (pending_), older ones are skipped.
//
// One timer serves both deadlines the session has: while a write is in
// flight it is the write-stall deadline, while idle the keep-alive one.
class SseSession final : public EventSubscriber, public std::enable_shared_from_this<SseSession> {
 public:
  // The tcp_stream's own timeouts are not used: the session's timer is.
  SseSession(beast::tcp_stream stream, ServerContext& context, std::string peer, std::string path)
      : socket_(stream.release_socket()),
        context_(context),
        stats_(context.clients.Add(peer, std::move(path))),
        peer_(std::move(peer)),
        timer_(socket_.get_executor()) {}

  ~SseSession() override {
    spdlog::info("client {} disconnected from events ({}; {} events sent)", peer_, reason_, sent_);
  }

  void Start() {
    spdlog::info("client {} connected to events", peer_);
    HoldBackUnsent();
    context_.events.Subscribe(weak_from_this());
    DoWatchClient();
    ArmTimer(kKeepAliveInterval);
    // The newest set is the current state, however old: a new client gets it
    // at once instead of waiting for the next inference. (Subscribed first,
    // so an event published meanwhile arrives through OnEvent either way.)
    if (auto latest = context_.events.Latest()) {
      net::post(socket_.get_executor(),
                [self = shared_from_this(), latest] { self->Offer(latest); });
    }
  }

  bool OnEvent(const DetectionEventPtr& event) override {
    if (closed_.load(std::memory_order_relaxed)) return false;
    net::post(socket_.get_executor(), [self = shared_from_this(), event] { self->Offer(event); });
    return true;
  }

 private:
  // Events are small: a client that stops reading could have the kernel
  // queue hundreds of them, to be read later as a backlog of stale sets. With
  // TCP_NOTSENT_LOWAT at 1 byte the kernel accepts more only while nothing
  // (beyond one partly filled segment) waits to be sent; bytes sent but not
  // yet acknowledged do not count, so a healthy client far away is not slowed
  // down. Until then the write stays in flight here and pending_ keeps only
  // the newest event. A write that blocks also has the kernel wake the socket
  // when it drains, so no separate wait for writability is needed.
  void HoldBackUnsent() {
    const int lowat = 1;
    if (setsockopt(socket_.native_handle(), IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof lowat) !=
        0) {
      spdlog::warn("client {}: TCP_NOTSENT_LOWAT unavailable; events may queue up for it", peer_);
    }
  }

  void Offer(const DetectionEventPtr& event) {
    if (closed_.load(std::memory_order_relaxed)) return;
    if (event->version <= last_version_) return;  // sent already (Latest and OnEvent)
    if (writing_) {
      // The newest waits; an older one waiting is dropped (skipped).
      if (!pending_ || pending_->version < event->version) pending_ = event;
      return;
    }
    DoWrite(event);
  }

  // An event client has nothing more to say; a read that completes means it
  // went away (or sent junk, which is discarded). The pending read also keeps
  // the session alive between events.
  void DoWatchClient() {
    socket_.async_read_some(
        net::buffer(discard_),
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnClientData(ec); });
  }

  void OnClientData(beast::error_code ec) {
    if (ec) return End(ec == net::error::eof ? "client closed" : ec.message());
    DoWatchClient();
  }

  // Writes `event`, or a keep-alive comment if it is null.
  void DoWrite(DetectionEventPtr event) {
    writing_ = true;
    in_flight_ = std::move(event);
    const net::const_buffer data = in_flight_ ? net::buffer(in_flight_->text)
                                              : net::buffer(kKeepAlive.data(), kKeepAlive.size());
    ArmTimer(context_.options.write_stall_timeout);
    net::async_write(socket_, data, [self = shared_from_this()](beast::error_code ec, size_t) {
      self->OnWrite(ec);
    });
  }

  void OnWrite(beast::error_code ec) {
    if (ec) return End(ec.message());
    writing_ = false;
    if (in_flight_) {
      const uint64_t skipped = last_version_ == 0 ? 0 : in_flight_->version - last_version_ - 1;
      last_version_ = in_flight_->version;
      ++sent_;
      stats_->CountSent(MonotonicMicros(), skipped);
      in_flight_.reset();
    }
    DetectionEventPtr next = std::move(pending_);
    pending_.reset();
    if (next && next->version > last_version_) return DoWrite(std::move(next));
    ArmTimer(kKeepAliveInterval);
  }

  // Re-arming cancels the previous wait; `arm` tells a wait that completed
  // just before (its handler already queued) from the current one.
  void ArmTimer(std::chrono::steady_clock::duration after) {
    const uint64_t arm = ++timer_arm_;
    timer_.expires_after(after);
    timer_.async_wait(
        [self = shared_from_this(), arm](beast::error_code ec) { self->OnTimer(ec, arm); });
  }

  void OnTimer(beast::error_code ec, uint64_t arm) {
    if (ec || arm != timer_arm_ || closed_.load(std::memory_order_relaxed)) return;
    if (writing_) return End("write stalled");
    DoWrite(nullptr);
  }

  // Ends the session, once: the first reason given is the one logged. The
  // socket's and the timer's pending handlers then complete with errors and
  // drop their references; the last one destroys the session.
  void End(std::string why) {
    // Relaxed: the event thread reads the flag only to stop posting sooner;
    // anything it posts meanwhile is ignored on the strand.
    if (closed_.exchange(true, std::memory_order_relaxed)) return;
    reason_ = std::move(why);
    writing_ = false;
    pending_.reset();
    timer_.cancel();
    beast::error_code ignored;
    socket_.shutdown(net::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  net::ip::tcp::socket socket_;
  ServerContext& context_;
  std::shared_ptr<ClientStats> stats_;
  std::string peer_;
  net::steady_timer timer_;
  uint64_t timer_arm_ = 0;
  std::atomic<bool> closed_{false};
  std::array<char, 256> discard_{};
  bool writing_ = false;
  DetectionEventPtr in_flight_;  // null while a keep-alive is written
  DetectionEventPtr pending_;
  uint64_t last_version_ = 0;
  uint64_t sent_ = 0;
  std::string reason_ = "server stopped";
};

}  // namespace

void StartSseSession(beast::tcp_stream stream, ServerContext& context, std::string peer,
                     std::string path) {
  std::make_shared<SseSession>(std::move(stream), context, std::move(peer), std::move(path))
      ->Start();
}

}  // namespace freshframe::http
