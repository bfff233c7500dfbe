// Internal to src/http: one info line when a streaming client (MJPEG, SSE,
// WebSocket) connects and one when it disconnects, in key=value form:
//
//   client connected: id=3 kind=mjpeg peer=127.0.0.1:40312 path=/stream.mjpg?t=1
//   client disconnected: id=3 kind=mjpeg peer=127.0.0.1:40312 path=/stream.mjpg?t=1
//     reason="peer closed" frames=212 skipped=4 bytes=5012345 duration_s=7.08
//
// (the second is one line). id, peer, path, frames and skipped are the
// client's ClientStats, as /api/stats lists them; the path must already be
// redacted (RedactToken) when the stats are registered.
//
// Thread-safety: safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <boost/system/error_code.hpp>

namespace freshframe::http {

class ClientStats;

// Why a streaming connection ended, as the disconnect line says it.
inline constexpr std::string_view kPeerClosed = "peer closed";
inline constexpr std::string_view kWriteStallTimeout = "write stall timeout";
inline constexpr std::string_view kServerStopping = "server stopping";  // the default
// The stream was removed or restarted (a config reload).
inline constexpr std::string_view kStreamRemoved = "stream stopped";

// The reason for an error that ended a streaming connection: kPeerClosed for
// end of stream, reset and broken pipe, kWriteStallTimeout for beast's
// timeout, else the error's text.
std::string DisconnectReason(const boost::system::error_code& ec);

// `kind`: "mjpeg", "sse", "ws".
void LogClientConnected(const ClientStats& client, std::string_view kind);
// `bytes`: written to the client after the response header.
void LogClientDisconnected(const ClientStats& client, std::string_view kind,
                           std::string_view reason, uint64_t bytes);

}  // namespace freshframe::http
