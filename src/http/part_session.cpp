#include "http/part_session.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <chrono>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "core/clock.h"
#include "http/client_log.h"

namespace freshframe::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;

// A part captured this recently is as fresh as the next one: a new client
// gets it at once.
constexpr int64_t kFreshUs = 100'000;
// Unsent bytes below which the previous part counts as delivered: small
// against a part (tens of KB), large enough not to wait for the last ACKs.
constexpr int kNotSentLowWater = 16 * 1024;

}  // namespace

bool HoldBackUnsent(net::ip::tcp::socket& socket, int bytes) {
  return setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_NOTSENT_LOWAT, &bytes, sizeof bytes) ==
         0;
}

PartSession::PartSession(net::any_io_executor executor, ServerContext& context,
                         StreamContextPtr stream, std::string peer, std::string path,
                         LeasePtr lease, StreamQuery query, std::string_view kind)
    : context_(context),
      stream_(std::move(stream)),
      peer_(std::move(peer)),
      executor_(executor),
      path_(std::move(path)),
      lease_(std::move(lease)),
      query_(query),
      kind_(kind),
      send_metrics_(stream_->deps.metrics.Stage("send")),
      timer_(executor),
      rate_(query.fps),
      reason_(kServerStopping) {}

PartSession::~PartSession() {
  if (stats_) LogClientDisconnected(*stats_, kind_, reason_, bytes_);
}

void PartSession::StartParts() {
  // HttpSession reserved the variant's place before the header went out
  // (VariantStreams::Reserve); this fails only if that took longer than
  // kReservationTimeout and the places filled meanwhile.
  auto feed =
      stream_->variants.Open(query_.variant, context_.options.max_variants, MonotonicMicros());
  if (!feed) {
    spdlog::info("client {}: variant refused: {}", peer_, feed.error().message);
    return End("variant refused");
  }
  feed_ = std::move(feed).value();
  stats_ = stream_->clients.Add(peer_, path_);
  LogClientConnected(*stats_, kind_);
  if (!HoldBackUnsent(Socket(), kNotSentLowWater)) {
    spdlog::warn("client {}: TCP_NOTSENT_LOWAT unavailable; slow clients may lag", peer_);
  }
  feed_->Subscribe(weak_from_this());
  // Anything older than kFreshUs (encoded for an earlier viewer or a
  // snapshot) is stale: wait for the next part, unless no new frames are
  // coming, in which case the last one is served. (Subscribed first, so a
  // part delivered meanwhile arrives through OnPart either way.)
  if (auto latest = feed_->Latest()) {
    if (MonotonicMicros() - latest->frame->meta.stamps.capture_us < kFreshUs ||
        !stream_->SourceLive()) {
      Offer(std::move(latest));
    }
  }
}

bool PartSession::OnPart(const StreamPartPtr& part) {
  if (ended()) return false;
  net::post(executor_, [self = shared_from_this(), part] { self->Offer(part); });
  return true;
}

void PartSession::OnClosed() {
  if (ended()) return;
  net::post(executor_, [self = shared_from_this()] { self->End(std::string(kStreamRemoved)); });
}

void PartSession::Offer(StreamPartPtr part) {
  if (ended() || !part || !parts_.IsNew(part)) return;
  if (parts_.busy()) return parts_.Hold(std::move(part));  // skips an older one waiting
  const int64_t now = MonotonicMicros();
  if (!rate_.Due(now)) {
    // Too soon for this client's ?fps: the part waits, and a newer one that
    // comes in time replaces it (RateCap).
    parts_.Hold(std::move(part));
    timer_.Arm(std::chrono::microseconds(rate_.deadline_us() - now),
               [self = shared_from_this()] { self->Offer(self->parts_.TakePending()); });
    return;
  }
  Write(std::move(part));
}

void PartSession::Write(StreamPartPtr part) {
  rate_.Sent(MonotonicMicros());
  parts_.Begin(std::move(part));
  timer_.Arm(context_.options.write_stall_timeout,
             [self = shared_from_this()] { self->End(std::string(kWriteStallTimeout)); });
  WritePart(*parts_.in_flight());
}

void PartSession::OnPartWritten(beast::error_code ec, size_t bytes) {
  bytes_ += bytes;
  part_bytes_ = bytes;
  if (ended()) return;
  if (ec) return End(DisconnectReason(ec));
  // The part is in the kernel, but not yet on its way: a client that reads
  // slowly would otherwise let the socket buffer fill with parts that get
  // older while they wait. With TCP_NOTSENT_LOWAT the socket reports
  // writable only once almost all of it has left, so the next part is chosen
  // (the newest) only when the client can actually take it. The stall
  // deadline armed in Write still runs.
  Socket().async_wait(
      net::socket_base::wait_write,
      [self = shared_from_this()](beast::error_code wait_ec) { self->OnDrained(wait_ec); });
}

void PartSession::OnDrained(beast::error_code ec) {
  if (ended()) return;
  if (ec) return End(DisconnectReason(ec));
  timer_.Disarm();
  const int64_t now = MonotonicMicros();
  const int64_t capture_us = parts_.in_flight()->frame->meta.stamps.capture_us;
  const uint64_t skipped = parts_.Finish();
  stats_->CountSent(now, skipped, part_bytes_);
  send_metrics_.Record(now, -1, static_cast<double>(now - capture_us) / 1000.0);
  if (skipped > 0) send_metrics_.CountSkipped(skipped);
  Offer(parts_.TakePending());
}

void PartSession::End(std::string reason) {
  if (ended_.exchange(true, std::memory_order_relaxed)) return;
  reason_ = std::move(reason);
  // The part in flight stays: the transport's pending write still uses it.
  parts_.TakePending();
  timer_.Close();
  CloseTransport();
}

}  // namespace freshframe::http
