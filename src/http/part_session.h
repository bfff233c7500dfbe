// Internal to src/http: what the MJPEG and WebSocket sessions share.
//
// A PartSession sends stream parts to one client over a transport that the
// derived class owns (a multipart body, WebSocket messages). It
//
// - subscribes to the client's part stream: the default one (holding Demand,
//   so the pipeline's encoder runs) or a pixel variant's (holding that
//   variant, so its encoder runs), for as long as it lives;
// - follows newest-only: at most one part in flight; while it is, only the
//   newest offered part waits and older ones are skipped (counted in the
//   client's ClientStats and the "send" stage);
// - after each write, waits until the socket has sent almost everything
//   (TCP_NOTSENT_LOWAT) before it picks the next part, so parts never age in
//   the kernel;
// - with ?fps=N sends at most N parts per second: a part that comes before
//   its time waits as the pending one (newest-only still) until it is due;
// - ends the session when one part takes longer than write_stall_timeout to
//   be written and leave the socket.
//
// The per-part path is what a large audience multiplies (a thousand viewers
// at 30 fps are 30 000 parts a second), so it does no more than a bare
// writer must: a body session writes at once from the strand (one writev;
// the reactor only for a remainder), the drain is read with one ioctl and
// waited for through epoll only when the kernel still holds the part, and
// the write stall is watched by a timer armed once per stall period rather
// than armed and cancelled around every part.
// An H.264 session (/ws/h264, /stream.h264) instead subscribes to the
// stream's access units, holds the H.264 encoder's Demand, and follows "skip
// to the next keyframe" (h264/keyframe_gate.h): it starts at an IDR, which it
// asks for as it joins; a few access units may wait behind the one in
// flight, and when the next finds no room it drops them all, asks for an IDR
// and waits for it. It never sends a P-frame whose reference it skipped.
//
// Thread-safety: everything except OnPart runs on the session's strand (the
// socket's executor). OnPart is called on the delivering thread; it only
// posts to the strand.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "h264/keyframe_gate.h"
#include "http/newest_only.h"
#include "http/session.h"
#include "http/stream_query.h"

namespace freshframe::http {

class PartSession : public PartSubscriber, public std::enable_shared_from_this<PartSession> {
 public:
  ~PartSession() override;
  PartSession(const PartSession&) = delete;
  PartSession& operator=(const PartSession&) = delete;

  bool OnPart(const StreamPartPtr& part) final;
  // The stream was removed (or the server stops): the session ends.
  void OnClosed() final;

 protected:
  // `executor`: the transport's (the session's strand). `kind`, a string
  // literal, names the transport in logs ("mjpeg", "ws"). `path` is the
  // target as ClientStats shows it (redacted). `codec`: kH264 for the
  // stream's H.264 access units (its query is then the default one).
  PartSession(boost::asio::any_io_executor executor, ServerContext& context,
              StreamContextPtr stream, std::string peer, std::string path, LeasePtr lease,
              StreamQuery query, std::string_view kind, encode::Codec codec = encode::Codec::kJpeg);

  // Registers the client, subscribes to its part stream and, if the current
  // part is fresh, sends it. Call once, on the strand, when the transport is
  // ready to carry parts.
  void StartParts();
  // Derived classes call this when a write started by WritePart completes,
  // with the bytes it wrote.
  void OnPartWritten(boost::beast::error_code ec, size_t bytes);
  // Ends the session, once: the first reason given is the one logged. The
  // transport's pending operations then complete with errors and drop their
  // references; the last one destroys the session.
  void End(std::string reason);
  bool ended() const { return ended_.load(std::memory_order_relaxed); }
  // H.264: asks the stream's encoder for an IDR (rate-limited there).
  void RequestKeyframe(h264::KeyReason reason);
  bool h264() const { return gate_.has_value(); }

  template <typename Derived>
  std::shared_ptr<Derived> SharedAs() {
    return std::static_pointer_cast<Derived>(shared_from_this());
  }

  // The transport's TCP socket (for the drain wait and socket options).
  virtual boost::asio::ip::tcp::socket& Socket() = 0;
  // Starts writing `part`, which stays alive until OnPartWritten is called.
  virtual void WritePart(const StreamPart& part) = 0;
  // Closes the transport; pending operations complete (with errors).
  virtual void CloseTransport() = 0;

  ServerContext& context_;
  const StreamContextPtr stream_;  // keeps the stream's state alive while the session is
  const std::string peer_;

 private:
  static const encode::EncodedFrame& FrameOfPart(const StreamPartPtr& part) { return *part->frame; }
  using Gate = h264::KeyframeGate<StreamPartPtr, &PartSession::FrameOfPart>;

  bool SubscribeH264();
  void Offer(StreamPartPtr part);
  void OfferAccessUnit(StreamPartPtr unit);
  void SendNextAccessUnit();
  void Write(StreamPartPtr part);
  void OnDrained(boost::beast::error_code ec);
  void WatchStall(std::chrono::steady_clock::duration after);
  void OnStallWatch();

  const boost::asio::any_io_executor executor_;
  const std::string path_;
  const LeasePtr lease_;
  const StreamQuery query_;
  const std::string_view kind_;
  StageMetrics& send_metrics_;
  DeadlineTimer timer_;  // ?fps: when the part held back is due
  // The write stall: armed when a write starts and none is armed; when it
  // fires it ends the session if the part in flight started more than
  // write_stall_timeout ago, else re-arms for the rest of that time. So it
  // fires at most about once per write_stall_timeout, whatever the fps.
  boost::asio::steady_timer stall_timer_;
  int64_t write_started_us_ = 0;  // when the part in flight was given to the socket
  bool stall_watched_ = false;    // stall_timer_ has a wait pending
  // Relaxed: the delivering thread reads it only to stop posting sooner; the
  // strand ignores anything posted after the end.
  std::atomic<bool> ended_{false};
  std::shared_ptr<PartStream> feed_;  // holds Demand or the variant
  std::shared_ptr<ClientStats> stats_;
  NewestOnly<StreamPart, &StreamPart::index> parts_;  // H.264: only the one in flight
  std::optional<Gate> gate_;                          // H.264 only
  std::optional<Demand::Hold> h264_demand_;           // H.264: the encoder runs for us
  uint64_t gate_skips_ = 0;  // gate_'s figures already added to the stream's
  uint64_t gate_dropped_ = 0;
  RateCap rate_;
  uint64_t bytes_ = 0;     // written since the response header, for the log
  size_t part_bytes_ = 0;  // written for the part in flight
  std::string reason_;
};

// A PartSession whose parts go into the body of one endless HTTP response
// (/stream.mjpg, /stream.h264): it owns the socket, keeps a read pending to
// notice a client that goes away, and writes each part's buffers at once.
class BodyPartSession : public PartSession {
 protected:
  BodyPartSession(boost::beast::tcp_stream stream, ServerContext& context, StreamContextPtr target,
                  std::string peer, std::string path, LeasePtr lease, StreamQuery query,
                  std::string_view kind, encode::Codec codec = encode::Codec::kJpeg);

  // Starts watching the client and sending parts.
  void StartBody();
  // One gathered write of `buffers` (which stay alive until it completes):
  // at once, on the non-blocking socket, which almost always takes the whole
  // part; what it does not take goes out through the reactor.
  template <typename Buffers>
  void WriteBody(const Buffers& buffers) {
    boost::beast::error_code ec;
    const size_t size = boost::asio::buffer_size(buffers);
    const size_t written = socket_.write_some(buffers, ec);
    if (ec == boost::asio::error::would_block) {
      ec = {};
    } else if (ec || written == size) {
      return OnPartWritten(ec, written);
    }
    boost::beast::buffers_suffix<Buffers> rest(buffers);
    rest.consume(written);
    boost::asio::async_write(socket_, rest,
                             [self = SharedAs<BodyPartSession>(), written](
                                 boost::beast::error_code write_ec, size_t bytes) {
                               self->OnPartWritten(write_ec, written + bytes);
                             });
  }

  boost::asio::ip::tcp::socket& Socket() final { return socket_; }
  void CloseTransport() final;

 private:
  // The client has nothing more to say; a read that completes means it went
  // away (or sent junk, which is discarded). Keeping this read pending also
  // keeps the session alive while it waits for the next part.
  void DoWatchClient();

  boost::asio::ip::tcp::socket socket_;
  std::array<char, 512> discard_{};
};

}  // namespace freshframe::http
