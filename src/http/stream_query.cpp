#include "http/stream_query.h"

#include <charconv>
#include <cmath>
#include <optional>
#include <string>

namespace freshframe::http {
namespace {

// The raw value of `key` in the query of `target`: nullopt if absent, "" for
// "?key" and "?key=". The first occurrence wins.
std::optional<std::string_view> QueryValue(std::string_view target, std::string_view key) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view query = target.substr(q + 1);
  query = query.substr(0, query.find('#'));
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == key) {
      return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::string Quoted(std::string_view value) {
  std::string out = "'";
  out.append(value.substr(0, 32)).append(value.size() > 32 ? "...'" : "'");
  return out;
}

std::string FormatNumber(double value) {
  char text[32];
  const auto [end, ec] = std::to_chars(text, text + sizeof text, value);
  return ec == std::errc() ? std::string(text, end) : std::string("?");
}

Expected<double> ParseFps(std::string_view text, double source_fps) {
  const double limit = source_fps > 0 ? std::ceil(source_fps - 1e-6) : kMaxStreamFps;
  const std::string range = "fps must be a number in (0, " + FormatNumber(limit) + "]" +
                            (source_fps > 0 ? " (the source's frame rate)" : "");
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
      !std::isfinite(value)) {
    return Error{range + "; got " + Quoted(text)};
  }
  if (value <= 0 || value > limit) return Error{range + "; got " + Quoted(text)};
  return value;
}

Expected<bool> ParseMirror(std::string_view text) {
  if (text == "1" || text == "true") return true;
  if (text == "0" || text == "false") return false;
  return Error{"mirror must be 0, 1, false or true; got " + Quoted(text)};
}

Expected<int> ParseWidth(std::string_view text, int source_width) {
  const int limit = source_width > 0 ? source_width : kMaxVariantWidth;
  const std::string range = "width must be an even number of pixels in [" +
                            std::to_string(kMinVariantWidth) + ", " + std::to_string(limit) + "]" +
                            (source_width > 0 ? " (the source's width)" : "");
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
      value < kMinVariantWidth || value > limit || value % 2 != 0) {
    return Error{range + "; got " + Quoted(text)};
  }
  return value;
}

Expected<bool> ParseParts(std::string_view text) {
  if (text == "early") return true;
  if (text == "full") return false;
  return Error{"parts must be early or full; got " + Quoted(text)};
}

}  // namespace

Expected<StreamQuery> ParseStreamQuery(std::string_view target, const SourceFormat& source) {
  StreamQuery query;
  if (auto text = QueryValue(target, "fps")) {
    auto fps = ParseFps(*text, source.fps);
    if (!fps) return fps.error();
    query.fps = *fps;
  }
  if (auto text = QueryValue(target, "mirror")) {
    auto mirror = ParseMirror(*text);
    if (!mirror) return mirror.error();
    query.variant.mirror = *mirror;
  }
  if (auto text = QueryValue(target, "width")) {
    auto width = ParseWidth(*text, source.width);
    if (!width) return width.error();
    // Rounded down (kMinVariantWidth is a multiple of the step, so the result
    // stays >= it): below the source's width unless that was asked for.
    query.variant.width = *width == source.width ? 0 : *width - *width % kVariantWidthStep;
  }
  if (auto text = QueryValue(target, "parts")) {
    auto early = ParseParts(*text);
    if (!early) return early.error();
    query.early_parts = *early;
  }
  return query;
}

}  // namespace freshframe::http
