// Internal to src/http: the per-connection sessions.
//
// HttpSession reads requests (with header, body and time limits) and answers
// them; a stream request turns the connection into an MjpegSession, which
// sends parts until the client goes away, a WebSocket upgrade into a
// WsSession, which sends them as messages, and an events request into an
// SseSession, which sends detection events likewise. Each session runs on its
// own strand, so its handlers never run concurrently; the fan-out and event
// threads only post to it. /api/config's answers are built in
// config_routes.cpp, which any session thread may call.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "http/admission.h"
#include "http/event_stream.h"
#include "http/fanout.h"
#include "http/http.h"
#include "http/stream_query.h"
#include "http/variant_streams.h"

namespace freshframe::http {

// One stream's serving state: its deps (the pipeline's slots, Demand,
// metrics, settings) and what the server runs for it (fan-out, detection
// events, variant streams, clients). Created by Server::AddStream, shared by
// the registry and by every session of the stream: a session that outlives
// the stream's removal keeps it (and, through deps.owner, the pipeline
// parts its deps refer to) alive until it ends, which Close makes it do
// soon.
struct StreamContext {
  StreamContext(std::string stream_name, ServerDeps stream_deps);

  const std::string name;
  ServerDeps deps;
  Fanout fanout;
  EventStream events;
  VariantStreams variants;
  ClientRegistry clients;
  // The H.264 access units of deps.h264, in order, for /ws/h264 and
  // /stream.h264 (null without deps.h264); fed by the encoder's thread from
  // Start to Close.
  std::shared_ptr<PartStream> h264_parts;
  // Summed over every H.264 viewer since start, those gone included
  // (relaxed: statistics), for /metrics.
  std::atomic<uint64_t> h264_viewers{0};  // /ws/h264 and /stream.h264 sessions now
  std::atomic<uint64_t> h264_skips_to_key{0};
  std::atomic<uint64_t> h264_dropped{0};

  bool SourceLive() const { return !deps.source_live || deps.source_live(); }
  SourceFormat Source() const { return deps.source_format ? deps.source_format() : SourceFormat{}; }
  // deps.describe's object, or an empty one, with the live settings
  // (AddLiveConfig).
  nlohmann::json Describe() const;
  // Starts the fan-out and event threads, and takes the H.264 access units.
  void Start();
  // Stops them and ends every session of the stream: streaming sessions end
  // (PartSubscriber/EventSubscriber::OnClosed), a waiting snapshot gets 503.
  void Close();

 private:
  std::shared_ptr<void> h264_subscription_;
};
using StreamContextPtr = std::shared_ptr<StreamContext>;

// The streams a server serves, in order: the first answers the URLs of one
// camera (/stream.mjpg, /?action=stream...), the N-th /?action=stream_N, and
// each its own /streams/NAME/. Thread-safety: every member may be called from
// any thread.
class StreamRegistry {
 public:
  // Inserts at `position` (clamped to the end); an Error if `name` is taken.
  Expected<bool> Add(StreamContextPtr stream, size_t position);
  // The removed stream, or nullptr if there is none by that name.
  StreamContextPtr Remove(std::string_view name);
  StreamContextPtr Find(std::string_view name) const;
  StreamContextPtr At(size_t index) const;  // nullptr beyond the end
  std::vector<StreamContextPtr> All() const;
  size_t size() const;

 private:
  mutable std::mutex mutex_;
  std::vector<StreamContextPtr> streams_;
};

// Whether the server still runs, for threads it does not own that answer
// its sessions later (the WebRTC peers' answers to WHEP offers): they post
// to a session's strand only through Post, which does nothing once End has
// been called (Server::Stop, before the I/O context goes).
class ServerLife {
 public:
  template <typename Handler>
  void Post(const boost::asio::any_io_executor& executor, Handler handler) {
    std::lock_guard lock(mutex_);
    if (running_) boost::asio::post(executor, std::move(handler));
  }
  void End() {
    std::lock_guard lock(mutex_);
    running_ = false;
  }

 private:
  std::mutex mutex_;
  bool running_ = true;
};

// What every session needs from the server; owned by Server::Impl and alive
// until every session is gone (sessions end before the Impl is destroyed).
struct ServerContext {
  ServerOptions options;
  StreamRegistry& streams;
  int64_t started_us;
  Admission& admission;
  std::shared_ptr<ServerLife> life = std::make_shared<ServerLife>();
};

// An answer with a JSON body.
struct JsonReply {
  unsigned status = 200;
  std::string body;
};

// GET /api/config: the live settings (404 without them).
JsonReply GetConfig(const StreamContext& stream);

// POST /api/config: validates the whole request, then applies all of it and
// logs what changed and who asked (`peer`); or changes nothing and says why.
JsonReply PostConfig(const StreamContext& stream, std::string_view content_type,
                     std::string_view body, std::string_view peer);

// The error for a POST /api/config body over kConfigBodyLimit (413).
JsonReply ConfigTooLarge();

// Adds "config" (GET /api/config's object) to `describe`, and makes its
// "quality" and "overlay" the live values and "detector_enabled" whether the
// detector runs now; nothing without live settings.
void AddLiveConfig(const StreamContext& stream, nlohmann::json& describe);

// {"now_us": CLOCK_MONOTONIC microseconds}, for GET /api/clock.
std::string ClockJson();

void StartHttpSession(boost::asio::ip::tcp::socket socket, ServerContext& context);

// Takes over a connection whose stream response headers have been sent.
// `lease` holds the connection's places in the limits (admission.h), with a
// streaming place taken; `path` is redacted (RedactToken).
void StartMjpegSession(boost::beast::tcp_stream stream, ServerContext& context,
                       StreamContextPtr target, std::string peer, std::string path, LeasePtr lease);

// Takes over a connection whose event-stream response headers have been sent
// (GET /api/events); target->deps.detections is not null.
void StartSseSession(boost::beast::tcp_stream stream, ServerContext& context,
                     StreamContextPtr target, std::string peer, std::string path, LeasePtr lease);

using WsRequest = boost::beast::http::request<boost::beast::http::string_body>;

// Takes over a connection whose WebSocket upgrade request (GET /ws/stream,
// or /ws/h264 with `codec` kH264) has been read, with `query` checked:
// answers the handshake (101, or 400 / 426 for an invalid one) and then
// sends frames (or access units) as binary messages. `lease` and `path` as
// for StartMjpegSession.
void StartWsSession(boost::beast::tcp_stream stream, ServerContext& context,
                    StreamContextPtr target, std::string peer, std::string path, LeasePtr lease,
                    StreamQuery query, WsRequest request,
                    encode::Codec codec = encode::Codec::kJpeg);

// Takes over a connection whose GET /stream.h264 response headers have been
// sent (target->deps.h264 is not null): the Annex-B access units, from an
// IDR on, skipping to the next IDR when the client is slow. As
// StartMjpegSession otherwise.
void StartH264Session(boost::beast::tcp_stream stream, ServerContext& context,
                      StreamContextPtr target, std::string peer, std::string path, LeasePtr lease);

// Takes over a connection that sent POST /whep with an SDP offer (the
// streaming place taken): hands the offer to target->deps.whep, waits for
// the answer (at most kWhepAnswerTimeout) and sends it: 201 with the SDP
// answer, Location PREFIX + "whep/ID" and ETag, or the error; then closes the
// connection. `lease` goes with the peer, which holds it (and so its places
// in the limits) for as long as it lives.
void StartWhepExchange(boost::beast::tcp_stream stream, ServerContext& context,
                       StreamContextPtr target, std::string peer, LeasePtr lease, std::string offer,
                       std::string prefix, std::string allow_origin);

std::string PeerName(const boost::asio::ip::tcp::socket& socket);

// A connection beyond the per-address cap: a 503 written without waiting (a
// new socket's send buffer takes it whole; if it does not, the connection is
// just closed), then closed at once. Nothing here can block the acceptor.
void RefuseConnection(boost::asio::ip::tcp::socket socket);

}  // namespace freshframe::http
