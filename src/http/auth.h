// Access control for the HTTP server: a bearer token (--token,
// --token-file) and/or HTTP Basic credentials (--basic-auth user:pass).
//
// When either is configured, every request except GET /healthz must carry
// one of them: `Authorization: Bearer TOKEN`, `?token=TOKEN` in the URL (for
// <img> tags and EventSource, which cannot set headers), or
// `Authorization: Basic base64(user:pass)`. Secrets are compared in constant
// time and never logged; RedactToken takes them out of request targets that
// are shown (/api/stats clients, logs).
//
// Pure functions, safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/message.hpp>

#include "core/credentials.h"
#include "core/expected.h"
#include "http/http.h"

namespace freshframe::http {

inline constexpr std::string_view kAuthRealm = "freshframe";

// True if credentials are configured (every route but /healthz needs them).
bool AuthRequired(const ServerOptions& options);

// Whether a request may be answered: always when AuthRequired is false;
// otherwise its Authorization header (`authorization`, "" if none) or its
// `token` query parameter (in `target`) must match a configured credential.
bool Authorized(const ServerOptions& options, std::string_view authorization,
                std::string_view target);
bool Authorized(const ServerOptions& options, const boost::beast::http::request_header<>& request);

// The WWW-Authenticate challenges of a 401, one per configured scheme
// (`Bearer realm="freshframe"`, `Basic realm="freshframe"`).
std::vector<std::string> AuthChallenges(const ServerOptions& options);

// `target` with the value of every `token` query parameter replaced by
// "***", so that it can be logged and listed.
std::string RedactToken(std::string_view target);

// The credential primitives (core/credentials.h), shared with the RTSP
// server.
using freshframe::AuthCredentials;
using freshframe::Base64Decode;
using freshframe::ConstantTimeEquals;

// %XX escapes decoded ('+' stays '+'); nullopt for a malformed escape.
std::optional<std::string> PercentDecode(std::string_view text);

// Command-line checks (the Error's text never contains the secret).
// A token: non-empty, no whitespace or control characters.
Expected<std::string> ValidateToken(const std::string& token);
// "user:pass": a non-empty user without ':', a non-empty password.
Expected<std::string> ValidateBasicAuth(const std::string& user_pass);
// The first line of `path`, trimmed, as a token; an Error if the file cannot
// be read, or that line is empty or not a valid token.
Expected<std::string> ReadTokenFile(const std::string& path);

}  // namespace freshframe::http
