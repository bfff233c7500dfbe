#include "httpclient/redact.h"

#include <array>

#include "httpclient/text_util.h"

namespace freshframe::httpclient {
namespace {

constexpr std::string_view kMask = "***";

// Names whose values are secrets wherever they appear: URL query
// parameters (?token= is how freshframe itself takes a token), signed-URL
// parameters, and GStreamer properties (rtspsrc user-pw=).
bool IsSecretKey(std::string_view key) {
  const std::string lower = AsciiLower(key);
  for (std::string_view part :
       {"token", "password", "passwd", "secret", "signature", "credential"}) {
    if (lower.find(part) != std::string::npos) return true;
  }
  static constexpr std::array<std::string_view, 11> kExact = {
      "key",  "api_key", "apikey", "auth",    "authorization", "sig",
      "pass", "pwd",     "pw",     "user-pw", "user_pw"};
  for (std::string_view exact : kExact) {
    if (lower == exact) return true;
  }
  return false;
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Masks the password of the user info of every "scheme://user:pass@host".
std::string RedactUserInfo(std::string_view text) {
  std::string out;
  size_t copied = 0;
  for (size_t at = text.find("://"); at != std::string_view::npos; at = text.find("://", at + 3)) {
    const size_t authority = at + 3;
    size_t end = authority;
    while (end < text.size() && !IsSpace(text[end]) &&
           std::string_view("/?#'\"").find(text[end]) == std::string_view::npos) {
      ++end;
    }
    const size_t last_at = text.substr(authority, end - authority).rfind('@');
    if (last_at == std::string_view::npos) continue;
    const size_t userinfo_end = authority + last_at;
    const size_t colon = text.substr(authority, last_at).find(':');
    if (colon == std::string_view::npos) continue;
    const size_t password = authority + colon + 1;
    out.append(text.substr(copied, password - copied));
    out.append(kMask);
    copied = userinfo_end;
  }
  out.append(text.substr(copied));
  return out;
}

// Masks the value of every secret KEY=VALUE parameter.
std::string RedactParameters(std::string_view text) {
  std::string out;
  size_t copied = 0;
  size_t key_start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    const bool boundary = i == text.size() || IsSpace(text[i]) ||
                          std::string_view("?&;").find(text[i]) != std::string_view::npos;
    if (!boundary) continue;
    const std::string_view parameter = text.substr(key_start, i - key_start);
    const size_t equals = parameter.find('=');
    if (equals != std::string_view::npos && equals + 1 < parameter.size() &&
        IsSecretKey(parameter.substr(0, equals))) {
      const size_t value = key_start + equals + 1;
      out.append(text.substr(copied, value - copied));
      out.append(kMask);
      copied = i;
    }
    key_start = i + 1;
  }
  if (copied < text.size()) out.append(text.substr(copied));
  return out;
}

}  // namespace

std::string RedactUrl(std::string_view text) { return RedactParameters(RedactUserInfo(text)); }

}  // namespace freshframe::httpclient
