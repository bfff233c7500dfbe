// Internal to src/capture: the pure parsing of an upstream MJPEG stream that
// the MJPEG source (mjpeg_source.cpp) does on remote bytes, apart from the
// socket, so that fuzz/mjpeg_source_fuzzer.cpp exercises exactly this code:
// what a response head must say to be an MJPEG stream, and the size a JPEG
// claims before anything is allocated for it. Parts and de-chunking are
// httpclient::MultipartBody.
//
// Thread-safety: pure functions, safe from any thread; nothing keeps a
// pointer to the caller's bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "core/expected.h"

namespace freshframe::capture {

// A 4K JPEG at high quality is a few MB; anything near this is not a frame.
inline constexpr size_t kMaxMjpegPartBytes = 16u << 20;
// A JPEG header may claim any size; refuse to decode absurd ones.
inline constexpr int kMaxJpegSide = 16384;
inline constexpr int64_t kMaxJpegPixels = int64_t{8192} * 8192;

struct MjpegStreamFormat {
  std::string boundary;  // the multipart boundary, unquoted
  bool chunked = false;  // the body comes with Transfer-Encoding: chunked
};

// Checks a complete response head (through its blank line) for a stream the
// source can read: 200, multipart with a boundary, identity or chunked
// transfer coding, no content coding. Errors start with `shown_url` (already
// redacted) and say what the server sent instead.
Expected<MjpegStreamFormat> ParseMjpegResponse(std::string_view head, const std::string& shown_url);

// Width and height from the SOF marker of a JPEG, so that an absurd size is
// refused before the decoder allocates for it; nullopt if none is found.
std::optional<std::pair<int, int>> JpegSize(std::string_view jpeg);

// Empty if a part may be decoded, else why not ("no JPEG header", "JPEG of
// 20000x10 refused").
std::string JpegPartProblem(std::string_view jpeg);

}  // namespace freshframe::capture
