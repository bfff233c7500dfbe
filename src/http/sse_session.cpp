// The SSE session of GET /api/events: detection sets as Server-Sent Events,
// newest-only, with keep-alive comments while idle.
#include <array>
#include <atomic>
#include <chrono>

#include <spdlog/spdlog.h>
#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "core/clock.h"
#include "http/client_log.h"
#include "http/newest_only.h"
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
// offered event waits, older ones are skipped (newest_only.h).
//
// One timer serves both deadlines the session has: while a write is in
// flight it is the write-stall deadline, while idle the keep-alive one.
class SseSession final : public EventSubscriber, public std::enable_shared_from_this<SseSession> {
 public:
  // The tcp_stream's own timeouts are not used: the session's timer is.
  SseSession(beast::tcp_stream stream, ServerContext& context, StreamContextPtr target,
             std::string peer, std::string path, LeasePtr lease)
      : socket_(stream.release_socket()),
        context_(context),
        stream_(std::move(target)),
        lease_(std::move(lease)),
        stats_(stream_->clients.Add(peer, std::move(path))),
        peer_(std::move(peer)),
        timer_(socket_.get_executor()) {}

  ~SseSession() override { LogClientDisconnected(*stats_, "sse", reason_, bytes_); }

  void Start() {
    LogClientConnected(*stats_, "sse");
    LimitUnsent();
    stream_->events.Subscribe(weak_from_this());
    DoWatchClient();
    ArmKeepAlive();
    // The newest set is the current state, however old: a new client gets it
    // at once instead of waiting for the next inference. (Subscribed first,
    // so an event published meanwhile arrives through OnEvent either way.)
    if (auto latest = stream_->events.Latest()) {
      net::post(socket_.get_executor(),
                [self = shared_from_this(), latest] { self->Offer(latest); });
    }
  }

  bool OnEvent(const DetectionEventPtr& event) override {
    if (closed_.load(std::memory_order_relaxed)) return false;
    net::post(socket_.get_executor(), [self = shared_from_this(), event] { self->Offer(event); });
    return true;
  }

  void OnClosed() override {
    net::post(socket_.get_executor(),
              [self = shared_from_this()] { self->End(std::string(kStreamRemoved)); });
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
  void LimitUnsent() {
    if (!HoldBackUnsent(socket_, 1)) {
      spdlog::warn("client {}: TCP_NOTSENT_LOWAT unavailable; events may queue up for it", peer_);
    }
  }

  void Offer(const DetectionEventPtr& event) {
    if (closed_.load(std::memory_order_relaxed)) return;
    if (!events_.IsNew(event)) return;         // sent already (Latest and OnEvent)
    if (writing_) return events_.Hold(event);  // an older one waiting is skipped
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
    if (ec) return End(DisconnectReason(ec));
    DoWatchClient();
  }

  // Writes `event`, or a keep-alive comment if it is null.
  void DoWrite(DetectionEventPtr event) {
    writing_ = true;
    if (event) events_.Begin(std::move(event));
    const net::const_buffer data = events_.busy()
                                       ? net::buffer(events_.in_flight()->text)
                                       : net::buffer(kKeepAlive.data(), kKeepAlive.size());
    timer_.Arm(context_.options.write_stall_timeout,
               [self = shared_from_this()] { self->End(std::string(kWriteStallTimeout)); });
    net::async_write(socket_, data,
                     [self = shared_from_this()](beast::error_code ec, size_t bytes) {
                       self->OnWrite(ec, bytes);
                     });
  }

  void OnWrite(beast::error_code ec, size_t bytes) {
    bytes_ += bytes;
    // A write that completed just before the session ended: nothing more to
    // send, and no keep-alive to arm.
    if (closed_.load(std::memory_order_relaxed)) return;
    if (ec) return End(DisconnectReason(ec));
    writing_ = false;
    if (events_.busy()) {
      const size_t size = events_.in_flight()->text.size();
      stats_->CountSent(MonotonicMicros(), events_.Finish(), size);
    }
    if (auto next = events_.TakePending()) return DoWrite(std::move(next));
    ArmKeepAlive();
  }

  void ArmKeepAlive() {
    timer_.Arm(kKeepAliveInterval, [self = shared_from_this()] {
      if (!self->closed_.load(std::memory_order_relaxed) && !self->writing_) self->DoWrite(nullptr);
    });
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
    events_.TakePending();  // the one in flight stays: the pending write uses it
    timer_.Close();
    beast::error_code ignored;
    socket_.shutdown(net::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  net::ip::tcp::socket socket_;
  ServerContext& context_;
  const StreamContextPtr stream_;  // keeps the stream's state alive while the session is
  LeasePtr lease_;                 // the connection's places in the limits, until it closes
  std::shared_ptr<ClientStats> stats_;
  std::string peer_;
  // While a write is in flight the write-stall deadline, while idle the
  // keep-alive one.
  DeadlineTimer timer_;
  std::atomic<bool> closed_{false};
  std::array<char, 256> discard_{};
  bool writing_ = false;  // an event or a keep-alive (then events_ is not busy)
  NewestOnly<DetectionEvent, &DetectionEvent::version> events_;
  uint64_t bytes_ = 0;  // written after the response header
  std::string reason_{kServerStopping};
};

}  // namespace

void StartSseSession(beast::tcp_stream stream, ServerContext& context, StreamContextPtr target,
                     std::string peer, std::string path, LeasePtr lease) {
  std::make_shared<SseSession>(std::move(stream), context, std::move(target), std::move(peer),
                               std::move(path), std::move(lease))
      ->Start();
}

}  // namespace freshframe::http
