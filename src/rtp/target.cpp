#include <netdb.h>
#include <sys/socket.h>

#include <charconv>
#include <string>

#include "rtp/rtp.h"

namespace freshframe::rtp {
namespace {

Error Fail(std::string_view text, std::string_view why) {
  return Error{"--rtp-out: " + std::string(why) + " in '" + std::string(text) +
               "' (expected HOST:PORT or [IPV6]:PORT)"};
}

}  // namespace

Expected<Target> ParseTarget(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {
    const size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Fail(text, "no ']:PORT'");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return Fail(text, "no port");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos)
      return Fail(text, "an IPv6 address needs brackets");
  }
  if (host.empty()) return Fail(text, "no host");
  unsigned value = 0;
  const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || error != std::errc() || end != port.data() + port.size() || value < 1 ||
      value > 65534) {
    return Fail(text, "the port must be 1..65534 (RTCP takes the next one)");
  }
  Target target{std::string(host), static_cast<uint16_t>(value)};
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  const int status = getaddrinfo(target.host.c_str(), nullptr, &hints, &found);
  if (status != 0) {
    return Error{"--rtp-out: cannot resolve '" + target.host + "': " + gai_strerror(status)};
  }
  freeaddrinfo(found);
  return target;
}

std::string ToString(const Target& target) {
  const bool v6 = target.host.find(':') != std::string::npos;
  return (v6 ? "[" + target.host + "]" : target.host) + ":" + std::to_string(target.port);
}

}  // namespace freshframe::rtp
