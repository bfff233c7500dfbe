#include "core/credentials.h"

#include <cstdint>

namespace freshframe {
namespace {

constexpr std::string_view kSpaces = " \t\r\n";

std::string_view Trim(std::string_view text) {
  const auto first = text.find_first_not_of(kSpaces);
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(kSpaces) - first + 1);
}

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

// The value of a base64 digit, or -1.
int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

bool ConstantTimeEquals(std::string_view candidate, std::string_view secret) {
  if (secret.empty()) return false;
  // Every byte of the candidate is compared (against the secret, repeated if
  // the candidate is longer) and the differences are OR-ed together, without
  // a branch on any byte. The accumulator is volatile so that the compiler
  // cannot stop the loop once it is non-zero.
  volatile unsigned char diff = candidate.size() == secret.size() ? 0 : 1;
  for (size_t i = 0; i < candidate.size(); ++i) {
    diff =
        static_cast<unsigned char>(diff | (static_cast<unsigned char>(candidate[i]) ^
                                           static_cast<unsigned char>(secret[i % secret.size()])));
  }
  return diff == 0;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  size_t padding = 0;
  while (padding < 2 && !text.empty() && text.back() == '=') {
    text.remove_suffix(1);
    ++padding;
  }
  if ((padding > 0 && (text.size() + padding) % 4 != 0) || text.size() % 4 == 1) {
    return std::nullopt;
  }
  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  uint32_t bits = 0;
  int pending = 0;  // bits in `bits` not yet output
  for (const char c : text) {
    const int value = Base64Value(c);
    if (value < 0) return std::nullopt;  // also '=' before the end
    bits = (bits << 6) | static_cast<uint32_t>(value);
    pending += 6;
    if (pending >= 8) {
      pending -= 8;
      out.push_back(static_cast<char>((bits >> pending) & 0xFFU));
    }
  }
  return out;
}

std::optional<std::string_view> AuthCredentials(std::string_view authorization,
                                                std::string_view scheme) {
  authorization = Trim(authorization);
  const auto space = authorization.find_first_of(" \t");
  if (space == std::string_view::npos ||
      !EqualsIgnoringCase(authorization.substr(0, space), scheme)) {
    return std::nullopt;
  }
  const std::string_view credentials = Trim(authorization.substr(space));
  if (credentials.empty()) return std::nullopt;
  return credentials;
}

}  // namespace freshframe
