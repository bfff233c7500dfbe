// Internal to src/http: the per-connection sessions.
//
// HttpSession reads requests (with header, body and time limits) and answers
// them; a stream request turns the connection into an MjpegSession, which
// sends parts until the client goes away, and an events request into an
// SseSession, which sends detection events likewise. Each session runs on its
// own strand, so its handlers never run concurrently; the fan-out and event
// threads only post to it.
#pragma once

#include <memory>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "http/event_stream.h"
#include "http/fanout.h"
#include "http/http.h"

namespace freshframe::http {

// What every session needs from the server; owned by Server::Impl and alive
// until every session is gone (sessions end before the Impl is destroyed).
struct ServerContext {
  ServerOptions options;
  ServerDeps deps;
  Fanout& fanout;
  EventStream& events;
  ClientRegistry& clients;
  int64_t started_us;

  bool SourceLive() const { return !deps.source_live || deps.source_live(); }
};

void StartHttpSession(boost::asio::ip::tcp::socket socket, ServerContext& context);

// Takes over a connection whose stream response headers have been sent.
void StartMjpegSession(boost::beast::tcp_stream stream, ServerContext& context, std::string peer,
                       std::string path);

// Takes over a connection whose event-stream response headers have been sent
// (GET /api/events); context.deps.detections is not null.
void StartSseSession(boost::beast::tcp_stream stream, ServerContext& context, std::string peer,
                     std::string path);

std::string PeerName(const boost::asio::ip::tcp::socket& socket);

}  // namespace freshframe::http
