#include "http/client_log.h"

#include <spdlog/spdlog.h>
#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "http/fanout.h"

namespace freshframe::http {
namespace {

// The figures of ClientStats::ToJson, read the same way for both lines.
struct Figures {
  nlohmann::json json;
  std::string head;  // "id=... kind=... peer=... path=..."
};

Figures Read(const ClientStats& client, std::string_view kind) {
  Figures figures{client.ToJson(MonotonicMicros()), {}};
  const auto text = [&](const char* key) {
    return figures.json.contains(key) ? figures.json[key].dump() : std::string("?");
  };
  figures.head = "id=" + text("id") + " kind=";
  figures.head.append(kind).append(" peer=");
  figures.head.append(figures.json.value("peer", "?")).append(" path=");
  figures.head.append(figures.json.value("path", "?"));
  return figures;
}

}  // namespace

std::string DisconnectReason(const boost::system::error_code& ec) {
  namespace net = boost::asio;
  if (ec == net::error::eof || ec == boost::beast::http::error::end_of_stream ||
      ec == net::error::connection_reset || ec == net::error::broken_pipe) {
    return std::string(kPeerClosed);
  }
  if (ec == boost::beast::error::timeout) return std::string(kWriteStallTimeout);
  return ec.message();
}

void LogClientConnected(const ClientStats& client, std::string_view kind) {
  spdlog::info("client connected: {}", Read(client, kind).head);
}

void LogClientDisconnected(const ClientStats& client, std::string_view kind,
                           std::string_view reason, uint64_t bytes) {
  const Figures figures = Read(client, kind);
  spdlog::info("client disconnected: {} reason=\"{}\" frames={} skipped={} bytes={} duration_s={}",
               figures.head, reason, figures.json.value("sent", uint64_t{0}),
               figures.json.value("skipped", uint64_t{0}), bytes,
               figures.json.value("connected_s", 0.0));
}

}  // namespace freshframe::http
