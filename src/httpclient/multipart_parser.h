// An incremental parser for the body of a multipart/x-mixed-replace response
// (an MJPEG stream): bytes go in as they arrive from the socket, in pieces of
// any size, and complete parts come out.
//
// Thread-safety and ownership: a MultipartParser is not thread-safe; one
// thread feeds it and takes parts. The body of a returned Part points into
// the parser's buffer and stays valid only until the next call to Feed() or
// Next(). Memory is bounded: the parser holds at most one part (capped at
// max_part_bytes, plus the start of the delimiter line that ends it) plus the
// bytes of the read that completed it.
//
// What it accepts, to interoperate with the MJPEG servers found in the wild:
// - a preamble before the first delimiter (up to kMaxPreambleBytes);
// - any number of CR/LF between a part's body and the next delimiter,
//   including none;
// - "--boundary" delimiters, and also "boundary" alone when the declared
//   boundary itself starts with "--" (a common server mistake);
// - CRLF or bare LF line endings, and spaces or tabs after the delimiter;
// - parts with Content-Length (the body is read by count) or without it
//   (the body ends at the next delimiter line, found by scanning).
// It rejects header lines without a colon, a bad Content-Length, oversized
// headers or parts, and anything but a delimiter after a counted body.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace freshframe::httpclient {

class MultipartParser {
 public:
  static constexpr size_t kDefaultMaxPartBytes = 32u << 20;
  static constexpr size_t kMaxHeaderBytes = 16u << 10;
  static constexpr size_t kMaxPreambleBytes = 64u << 10;

  struct Header {
    std::string name;   // lower-cased
    std::string value;  // surrounding whitespace removed
  };

  struct Part {
    std::vector<Header> headers;
    // Valid until the next Feed() or Next() on the parser that returned it.
    std::string_view body;

    // The value of header `lower_name` (lower-case), or nullptr if absent.
    const std::string* Find(std::string_view lower_name) const;
  };

  enum class Status {
    kPart,      // *part holds the next part
    kNeedMore,  // feed more bytes
    kEnd,       // the closing delimiter "--boundary--" was seen
    kError,     // the stream is malformed; error() says why; sticky
  };

  // `boundary` as declared in the Content-Type, without quotes or the
  // leading "--" that the delimiter adds. Must not be empty.
  explicit MultipartParser(std::string boundary, size_t max_part_bytes = kDefaultMaxPartBytes);

  // Appends bytes received from the stream. Invalidates earlier part bodies.
  void Feed(std::string_view bytes);

  // Parses as far as the buffered bytes allow. Call repeatedly until it
  // returns something other than kPart. Invalidates earlier part bodies.
  Status Next(Part* part);

  const std::string& error() const { return error_; }

  // Bytes buffered and not yet returned as part of a part (for tests).
  size_t buffered() const { return buffer_.size() - consumed_; }

 private:
  enum class State { kPreamble, kDelimiter, kHeaders, kBody, kEnd, kError };

  // The outcome of matching a delimiter line at a known position.
  enum class Match { kYes, kNo, kNeedMore };

  static Match PrefixMatch(std::string_view rest, std::string_view pattern);

  // Each returns true if it moved to another state (ParseBody: if it
  // produced a part), false if it needs more bytes or failed.
  bool Fail(std::string message);
  bool ParsePreamble();
  bool ParseDelimiter();
  bool ParseHeaders();
  bool ParseBody(Part* part);

  // Whether a delimiter line starts at `pos`; on kYes sets *line_end past its
  // line ending (or past "--" for the closing one) and *closing.
  Match MatchDelimiter(size_t pos, bool at_line_start, size_t* line_end, bool* closing) const;
  // Searches [from, end) for a delimiter line. On kYes sets *start to where
  // the delimiter begins; *resume is where to search again after kNeedMore.
  Match FindDelimiter(size_t from, size_t* start, size_t* line_end, bool* closing,
                      size_t* resume) const;

  std::string boundary_;
  std::string delimiter_;  // "--" + boundary_
  size_t max_part_bytes_;
  State state_ = State::kPreamble;
  std::string error_;
  std::string buffer_;
  size_t consumed_ = 0;  // bytes of buffer_ already parsed and returned

  // The part being parsed.
  std::vector<Header> headers_;
  std::optional<size_t> content_length_;
  size_t scan_from_ = 0;  // where the delimiter search resumes (no length)
};

}  // namespace freshframe::httpclient
