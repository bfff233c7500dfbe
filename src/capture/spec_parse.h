// Internal to src/capture: the number and "WxH@FPS" parsing shared by the
// --source forms that take a size and a rate (pattern, bufcam).
#pragma once

#include <charconv>
#include <cmath>
#include <optional>
#include <string>
#include <string_view>

namespace freshframe::capture {

inline bool ParseInt(std::string_view text, int& out) {
  if (text.empty()) return false;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end;
}

inline bool ParseDouble(std::string_view text, double& out) {
  if (text.empty()) return false;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end && std::isfinite(out);
}

// Parses "[WxH][@FPS]" into the given fields (left as they are when absent).
// Returns what is wrong, or nullopt.
inline std::optional<std::string> ParseSizeAndRate(std::string_view text, int& width, int& height,
                                                   double& fps) {
  const auto at = text.find('@');
  const std::string_view size = text.substr(0, at);
  if (!size.empty()) {
    const auto x = size.find('x');
    if (x == std::string_view::npos || !ParseInt(size.substr(0, x), width) ||
        !ParseInt(size.substr(x + 1), height)) {
      return "size must be WxH";
    }
    if (width < 16 || width > 7680 || height < 16 || height > 4320) {
      return "size must be between 16x16 and 7680x4320";
    }
  }
  if (at != std::string_view::npos) {
    if (!ParseDouble(text.substr(at + 1), fps) || fps <= 0 || fps > 240) {
      return "fps must be a number in (0, 240]";
    }
  }
  return std::nullopt;
}

}  // namespace freshframe::capture
