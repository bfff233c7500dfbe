// --rtmp-out URLs: what libavformat's rtmp protocol and nginx-rtmp accept,
// checked up front so that a typo exits with one line instead of a pusher
// retrying forever, and the stream key kept out of stats and logs.
#include <cctype>
#include <charconv>
#include <optional>
#include <string>
#include <string_view>

#include "rtmp/rtmp.h"

namespace freshframe::rtmp {
namespace {

struct Parts {
  std::string_view scheme;     // "rtmp" or "rtmps"
  std::string_view userinfo;   // before '@' (a password, maybe), or empty
  std::string_view host_port;  // HOST[:PORT] or [V6][:PORT]
  std::string_view app;        // the first path segment
  std::string_view key;        // the rest: the stream name, a secret
};

// Splits without judging: RedactUrl must work on anything.
Parts Split(std::string_view url) {
  Parts parts;
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) {
    parts.host_port = url;
    return parts;
  }
  parts.scheme = url.substr(0, scheme_end);
  std::string_view rest = url.substr(scheme_end + 3);
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  // The last '@' before the path ends the userinfo (a password may hold '@').
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    parts.userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
  }
  parts.host_port = authority;
  if (slash == std::string_view::npos) return parts;
  std::string_view path = rest.substr(slash + 1);
  size_t app_end = path.find('/');
  parts.app = path.substr(0, app_end);
  if (app_end != std::string_view::npos) parts.key = path.substr(app_end + 1);
  return parts;
}

bool IsHostChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '.' || c == '_';
}

// An error message for HOST[:PORT], or nothing.
std::optional<std::string> CheckHostPort(std::string_view host_port) {
  std::string_view host = host_port;
  std::string_view port;
  if (host_port.starts_with('[')) {
    size_t close = host_port.find(']');
    if (close == std::string_view::npos || close == 1) return "bad IPv6 host (want [ADDR])";
    for (char c : host_port.substr(1, close - 1)) {
      if (std::isxdigit(static_cast<unsigned char>(c)) == 0 && c != ':' && c != '.') {
        return "bad IPv6 host (want [ADDR])";
      }
    }
    std::string_view after = host_port.substr(close + 1);
    if (!after.empty()) {
      if (!after.starts_with(':')) return "bad text after the IPv6 host";
      port = after.substr(1);
      if (port.empty()) return "empty port";
    }
  } else {
    size_t colon = host_port.find(':');
    if (colon != std::string_view::npos) {
      host = host_port.substr(0, colon);
      port = host_port.substr(colon + 1);
      if (port.empty()) return "empty port";
    }
    if (host.empty()) return "no host";
    for (char c : host) {
      if (!IsHostChar(c)) return "bad character in the host";
    }
  }
  if (!port.empty()) {
    unsigned value = 0;
    auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (error != std::errc() || end != port.data() + port.size() || value < 1 || value > 65535) {
      return "bad port '" + std::string(port) + "' (want 1..65535)";
    }
  }
  return std::nullopt;
}

}  // namespace

Expected<std::string> ValidateUrl(std::string_view url) {
  auto fail = [&](std::string_view why) {
    return Error{"--rtmp-out: " + std::string(why) +
                 " (want rtmp://HOST[:PORT]/APP/KEY or rtmps://...)"};
  };
  for (char c : url) {
    // Spaces and control characters: a paste gone wrong, and a log line
    // forger; a key never needs them.
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return fail("spaces or control characters in the URL");
    }
  }
  Parts parts = Split(url);
  if (parts.scheme != "rtmp" && parts.scheme != "rtmps") {
    return fail(parts.scheme.empty() ? "not a URL" : "the scheme must be rtmp or rtmps");
  }
  if (std::optional<std::string> error = CheckHostPort(parts.host_port)) return fail(*error);
  if (parts.app.empty()) return fail("no application (the path's first part)");
  if (parts.key.empty()) return fail("no stream key (after the application)");
  return std::string(url);
}

std::string RedactUrl(std::string_view url) {
  Parts parts = Split(url);
  if (parts.scheme.empty()) return "***";  // not a URL: it might all be secret
  std::string out = std::string(parts.scheme) + "://";
  if (!parts.userinfo.empty()) out += "***@";
  out += parts.host_port;
  if (parts.app.empty() && parts.key.empty()) return out;
  out += "/";
  out += parts.app;
  out += "/***";
  return out;
}

}  // namespace freshframe::rtmp
