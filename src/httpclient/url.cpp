#include "httpclient/url.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "httpclient/text_util.h"

namespace freshframe::httpclient {
namespace {

constexpr std::string_view kDefaultTarget = "/stream.mjpg";

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : c - 'A' + 10;
}

// %XX escapes of user info decoded (a password may contain '@' or ':'
// only escaped); nullopt for a malformed escape.
std::optional<std::string> PercentDecoded(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size() || !IsHex(text[i + 1]) || !IsHex(text[i + 2])) return std::nullopt;
    out += static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2]));
    i += 2;
  }
  return out;
}

std::string Base64(std::string_view bytes) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t group = 0;
    const size_t n = std::min<size_t>(3, bytes.size() - i);
    for (size_t j = 0; j < 3; ++j) {
      group <<= 8;
      if (j < n) group |= static_cast<unsigned char>(bytes[i + j]);
    }
    for (size_t j = 0; j < 4; ++j) {
      out += j <= n ? kAlphabet[(group >> (18 - 6 * j)) & 0x3Fu] : '=';
    }
  }
  return out;
}

}  // namespace

std::string Url::HostHeader() const {
  const bool ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string Url::AuthorizationHeader(std::string_view bearer_token) const {
  if (!bearer_token.empty()) return "Authorization: Bearer " + std::string(bearer_token) + "\r\n";
  if (!user.empty()) return "Authorization: Basic " + Base64(user + ":" + password) + "\r\n";
  return {};
}

std::optional<Url> ParseUrl(std::string_view text, std::string* error) {
  auto fail = [error](std::string message) -> std::optional<Url> {
    if (error != nullptr) *error = std::move(message);
    return std::nullopt;
  };
  for (char c : text) {
    // Spaces, controls and raw non-ASCII would break the request line; a
    // URL that needs them must be percent-encoded already.
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte >= 0x7f) return fail("URL contains a space or non-ASCII byte");
  }
  const size_t scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) return fail("URL must start with http://");
  const std::string scheme = AsciiLower(text.substr(0, scheme_end));
  if (scheme == "https") return fail("https is not supported, only plain http");
  if (scheme != "http") return fail("unsupported scheme '" + scheme + "', only http");
  std::string_view rest = text.substr(scheme_end + 3);

  const size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view tail =
      authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  Url url;
  // "user[:password]@": sent as Basic credentials, never in the request.
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    authority.remove_prefix(at + 1);
    const size_t colon = userinfo.find(':');
    auto user = PercentDecoded(userinfo.substr(0, colon));
    auto password = PercentDecoded(colon == std::string_view::npos ? std::string_view()
                                                                   : userinfo.substr(colon + 1));
    if (!user || !password) return fail("bad %-escape in the user info");
    if (user->empty()) return fail("user info without a user name");
    if (user->find(':') != std::string::npos) return fail("a user name cannot contain ':'");
    url.user = std::move(*user);
    url.password = std::move(*password);
  }

  std::string_view port;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return fail("unterminated [ in host");
    const std::string_view host = authority.substr(1, close - 1);
    if (host.find(':') == std::string_view::npos) return fail("bad IPv6 literal");
    for (char c : host) {
      if (!IsHex(c) && c != ':' && c != '.') return fail("bad IPv6 literal");
    }
    url.host = std::string(host);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return fail("unexpected text after ]");
      port = after.substr(1);
      has_port = true;
    }
  } else {
    const size_t colon = authority.find(':');
    const std::string_view host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      has_port = true;
    }
    for (char c : host) {
      if (!IsAlnum(c) && c != '-' && c != '.' && c != '_') return fail("bad host name");
    }
    url.host = std::string(host);
  }
  if (url.host.empty()) return fail("URL has no host");
  if (has_port) {
    const auto value = port.size() <= 5 ? ParseDecimal(port) : std::nullopt;
    if (!value || *value == 0 || *value > 65535) return fail("bad port");
    url.port = static_cast<uint16_t>(*value);
  }

  tail = tail.substr(0, tail.find('#'));
  const size_t query = tail.find('?');
  const std::string_view path = tail.substr(0, query);
  const std::string_view query_part =
      query == std::string_view::npos ? std::string_view() : tail.substr(query);
  url.target = std::string(path.empty() || path == "/" ? kDefaultTarget : path);
  url.target += query_part;
  return url;
}

}  // namespace freshframe::httpclient
