// Which RTSP clients may play (internal to src/rtsp): HTTP's credentials,
// as RTSP clients can send them (Basic only).
//
// Thread-safety: immutable once made; Accepts may be called from any thread.
#pragma once

#include <string>
#include <string_view>

namespace freshframe::rtsp {

struct Credentials {
  std::string basic_auth;  // "user:pass" or ""
  std::string token;       // "" or the password accepted with any user name

  bool required() const { return !basic_auth.empty() || !token.empty(); }
  // Whether the value of an Authorization header (e.g. "Basic dXNlcjpwYXNz")
  // carries credentials that are accepted.
  bool Accepts(std::string_view authorization) const;
};

}  // namespace freshframe::rtsp
