// libFuzzer target: request parsing and routing as the server does it.
//
// The input is raw bytes off a connection. They go into a
// boost::beast::http::request_parser<string_body> with the server's limits
// (ServerOptions: header 8 KiB, body 16 KiB), request after request as long
// as requests parse (pipelining), and every parsed request is routed with
// freshframe::http::Classify and its query read with QueryParam
// (src/http/router.h); with src/http/auth.cpp present, its parsing helpers
// and the Authorized check run on the request too.
//
// Beyond "no sanitizer report", it checks:
// - the same bytes fed in small pieces parse to the same requests as fed at
//   once (the server reads whatever the socket has), and one finishes a
//   request exactly when the other does (except around the header limit,
//   see below);
// - Classify is total and stable: HEAD answers like GET, a target that does
//   not start with '/' (after the absolute form) is kBadRequest;
// - QueryParam returns a substring of the target;
// - a stream named by /streams/NAME/ is a valid stream name taken from the
//   target itself, and a stream number (?action=stream_N) is 0..9999;
// - only POST /api/config, POST /whep and DELETE /whep/ID take methods other
//   than GET/HEAD (and the WebSocket routes their handshake); a WHEP
//   session id is bounded lowercase hex out of the target;
// - with auth: RedactToken leaves no token value readable by QueryParam.
//
// Build and run: fuzz/README.md.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "http/router.h"

#if defined(FRESHFRAME_FUZZ_AUTH)
#include "http/auth.h"
#include "http/http.h"
#endif

namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

constexpr size_t kHeaderLimit = 8 * 1024;  // ServerOptions::header_limit
constexpr size_t kBodyLimit = 16 * 1024;   // ServerOptions::body_limit
constexpr int kMaxPipelined = 16;

// What one parse attempt produced.
struct Parsed {
  bool done = false;
  beast::error_code ec;
  size_t consumed = 0;  // bytes of the input this request took
  std::string method;
  std::string target;
  std::string body;
  unsigned version = 0;
  bool keep_alive = false;
  std::string authorization;
};

// A failed property: libFuzzer saves the input as a crash artifact.
void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "request_fuzzer: check failed: %s\n", what);
    std::abort();
  }
}

using Parser = bhttp::request_parser<bhttp::string_body>;

void SetLimits(Parser& parser) {
  parser.header_limit(static_cast<std::uint32_t>(kHeaderLimit));
  parser.body_limit(kBodyLimit);
  parser.eager(true);
}

void Collect(Parser& parser, Parsed* out) {
  out->done = true;
  const auto& request = parser.get();
  out->method = std::string(request.method_string());
  out->target = std::string(request.target());
  out->body = request.body();
  out->version = request.version();
  out->keep_alive = request.keep_alive();
  const auto authorization = request.find(bhttp::field::authorization);
  if (authorization != request.end()) out->authorization = std::string(authorization->value());
}

// One request from the front of `input`, parsed the way http::async_read
// does with a beast::flat_buffer: bytes arrive `step` at a time and are
// appended to a buffer; the parser consumes what it can of the buffer, and
// unconsumed bytes stay for the next put. step >= input.size() is the case
// of a whole pipelined batch already in the buffer. A request that is still
// incomplete when the input ends has ec == need_more (the server would wait).
Parsed Parse(std::string_view input, size_t step) {
  Parsed out;
  Parser parser;
  SetLimits(parser);
  std::string buffer;
  size_t received = 0;
  bool want_more = true;
  for (;;) {
    if (want_more) {
      if (received >= input.size()) {
        out.ec = bhttp::error::need_more;
        return out;
      }
      const size_t take = std::min(step, input.size() - received);
      buffer.append(input.substr(received, take));
      received += take;
    }
    beast::error_code ec;
    const size_t n = parser.put(boost::asio::const_buffer(buffer.data(), buffer.size()), ec);
    Check(n <= buffer.size(), "parser consumed more than it was given");
    buffer.erase(0, n);
    out.consumed += n;
    if (ec == bhttp::error::need_more) {
      want_more = true;
      continue;
    }
    if (ec) {
      out.ec = ec;
      return out;
    }
    if (parser.is_done()) {
      Collect(parser, &out);
      return out;
    }
    want_more = n == 0 || buffer.empty();
  }
}

bool IsSubstring(std::string_view whole, std::string_view part) {
  return part.empty() || whole.find(part) != std::string_view::npos;
}

void Route(const Parsed& request) {
  using freshframe::http::Classify;
  using freshframe::http::QueryParam;
  using freshframe::http::Route;
  const std::string_view target = request.target;
  const auto result = Classify(request.method, target);
  (void)freshframe::http::RouteName(result.route);
  // Deterministic.
  const auto again = Classify(request.method, target);
  Check(again.route == result.route && again.head == result.head, "Classify not stable");
  if (!result.stream_name.empty()) {
    Check(freshframe::http::IsStreamName(result.stream_name), "stream name not URL-safe");
    Check(
        result.stream_name.data() >= target.data() &&
            result.stream_name.data() + result.stream_name.size() <= target.data() + target.size(),
        "stream name not a part of the target");
  }
  Check(result.stream_index >= -1 && result.stream_index <= 9999, "stream number out of range");
  // HEAD is routed like GET (except the head flag).
  const auto get = Classify("GET", target);
  const auto head = Classify("HEAD", target);
  Check(get.route == head.route, "HEAD routed unlike GET");
  Check(!get.head &&
            (head.head || head.route == Route::kNotFound || head.route == Route::kBadRequest),
        "head flag");
  // Only GET and HEAD reach a handler (the WebSocket routes check their own
  // handshake and may see any method), POST only the routes that take a
  // body, /api/config and /whep, each with its own body limit, and DELETE
  // only a WebRTC session.
  if (request.method != "GET" && request.method != "HEAD") {
    Check(result.route == Route::kMethodNotAllowed || result.route == Route::kNotFound ||
              result.route == Route::kBadRequest || result.route == Route::kWebSocket ||
              result.route == Route::kH264WebSocket ||
              (result.route == Route::kConfigUpdate && request.method == "POST") ||
              (result.route == Route::kWhep && request.method == "POST") ||
              (result.route == Route::kWhepSession && request.method == "DELETE"),
          "non-GET routed to a handler");
  }
  Check((freshframe::http::BodyLimit(result.route) != 0) ==
            (result.route == Route::kConfigUpdate || result.route == Route::kWhep),
        "a body limit of its own for a route other than POST /api/config and POST /whep");
  // A WebRTC session's id: lowercase hex out of the target itself.
  if (!result.whep_id.empty()) {
    Check(result.route == Route::kWhepSession || result.route == Route::kMethodNotAllowed,
          "a WHEP id on another route");
    Check(IsSubstring(target, result.whep_id), "WHEP id not in the target");
    Check(result.whep_id.size() <= freshframe::http::kMaxWhepId &&
              std::all_of(result.whep_id.begin(), result.whep_id.end(),
                          [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }),
          "WHEP id not lowercase hex");
  }
  for (std::string_view key : {"action", "token", "mirror", "width", "fps", "", "x"}) {
    const std::string value = QueryParam(target, key);
    Check(IsSubstring(target, value), "QueryParam value not in the target");
  }
  // A key taken from the query itself.
  const auto q = target.find('?');
  if (q != std::string_view::npos) {
    std::string_view key = target.substr(q + 1);
    key = key.substr(0, key.find_first_of("=&#"));
    Check(IsSubstring(target, QueryParam(target, key)), "QueryParam value not in the target");
  }
#if defined(FRESHFRAME_FUZZ_AUTH)
  namespace fh = freshframe::http;
  fh::ServerOptions options;
  options.token = "fuzz-token";
  options.basic_auth = "user:pass";
  (void)fh::AuthRequired(options);
  (void)fh::Authorized(options, request.authorization, target);
  const std::string redacted = fh::RedactToken(target);
  const std::string token_left = QueryParam(redacted, "token");
  Check(token_left.empty() || token_left == "***", "RedactToken left a token readable");
  (void)fh::PercentDecode(target);
  for (std::string_view scheme : {"Basic", "Bearer"}) {
    if (const auto credentials = fh::AuthCredentials(request.authorization, scheme)) {
      Check(IsSubstring(request.authorization, *credentials), "credentials not in the header");
      if (scheme == "Basic") (void)fh::Base64Decode(*credentials);
    }
  }
  (void)fh::Base64Decode(request.authorization);
  const std::string_view secret = "fuzz-token";
  (void)fh::ConstantTimeEquals(request.authorization, secret);
#endif
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  // The step of the piecewise feed: from the input, so that every input
  // reproduces exactly.
  const size_t step = 1 + (size % 97);
  size_t offset = 0;
  for (int i = 0; i < kMaxPipelined && offset < input.size(); ++i) {
    const std::string_view rest = input.substr(offset);
    const Parsed whole = Parse(rest, rest.size());
    // Piecewise parsing is quadratic in the worst case; keep it to inputs
    // the size of the server's limits.
    if (rest.size() <= kHeaderLimit + kBodyLimit + 1024) {
      const Parsed pieces = Parse(rest, step);
      // Beast's header_limit counts from the last header field it consumed
      // in an earlier put(), not from the start of the request, so a header
      // a little over the limit can pass when it arrives in pieces (in the
      // server: by at most Beast's first 512-byte read). Tolerated up to
      // twice the limit; anything else must finish the same way.
      const bool limit_slack = (whole.ec == bhttp::error::header_limit && pieces.done &&
                                pieces.consumed - pieces.body.size() <= 2 * kHeaderLimit) ||
                               (pieces.ec == bhttp::error::header_limit && whole.done &&
                                whole.consumed - whole.body.size() <= 2 * kHeaderLimit);
      if (whole.done != pieces.done && !limit_slack) {
        std::fprintf(stderr, "whole: %s after %zu bytes; in pieces of %zu: %s after %zu bytes\n",
                     whole.done ? "done" : whole.ec.message().c_str(), whole.consumed, step,
                     pieces.done ? "done" : pieces.ec.message().c_str(), pieces.consumed);
      }
      Check(whole.done == pieces.done || limit_slack, "piecewise parse finished differently");
      if (pieces.done) Check(pieces.body.size() <= kBodyLimit, "body over the limit");
      if (pieces.done && !whole.done) Route(pieces);
      if (whole.done && pieces.done) {
        Check(whole.consumed == pieces.consumed, "piecewise parse took other bytes");
        Check(whole.method == pieces.method && whole.target == pieces.target &&
                  whole.body == pieces.body && whole.version == pieces.version &&
                  whole.keep_alive == pieces.keep_alive,
              "piecewise parse gave another request");
      }
      // When neither finishes, one may report an error where the other still
      // wants more bytes: Beast parses the first bytes it gets at once, but
      // later ones only when the header's blank line has arrived, so a bad
      // field in a header that never ends is found in one feed and not in
      // the other. Both end the connection (400 or the read timeout).
    }
    if (!whole.done) break;
    Check(whole.consumed > 0 && whole.consumed <= rest.size(), "consumed out of range");
    Check(whole.body.size() <= kBodyLimit, "body over the limit");
    Route(whole);
    // The server answers and reads the next request only on keep-alive.
    if (!whole.keep_alive) break;
    offset += whole.consumed;
  }
  return 0;
}
