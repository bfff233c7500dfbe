#include "httpclient/http_response.h"

#include <algorithm>
#include <utility>

#include "httpclient/text_util.h"

namespace freshframe::httpclient {

const std::string* ResponseHead::Find(std::string_view lower_name) const {
  for (const auto& header : headers) {
    if (header.name == lower_name) return &header.value;
  }
  return nullptr;
}

size_t FindHeadEnd(std::string_view bytes) {
  // The first empty line ends the head; lines end in CRLF or, leniently, LF.
  size_t line_start = 0;
  for (size_t nl = bytes.find('\n'); nl != std::string_view::npos;
       nl = bytes.find('\n', line_start)) {
    const size_t length = nl - line_start;
    if (length == 0 || (length == 1 && bytes[line_start] == '\r')) {
      // A blank first line is not the end of the head (there was no head).
      return line_start == 0 ? std::string_view::npos : nl + 1;
    }
    line_start = nl + 1;
  }
  return std::string_view::npos;
}

std::optional<ResponseHead> ParseResponseHead(std::string_view head, std::string* error) {
  auto fail = [error](std::string message) -> std::optional<ResponseHead> {
    if (error != nullptr) *error = std::move(message);
    return std::nullopt;
  };
  ResponseHead out;
  bool first = true;
  while (!head.empty()) {
    const size_t nl = head.find('\n');
    std::string_view line = head.substr(0, nl);
    head.remove_prefix(nl == std::string_view::npos ? head.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (first) {
      first = false;
      // "HTTP/1.1 200 OK": version, three-digit status, optional reason.
      if (!line.starts_with("HTTP/1.") || line.size() < 12 || line[8] != ' ' ||
          (line.size() > 12 && line[12] != ' ')) {
        return fail("not an HTTP/1.x status line: " + std::string(line.substr(0, 80)));
      }
      const auto status = ParseDecimal(line.substr(9, 3));
      if (!status || *status < 100) return fail("bad HTTP status in: " + std::string(line));
      out.status = static_cast<int>(*status);
      out.reason = std::string(TrimWhitespace(line.size() > 12 ? line.substr(13) : ""));
      continue;
    }
    if (line.empty()) break;  // the blank line that ends the head
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || !IsToken(line.substr(0, colon))) {
      return fail("bad response header line: " + std::string(line.substr(0, 80)));
    }
    out.headers.push_back(
        {AsciiLower(line.substr(0, colon)), std::string(TrimWhitespace(line.substr(colon + 1)))});
  }
  if (first) return fail("empty response");
  return out;
}

std::optional<std::string> MultipartBoundary(std::string_view content_type) {
  // multipart/x-mixed-replace; boundary=frame   (the parameter may be quoted)
  const size_t semicolon = content_type.find(';');
  const std::string type = AsciiLower(TrimWhitespace(content_type.substr(0, semicolon)));
  if (!type.starts_with("multipart/") || semicolon == std::string_view::npos) return std::nullopt;
  std::string_view params = content_type.substr(semicolon + 1);
  while (!params.empty()) {
    // Quoted values may hold ';', so split by hand rather than at every ';'.
    const size_t eq = params.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    const std::string name = AsciiLower(TrimWhitespace(params.substr(0, eq)));
    params.remove_prefix(eq + 1);
    params = TrimWhitespace(params);
    std::string value;
    if (!params.empty() && params.front() == '"') {
      size_t i = 1;
      for (; i < params.size() && params[i] != '"'; ++i) {
        if (params[i] == '\\' && i + 1 < params.size()) ++i;
        value.push_back(params[i]);
      }
      if (i >= params.size()) return std::nullopt;  // unterminated quote
      params.remove_prefix(i + 1);
      const size_t next = params.find(';');
      params.remove_prefix(next == std::string_view::npos ? params.size() : next + 1);
    } else {
      const size_t next = params.find(';');
      value = std::string(TrimWhitespace(params.substr(0, next)));
      params.remove_prefix(next == std::string_view::npos ? params.size() : next + 1);
    }
    if (name == "boundary") {
      if (value.empty() || value.size() > 200) return std::nullopt;
      return value;
    }
  }
  return std::nullopt;
}

bool ChunkedDecoder::Fail(std::string message) {
  state_ = State::kError;
  error_ = std::move(message);
  return false;
}

bool ChunkedDecoder::OnSizeLine() {
  // "1a2b[;extension]": hex size; extensions are ignored.
  std::string_view line = line_;
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  line = TrimWhitespace(line.substr(0, line.find(';')));
  if (line.empty() || line.size() > 15) return Fail("bad chunk size line");
  uint64_t size = 0;
  for (char c : line) {
    int digit = 0;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else {
      return Fail("bad chunk size line");
    }
    size = size * 16 + static_cast<uint64_t>(digit);
  }
  line_.clear();
  remaining_ = size;
  state_ = size == 0 ? State::kTrailer : State::kData;
  return true;
}

bool ChunkedDecoder::Decode(std::string_view in, std::string* out) {
  while (!in.empty()) {
    switch (state_) {
      case State::kError:
        return false;
      case State::kDone:
        return true;  // bytes after the last chunk are not ours to judge
      case State::kSize:
      case State::kTrailer: {
        const size_t nl = in.find('\n');
        line_.append(in.substr(0, nl == std::string_view::npos ? in.size() : nl + 1));
        in.remove_prefix(nl == std::string_view::npos ? in.size() : nl + 1);
        if (line_.size() > kMaxLineBytes) return Fail("chunk line too long");
        if (nl == std::string_view::npos) break;
        if (state_ == State::kSize) {
          if (!OnSizeLine()) return false;
        } else {
          // Trailer fields until a blank line.
          const bool blank = line_ == "\n" || line_ == "\r\n";
          line_.clear();
          if (blank) state_ = State::kDone;
        }
        break;
      }
      case State::kData: {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, in.size()));
        out->append(in.substr(0, n));
        in.remove_prefix(n);
        remaining_ -= n;
        if (remaining_ == 0) state_ = State::kDataEnd;
        break;
      }
      case State::kDataEnd: {
        // The CRLF (or LF) that closes a chunk's data.
        line_.push_back(in.front());
        in.remove_prefix(1);
        if (line_ == "\r") break;
        if (line_ != "\n" && line_ != "\r\n") return Fail("chunk data not followed by CRLF");
        line_.clear();
        state_ = State::kSize;
        break;
      }
    }
  }
  return state_ != State::kError;
}

}  // namespace freshframe::httpclient
