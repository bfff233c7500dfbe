// The HTTP/1.1 client side shared by the probe and the MJPEG source: parsing
// the response head of a stream request, finding the multipart boundary, and undoing chunked
// transfer coding (a server may send the endless multipart body chunked).
//
// Thread-safety and ownership: the free functions are pure and safe from any
// thread. A ChunkedDecoder is not thread-safe; one thread feeds it. Nothing
// here keeps pointers to the caller's bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace freshframe::httpclient {

inline constexpr size_t kMaxResponseHeadBytes = 64u << 10;

struct ResponseHead {
  struct Header {
    std::string name;   // lower-cased
    std::string value;  // surrounding whitespace removed
  };
  int status = 0;  // e.g. 200
  std::string reason;
  std::vector<Header> headers;

  // The value of header `lower_name` (lower-case), or nullptr if absent.
  const std::string* Find(std::string_view lower_name) const;
};

// Where the head ends in `bytes`: the index just past the blank line (CRLF
// CRLF, or bare LF LF), or npos if it has not fully arrived yet.
size_t FindHeadEnd(std::string_view bytes);

// Parses a head (status line, header lines, blank line). On a malformed head
// returns nullopt and, if `error` is given, says why.
std::optional<ResponseHead> ParseResponseHead(std::string_view head, std::string* error = nullptr);

// The boundary parameter of a multipart/* Content-Type, unquoted; nullopt if
// the type is not multipart or has no (non-empty) boundary.
std::optional<std::string> MultipartBoundary(std::string_view content_type);

// Decodes a "Transfer-Encoding: chunked" body incrementally.
class ChunkedDecoder {
 public:
  // Decodes `in` and appends the payload to *out. Returns false once the
  // stream is malformed (sticky; error() says why).
  bool Decode(std::string_view in, std::string* out);

  // The zero-size last chunk and its trailer have been seen.
  bool done() const { return state_ == State::kDone; }
  const std::string& error() const { return error_; }

 private:
  enum class State { kSize, kData, kDataEnd, kTrailer, kDone, kError };
  static constexpr size_t kMaxLineBytes = 4096;

  bool Fail(std::string message);
  bool OnSizeLine();

  State state_ = State::kSize;
  std::string line_;        // the size or trailer line being assembled
  uint64_t remaining_ = 0;  // data bytes left in the current chunk
  std::string error_;
};

}  // namespace freshframe::httpclient
