// Connection-level helpers of the listener: the peer's printable name and
// the answer to a connection beyond the per-address cap.
#include <array>
#include <string>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>

#include "http/session.h"

namespace freshframe::http {

namespace net = boost::asio;
namespace beast = boost::beast;

void RefuseConnection(net::ip::tcp::socket socket) {
  static const std::string kResponse = [] {
    const std::string body = R"({"error":"too many connections from this address"})"
                             "\n";
    std::string text = "HTTP/1.1 503 Service Unavailable\r\nServer: freshframe/" FRESHFRAME_VERSION
                       "\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
                       "Retry-After: 1\r\nConnection: close\r\nContent-Length: ";
    text.append(std::to_string(body.size())).append("\r\n\r\n").append(body);
    return text;
  }();
  beast::error_code ec;
  socket.non_blocking(true, ec);
  if (!ec) socket.write_some(net::buffer(kResponse), ec);
  socket.shutdown(net::ip::tcp::socket::shutdown_send, ec);
  // Closing with unread data resets the connection, which can make the client
  // drop the answer: take what the request has sent so far (without waiting).
  std::array<char, 4096> discard{};
  socket.read_some(net::buffer(discard), ec);
  socket.close(ec);
}

std::string PeerName(const net::ip::tcp::socket& socket) {
  beast::error_code ec;
  const auto endpoint = socket.remote_endpoint(ec);
  if (ec) return "unknown";
  const auto address = endpoint.address();
  std::string name;
  if (address.is_v6()) name.append("[");
  name.append(address.to_string());
  if (address.is_v6()) name.append("]");
  name.append(":").append(std::to_string(endpoint.port()));
  return name;
}

}  // namespace freshframe::http
