#include "capture/mjpeg_stream.h"

#include "httpclient/http_response.h"
#include "httpclient/text_util.h"

namespace freshframe::capture {

Expected<MjpegStreamFormat> ParseMjpegResponse(std::string_view head,
                                               const std::string& shown_url) {
  std::string why;
  const auto response = httpclient::ParseResponseHead(head, &why);
  if (!response) return Error{shown_url + " sent a bad HTTP response: " + why};
  if (response->status != 200) {
    std::string hint;
    if (response->status == 401 || response->status == 403) {
      hint = " (credentials: user:pass@ in the URL, or --source-token)";
    }
    return Error{shown_url + " answered " + std::to_string(response->status) +
                 (response->reason.empty() ? "" : " " + response->reason) + hint};
  }
  const std::string* type = response->Find("content-type");
  auto boundary = type != nullptr ? httpclient::MultipartBoundary(*type) : std::nullopt;
  if (!boundary) {
    return Error{shown_url + ": not an MJPEG stream (Content-Type " +
                 (type != nullptr ? *type : "missing") + ")"};
  }
  // The endless body may come chunked (some servers do); compressed it
  // would be useless for JPEGs and is refused.
  MjpegStreamFormat format;
  format.boundary = std::move(*boundary);
  if (const std::string* te = response->Find("transfer-encoding")) {
    const std::string coding = httpclient::AsciiLower(*te);
    if (coding == "chunked") {
      format.chunked = true;
    } else if (coding != "identity") {
      return Error{shown_url + ": unsupported Transfer-Encoding " + *te};
    }
  }
  if (const std::string* ce = response->Find("content-encoding")) {
    if (httpclient::AsciiLower(*ce) != "identity") {
      return Error{shown_url + ": unsupported Content-Encoding " + *ce};
    }
  }
  return format;
}

std::optional<std::pair<int, int>> JpegSize(std::string_view jpeg) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(jpeg[i]); };
  if (jpeg.size() < 4 || byte(0) != 0xFF || byte(1) != 0xD8) return std::nullopt;
  size_t i = 2;
  while (i + 4 <= jpeg.size()) {
    if (byte(i) != 0xFF) return std::nullopt;
    const unsigned char marker = byte(i + 1);
    if (marker == 0xFF) {  // fill byte
      ++i;
      continue;
    }
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {  // no length
      i += 2;
      continue;
    }
    if (marker == 0xD9 || marker == 0xDA) return std::nullopt;  // EOI or SOS before any SOF
    const size_t length = size_t{byte(i + 2)} << 8 | byte(i + 3);
    const bool sof =
        marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (sof) {
      if (i + 9 > jpeg.size()) return std::nullopt;
      const int height = byte(i + 5) << 8 | byte(i + 6);
      const int width = byte(i + 7) << 8 | byte(i + 8);
      return std::make_pair(width, height);
    }
    i += 2 + length;
  }
  return std::nullopt;
}

std::string JpegPartProblem(std::string_view jpeg) {
  const auto size = JpegSize(jpeg);
  if (!size) return "no JPEG header";
  const auto [w, h] = *size;
  if (w <= 0 || h <= 0 || w > kMaxJpegSide || h > kMaxJpegSide || int64_t{w} * h > kMaxJpegPixels) {
    return "JPEG of " + std::to_string(w) + "x" + std::to_string(h) + " refused";
  }
  return {};
}

}  // namespace freshframe::capture
