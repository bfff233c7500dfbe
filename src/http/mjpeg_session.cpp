#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <array>

#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include "core/clock.h"
#include "http/session.h"

namespace freshframe::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;

constexpr std::string_view kPartTrailer = "\r\n";

// Newest-only: at most one part in flight; while it is being written, only
// the newest offered part is kept (pending_), older ones are skipped.
class MjpegSession final : public PartSubscriber,
                           public std::enable_shared_from_this<MjpegSession> {
 public:
  MjpegSession(beast::tcp_stream stream, ServerContext& context, std::string peer,
               std::string path)
      : stream_(std::move(stream)),
        context_(context),
        watching_(context.deps.demand),
        stats_(context.clients.Add(peer, path)),
        peer_(std::move(peer)),
        send_metrics_(context.deps.metrics.Stage("send")),
        stall_timer_(stream_.get_executor()) {}

  ~MjpegSession() override {
    spdlog::info("client {} disconnected from stream ({}; {} parts sent)", peer_, reason_, sent_);
  }

  void Start() {
    spdlog::info("client {} connected to stream", peer_);
    const int lowat = kNotSentLowWater;
    if (setsockopt(stream_.socket().native_handle(), IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat,
                   sizeof lowat) != 0) {
      spdlog::warn("client {}: TCP_NOTSENT_LOWAT unavailable; slow clients may lag", peer_);
    }
    context_.fanout.Subscribe(weak_from_this());
    DoWatchClient();
    // A part captured moments ago is as fresh as the next one: send it now.
    // Anything older (e.g. encoded for an earlier viewer or a snapshot) is
    // stale: wait for the next, unless no new frames are coming, in which
    // case the last one is served.
    if (auto latest = context_.fanout.Latest()) {
      if (MonotonicMicros() - latest->frame->meta.stamps.capture_us < kFreshUs ||
          !context_.SourceLive()) {
        net::post(stream_.get_executor(),
                  [self = shared_from_this(), latest] { self->Offer(latest); });
      }
    }
  }

  bool OnPart(const StreamPartPtr& part) override {
    if (closed_.load(std::memory_order_relaxed)) return false;
    net::post(stream_.get_executor(), [self = shared_from_this(), part] { self->Offer(part); });
    return true;
  }

 private:
  static constexpr int64_t kFreshUs = 100'000;
  // Unsent bytes below which the previous part counts as delivered: small
  // against a part (tens of KB), large enough not to wait for the last ACKs.
  static constexpr int kNotSentLowWater = 16 * 1024;

  void Offer(const StreamPartPtr& part) {
    if (closed_.load(std::memory_order_relaxed)) return;
    if (last_index_ != 0 && part->index <= last_index_) return;
    if (writing_) {
      pending_ = part;  // replaces an unsent older part: that one is skipped
      return;
    }
    DoWrite(part);
  }

  // A stream client has nothing more to say; a read that completes means it
  // went away (or sent junk, which is discarded). Keeping this read pending
  // also keeps the session alive while it waits for the next part. It uses
  // the raw socket so that the write timeout of tcp_stream does not apply.
  void DoWatchClient() {
    stream_.socket().async_read_some(
        net::buffer(discard_),
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnClientData(ec); });
  }

  void OnClientData(beast::error_code ec) {
    if (closed_.load(std::memory_order_relaxed)) return;
    if (ec) {
      reason_ = ec == net::error::eof ? "client closed" : ec.message();
      return Close();
    }
    DoWatchClient();
  }

  void DoWrite(StreamPartPtr part) {
    writing_ = true;
    in_flight_ = std::move(part);
    const auto& jpeg = in_flight_->frame->jpeg;
    const std::array<net::const_buffer, 3> buffers{
        net::buffer(in_flight_->header), net::buffer(jpeg.data(), jpeg.size()),
        net::buffer(kPartTrailer.data(), kPartTrailer.size())};
    stream_.expires_after(context_.options.write_stall_timeout);
    net::async_write(stream_, buffers,
                     [self = shared_from_this()](beast::error_code ec, size_t bytes) {
                       self->OnWrite(ec, bytes);
                     });
  }

  // The part is in the kernel, but not yet on its way: a client that reads
  // slowly would otherwise let the socket buffer fill with parts that get
  // older while they wait. With TCP_NOTSENT_LOWAT the socket reports
  // writable only once almost all of it has left, so the next part is chosen
  // (the newest) only when the client can actually take it.
  void OnWrite(beast::error_code ec, size_t /*bytes*/) {
    if (ec) return Fail(ec);
    stream_.socket().async_wait(net::socket_base::wait_write,
                                [self = shared_from_this()](beast::error_code wait_ec) {
                                  self->OnDrained(wait_ec);
                                });
    stall_timer_.expires_after(context_.options.write_stall_timeout);
    stall_timer_.async_wait([self = shared_from_this()](beast::error_code timer_ec) {
      if (!timer_ec && self->writing_) self->Fail(beast::error::timeout);
    });
  }

  void OnDrained(beast::error_code ec) {
    stall_timer_.cancel();
    if (ec) return Fail(ec);
    writing_ = false;
    const int64_t now = MonotonicMicros();
    const uint64_t skipped = last_index_ == 0 ? 0 : in_flight_->index - last_index_ - 1;
    last_index_ = in_flight_->index;
    ++sent_;
    stats_->CountSent(now, skipped);
    send_metrics_.Record(
        now, -1, static_cast<double>(now - in_flight_->frame->meta.stamps.capture_us) / 1000.0);
    if (skipped > 0) send_metrics_.CountSkipped(skipped);
    in_flight_.reset();
    if (pending_) {
      StreamPartPtr next = std::move(pending_);
      pending_.reset();
      if (next->index > last_index_) DoWrite(std::move(next));
    }
  }

  void Fail(beast::error_code ec) {
    writing_ = false;
    if (!closed_.load(std::memory_order_relaxed)) {
      reason_ = ec == beast::error::timeout ? "write stalled" : ec.message();
    }
    Close();
  }

  void Close() {
    if (closed_.load(std::memory_order_relaxed)) return;
    // Relaxed: read by the fan-out thread only to stop posting sooner; the
    // strand still discards anything posted after this.
    closed_.store(true, std::memory_order_relaxed);
    pending_.reset();
    stall_timer_.cancel();
    beast::error_code ignored;
    stream_.socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  ServerContext& context_;
  Demand::Hold watching_;
  std::shared_ptr<ClientStats> stats_;
  std::string peer_;
  StageMetrics& send_metrics_;
  net::steady_timer stall_timer_;
  std::atomic<bool> closed_{false};
  std::array<char, 512> discard_{};
  bool writing_ = false;
  StreamPartPtr in_flight_;
  StreamPartPtr pending_;
  uint64_t last_index_ = 0;
  uint64_t sent_ = 0;
  std::string reason_ = "server stopped";
};

}  // namespace

void StartMjpegSession(beast::tcp_stream stream, ServerContext& context, std::string peer,
                       std::string path) {
  std::make_shared<MjpegSession>(std::move(stream), context, std::move(peer), std::move(path))
      ->Start();
}

}  // namespace freshframe::http
