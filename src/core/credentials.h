// The credential primitives every server of freshframe shares (HTTP's
// Authorization header, the RTSP server's Basic check): constant-time
// comparison, base64 and the Authorization header's scheme.
//
// Pure functions, safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace freshframe {

// Equality that takes the same time wherever the first difference is: the
// work depends only on candidate.size(), never on the contents of either
// string, so response times do not reveal how much of a guess was right.
// (A plain == stops at the first differing byte, which lets an attacker
// find a secret byte by byte by timing.) `secret` must not be empty: an
// empty secret never matches.
bool ConstantTimeEquals(std::string_view candidate, std::string_view secret);

// Standard base64 (RFC 4648 section 4; padding optional); nullopt for
// characters outside the alphabet, misplaced padding or an impossible length.
std::optional<std::string> Base64Decode(std::string_view text);

// The credentials of an Authorization header value if it uses `scheme`
// (compared case-insensitively, RFC 9110 11.1), else nullopt.
std::optional<std::string_view> AuthCredentials(std::string_view authorization,
                                                std::string_view scheme);

}  // namespace freshframe
