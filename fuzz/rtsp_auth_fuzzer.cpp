// libFuzzer target: the RTSP server's credential check
// (src/rtsp/credentials.cpp), which reads a client's Authorization header.
//
// Input: one byte picks the configuration (Basic "user:pass", a token,
// both), the rest is the Authorization header value as the client sent it.
//
// Beyond "no sanitizer report", it checks:
// - Accepts is true exactly when the value is "Basic" (any case, spaces
//   around) with base64 that decodes to the configured "user:pass", or to
//   "ANYUSER:TOKEN" with the configured token (core's AuthCredentials and
//   Base64Decode as the oracle, plain == as the comparison);
// - nothing is accepted when no credential is configured or the header is
//   not Basic;
// - the answer does not depend on the configured secret's contents beyond
//   equality (the same value against a secret of the same length that
//   differs in its last byte is refused unless it matches that one).
//
// Build and run: fuzz/README.md.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "core/credentials.h"
#include "rtsp/credentials.h"

namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "property violated: %s\n", what);
    std::abort();
  }
}

// What Accepts should answer, written the plain way.
bool Expected(const freshframe::rtsp::Credentials& c, std::string_view value) {
  const auto encoded = freshframe::AuthCredentials(value, "Basic");
  if (!encoded) return false;
  const auto decoded = freshframe::Base64Decode(*encoded);
  if (!decoded) return false;
  const size_t colon = decoded->find(':');
  if (colon == std::string::npos) return false;
  if (!c.basic_auth.empty() && *decoded == c.basic_auth) return true;
  return !c.token.empty() && decoded->substr(colon + 1) == c.token;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view value(reinterpret_cast<const char*>(data) + 1, size - 1);
  freshframe::rtsp::Credentials credentials;
  switch (data[0] % 4) {
    case 0:
      break;
    case 1:
      credentials.basic_auth = "user:pass";
      break;
    case 2:
      credentials.token = "s3cret";
      break;
    default:
      credentials.basic_auth = "user:pass";
      credentials.token = "s3cret";
  }
  const bool accepted = credentials.Accepts(value);
  Check(accepted == Expected(credentials, value), "Accepts disagrees with the plain check");
  if (!credentials.required()) Check(!accepted, "accepted with no credential configured");
  freshframe::rtsp::Credentials other = credentials;
  if (!other.basic_auth.empty()) other.basic_auth.back() = 't';
  if (!other.token.empty()) other.token.back() = 'u';
  Check(other.Accepts(value) == Expected(other, value), "Accepts disagrees for another secret");
  return 0;
}
