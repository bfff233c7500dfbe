#include "http/part_session.h"

#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <chrono>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "core/clock.h"
#include "h264/h264.h"
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

// Bytes the kernel holds for `socket` that have not left yet (SIOCOUTQNSD:
// queued and not sent, so not the sent bytes waiting for their ACK), or -1.
int UnsentBytes(net::ip::tcp::socket& socket) {
  int unsent = 0;
  return ioctl(socket.native_handle(), SIOCOUTQNSD, &unsent) == 0 ? unsent : -1;
}

}  // namespace

bool HoldBackUnsent(net::ip::tcp::socket& socket, int bytes) {
  return setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_NOTSENT_LOWAT, &bytes, sizeof bytes) ==
         0;
}

PartSession::PartSession(net::any_io_executor executor, ServerContext& context,
                         StreamContextPtr stream, std::string peer, std::string path,
                         LeasePtr lease, StreamQuery query, std::string_view kind,
                         encode::Codec codec)
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
      stall_timer_(executor),
      rate_(query.fps),
      reason_(kServerStopping) {
  if (PolicyFor(codec) == SlowConsumerPolicy::kSkipToKeyframe) gate_.emplace();
}

PartSession::~PartSession() {
  if (h264_demand_) stream_->h264_viewers.fetch_sub(1, std::memory_order_relaxed);
  if (stats_) LogClientDisconnected(*stats_, kind_, reason_, bytes_);
}

void PartSession::StartParts() {
  if (gate_) {
    if (!SubscribeH264()) End("H.264 unavailable");
    return;
  }
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

// The stream's access units, every one of them (the gate decides), and an
// IDR asked for at once: the first picture then comes with the next frame
// rather than at the next periodic IDR.
bool PartSession::SubscribeH264() {
  if (!stream_->h264_parts || stream_->deps.h264 == nullptr) return false;
  feed_ = stream_->h264_parts;
  h264_demand_.emplace(stream_->deps.h264->demand());
  stream_->h264_viewers.fetch_add(1, std::memory_order_relaxed);
  stats_ = stream_->clients.Add(peer_, path_);
  stats_->SetKeyframeSkips(0, 0);
  LogClientConnected(*stats_, kind_);
  if (!HoldBackUnsent(Socket(), kNotSentLowWater)) {
    spdlog::warn("client {}: TCP_NOTSENT_LOWAT unavailable; slow clients may lag", peer_);
  }
  feed_->Subscribe(weak_from_this());
  RequestKeyframe(h264::KeyReason::kJoin);
  gate_->MarkAsked();
  return true;
}

void PartSession::RequestKeyframe(h264::KeyReason reason) {
  if (stream_->deps.h264 != nullptr) {
    stream_->deps.h264->keyframes().Request(reason, MonotonicMicros());
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
  if (ended() || !part) return;
  if (gate_) return OfferAccessUnit(std::move(part));
  if (!parts_.IsNew(part)) return;
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

void PartSession::OfferAccessUnit(StreamPartPtr unit) {
  if (const auto reason = gate_->Offer(std::move(unit))) RequestKeyframe(*reason);
  // The gate's figures, as they change: the client's, and the stream's sum
  // (which outlives the client).
  const uint64_t skips = gate_->skips_to_key();
  const uint64_t dropped = gate_->dropped();
  if (skips != gate_skips_ || dropped != gate_dropped_) {
    stream_->h264_skips_to_key.fetch_add(skips - gate_skips_, std::memory_order_relaxed);
    stream_->h264_dropped.fetch_add(dropped - gate_dropped_, std::memory_order_relaxed);
    gate_skips_ = skips;
    gate_dropped_ = dropped;
    stats_->SetKeyframeSkips(skips, dropped);
  }
  if (!parts_.busy()) SendNextAccessUnit();
}

void PartSession::SendNextAccessUnit() {
  if (auto next = gate_->Next()) Write(std::move(*next));
}

void PartSession::Write(StreamPartPtr part) {
  const int64_t now = MonotonicMicros();
  rate_.Sent(now);
  parts_.Begin(std::move(part));
  write_started_us_ = now;
  if (!stall_watched_) WatchStall(context_.options.write_stall_timeout);
  WritePart(*parts_.in_flight());
}

void PartSession::WatchStall(std::chrono::steady_clock::duration after) {
  stall_watched_ = true;
  stall_timer_.expires_after(after);
  stall_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    self->stall_watched_ = false;
    if (!ec) self->OnStallWatch();
  });
}

void PartSession::OnStallWatch() {
  if (ended() || !parts_.busy()) return;  // idle: the next write watches again
  const auto stall =
      std::chrono::duration_cast<std::chrono::microseconds>(context_.options.write_stall_timeout);
  const int64_t waited_us = MonotonicMicros() - write_started_us_;
  if (waited_us >= stall.count()) return End(std::string(kWriteStallTimeout));
  WatchStall(stall - std::chrono::microseconds(waited_us));
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
  // (the newest) only when the client can actually take it. The stall watch
  // started in Write still runs. A client that keeps up has taken the part
  // already (on loopback and fast links the kernel hands it on within the
  // write): asking the kernel then costs one ioctl instead of a trip through
  // epoll.
  const int unsent = UnsentBytes(Socket());
  if (unsent >= 0 && unsent < kNotSentLowWater) return OnDrained({});
  Socket().async_wait(
      net::socket_base::wait_write,
      [self = shared_from_this()](beast::error_code wait_ec) { self->OnDrained(wait_ec); });
}

void PartSession::OnDrained(beast::error_code ec) {
  if (ended()) return;
  if (ec) return End(DisconnectReason(ec));
  const int64_t now = MonotonicMicros();
  const int64_t capture_us = parts_.in_flight()->frame->meta.stamps.capture_us;
  const uint64_t skipped = parts_.Finish();
  stats_->CountSent(now, skipped, part_bytes_);
  send_metrics_.Record(now, -1, static_cast<double>(now - capture_us) / 1000.0);
  if (skipped > 0) send_metrics_.CountSkipped(skipped);
  if (gate_) return SendNextAccessUnit();
  Offer(parts_.TakePending());
}

void PartSession::End(std::string reason) {
  if (ended_.exchange(true, std::memory_order_relaxed)) return;
  reason_ = std::move(reason);
  // The part in flight stays: the transport's pending write still uses it.
  parts_.TakePending();
  if (gate_) gate_->Clear();
  timer_.Close();
  stall_timer_.cancel();
  CloseTransport();
}

BodyPartSession::BodyPartSession(beast::tcp_stream stream, ServerContext& context,
                                 StreamContextPtr target, std::string peer, std::string path,
                                 LeasePtr lease, StreamQuery query, std::string_view kind,
                                 encode::Codec codec)
    : PartSession(stream.get_executor(), context, std::move(target), std::move(peer),
                  std::move(path), std::move(lease), query, kind, codec),
      socket_(stream.release_socket()) {}

void BodyPartSession::StartBody() {
  // WriteBody writes at once and must not block: a full socket is
  // would_block, and the rest goes through the reactor.
  beast::error_code ec;
  socket_.non_blocking(true, ec);
  if (ec) return End(DisconnectReason(ec));
  DoWatchClient();
  StartParts();
}

void BodyPartSession::DoWatchClient() {
  socket_.async_read_some(net::buffer(discard_),
                          [self = SharedAs<BodyPartSession>()](beast::error_code ec, size_t) {
                            if (self->ended()) return;
                            if (ec) return self->End(DisconnectReason(ec));
                            self->DoWatchClient();
                          });
}

void BodyPartSession::CloseTransport() {
  beast::error_code ignored;
  socket_.shutdown(net::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

}  // namespace freshframe::http
