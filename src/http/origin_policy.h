// The browser-origin policy: which web pages may talk to the server.
//
// A camera server on a laptop must not be readable by the websites its user
// visits. Three checks keep it so (README "Security"):
//
// - Host (DNS rebinding): a page on an attacker's name that resolves to
//   127.0.0.1 is same-origin with everything it loads from that name, so
//   only IP literals, `localhost` (and `*.localhost`, which browsers resolve
//   to loopback themselves) and the names listed with --allow-host are
//   answered. `--allow-host any` turns the check off.
// - Origin: a request a browser sends on behalf of a page carries the page's
//   origin. One from a page that is neither the server's own origin (same
//   scheme, host and port as the Host header; the scheme is
//   X-Forwarded-Proto's behind a TLS proxy, else http) nor listed with
//   --allow-origin is refused. Requests without Origin (curl, ffmpeg, VLC,
//   <img> tags, navigation) are not browser cross-origin requests and pass.
// - CORS: only a listed origin (or any, with an explicit `*`) gets
//   Access-Control-Allow-Origin; nobody does by default.
//
// Pure functions on plain values, safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/expected.h"

namespace freshframe::http {

// What --allow-origin and --allow-host configured, already validated and
// normalised (ValidateAllowOrigin, ValidateAllowHost).
struct OriginPolicy {
  std::vector<std::string> allow_origins;  // "scheme://host[:port]", or "*"
  std::vector<std::string> allow_hosts;    // lower-case names, or "any"
};

// The request headers the checks read ("" when absent).
struct BrowserHeaders {
  std::string_view host;
  std::string_view origin;
  std::string_view forwarded_proto;  // X-Forwarded-Proto
};

enum class OriginKind {
  kNone,     // no Origin header: not a browser cross-origin request
  kSame,     // the server's own origin
  kAllowed,  // listed with --allow-origin (or "*" is)
  kForeign,  // anything else, "null" included
};

struct PolicyVerdict {
  OriginKind origin = OriginKind::kNone;
  // Why the request is refused (one line, for a 403 and the log); empty when
  // it may be answered.
  std::string refusal;
  bool host_refused = false;  // the refusal is the Host check's
  // The Access-Control-Allow-Origin value to send ("" for none): the
  // request's origin when it is listed, "*" when only "*" is.
  std::string allow_origin;
};

// Applies the Host, then the Origin check.
PolicyVerdict CheckBrowserPolicy(const OriginPolicy& policy, const BrowserHeaders& headers);

// Whether `host` (a Host header value: name, IPv4, [IPv6], with or without
// ":port") may be answered: IP literals and localhost always; other names
// only if listed (case-insensitive, port ignored) or "any" is.
bool HostAllowed(const OriginPolicy& policy, std::string_view host);

// "scheme://host[:port]" lower-cased, default ports (http 80, https 443)
// dropped; nullopt for anything else (a path, userinfo, "null", junk).
std::optional<std::string> NormaliseOrigin(std::string_view origin);

// Command-line checks; the Error says what is accepted.
// An origin as a browser sends it ("http://cam.example.com:8080"), or "*".
Expected<std::string> ValidateAllowOrigin(const std::string& origin);
// A host name (no port, no scheme), or "any".
Expected<std::string> ValidateAllowHost(const std::string& host);

}  // namespace freshframe::http
