// The http:// URLs that freshframe's HTTP clients (the probe, the MJPEG
// source, bench/compare's strip sampler) connect to.
//
// Thread-safety and ownership: ParseUrl and Url's members are pure and safe
// from any thread; a Url is a plain value that the caller owns.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace freshframe::httpclient {

struct Url {
  std::string host;      // as written, without the brackets of an IPv6 literal
  uint16_t port = 80;    // 80 if the URL names none
  std::string target;    // path and query; "/stream.mjpg" if the path was "" or "/"
  std::string user;      // from "user:password@", %-decoded; empty if none
  std::string password;  // never shown: see RedactUrl (httpclient/redact.h)

  // The Host header value: host (bracketed if IPv6) and ":port".
  std::string HostHeader() const;
  // The request's Authorization header line with its CRLF: Bearer
  // `bearer_token` if one is given, else Basic user:password if the URL had
  // user info, else "" (credentials in headers, not in the URL).
  std::string AuthorizationHeader(std::string_view bearer_token = {}) const;
};

// Parses "http://[USER[:PASSWORD]@]HOST[:PORT][/path][?query]". HOST is a
// name, an IPv4 literal or a bracketed IPv6 literal ("[::1]"). Only plain
// http; user info (%-escaped where needed) becomes Basic credentials; a
// "#fragment" is dropped. Returns nullopt for anything else, and then, if
// `error` is given, says why.
std::optional<Url> ParseUrl(std::string_view text, std::string* error = nullptr);

}  // namespace freshframe::httpclient
