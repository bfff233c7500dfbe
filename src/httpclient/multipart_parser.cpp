#include "httpclient/multipart_parser.h"

#include <algorithm>
#include <utility>

#include "httpclient/text_util.h"

namespace freshframe::httpclient {

MultipartParser::Match MultipartParser::PrefixMatch(std::string_view rest,
                                                    std::string_view pattern) {
  if (rest.size() >= pattern.size()) return rest.starts_with(pattern) ? Match::kYes : Match::kNo;
  return pattern.starts_with(rest) ? Match::kNeedMore : Match::kNo;
}

const std::string* MultipartParser::Part::Find(std::string_view lower_name) const {
  for (const auto& header : headers) {
    if (header.name == lower_name) return &header.value;
  }
  return nullptr;
}

MultipartParser::MultipartParser(std::string boundary, size_t max_part_bytes)
    : boundary_(std::move(boundary)),
      delimiter_("--" + boundary_),
      max_part_bytes_(max_part_bytes) {
  if (boundary_.empty()) Fail("empty multipart boundary");
}

void MultipartParser::Feed(std::string_view bytes) {
  if (state_ == State::kError || state_ == State::kEnd) return;  // epilogue or dead
  // Drop parsed bytes only once they outweigh the unparsed ones, so the cost
  // of moving the tail is amortised over the bytes consumed.
  if (consumed_ > 0 && consumed_ >= buffer_.size() - consumed_) {
    buffer_.erase(0, consumed_);
    scan_from_ = scan_from_ >= consumed_ ? scan_from_ - consumed_ : 0;
    consumed_ = 0;
  }
  buffer_.append(bytes);
}

MultipartParser::Status MultipartParser::Next(Part* part) {
  for (;;) {
    bool advanced = false;
    switch (state_) {
      case State::kPreamble:
        advanced = ParsePreamble();
        break;
      case State::kDelimiter:
        advanced = ParseDelimiter();
        break;
      case State::kHeaders:
        advanced = ParseHeaders();
        break;
      case State::kBody:
        if (ParseBody(part)) return Status::kPart;
        break;
      case State::kEnd:
        return Status::kEnd;
      case State::kError:
        return Status::kError;
    }
    if (!advanced) return state_ == State::kError ? Status::kError : Status::kNeedMore;
  }
}

bool MultipartParser::Fail(std::string message) {
  state_ = State::kError;
  error_ = std::move(message);
  return false;
}

MultipartParser::Match MultipartParser::MatchDelimiter(size_t pos, bool at_line_start,
                                                       size_t* line_end, bool* closing) const {
  const std::string_view rest = std::string_view(buffer_).substr(pos);
  size_t len = 0;
  const Match standard = PrefixMatch(rest, delimiter_);
  // "boundary" alone, when the declared boundary already starts with "--".
  const Match quirk =
      at_line_start && boundary_.starts_with("--") ? PrefixMatch(rest, boundary_) : Match::kNo;
  if (standard == Match::kYes) {
    len = delimiter_.size();
  } else if (quirk == Match::kYes) {
    len = boundary_.size();
  } else {
    return standard == Match::kNeedMore || quirk == Match::kNeedMore ? Match::kNeedMore
                                                                     : Match::kNo;
  }

  // What follows the boundary: "--" closes the stream; otherwise optional
  // transport padding and the end of the line.
  size_t p = pos + len;
  if (p >= buffer_.size()) return Match::kNeedMore;
  if (buffer_[p] == '-') {
    if (p + 1 >= buffer_.size()) return Match::kNeedMore;
    if (buffer_[p + 1] != '-') return Match::kNo;
    *closing = true;
    *line_end = p + 2;
    return Match::kYes;
  }
  while (p < buffer_.size() && (buffer_[p] == ' ' || buffer_[p] == '\t')) {
    if (p - pos > kMaxHeaderBytes) return Match::kNo;
    ++p;
  }
  if (p >= buffer_.size()) return Match::kNeedMore;
  if (buffer_[p] == '\r') {
    if (p + 1 >= buffer_.size()) return Match::kNeedMore;
    if (buffer_[p + 1] != '\n') return Match::kNo;
    ++p;
  }
  if (buffer_[p] != '\n') return Match::kNo;
  *closing = false;
  *line_end = p + 1;
  return Match::kYes;
}

MultipartParser::Match MultipartParser::FindDelimiter(size_t from, size_t* start, size_t* line_end,
                                                      bool* closing, size_t* resume) const {
  size_t h = from;
  while ((h = buffer_.find(boundary_, h)) != std::string::npos) {
    size_t candidate = std::string::npos;
    if (h >= consumed_ + 2 && buffer_[h - 2] == '-' && buffer_[h - 1] == '-') {
      candidate = h - 2;
    } else if (boundary_.starts_with("--") && (h == consumed_ || buffer_[h - 1] == '\n')) {
      candidate = h;
    }
    if (candidate != std::string::npos) {
      const bool at_line_start = candidate == consumed_ || buffer_[candidate - 1] == '\n';
      const Match m = MatchDelimiter(candidate, at_line_start, line_end, closing);
      if (m == Match::kYes) {
        *start = candidate;
        return m;
      }
      if (m == Match::kNeedMore) {
        *resume = h;  // the same hit is found again once more bytes arrive
        return m;
      }
    }
    ++h;
  }
  // A hit that is still arriving starts no earlier than this.
  const size_t tail = boundary_.size() - 1;
  *resume = buffer_.size() > tail ? std::max(from, buffer_.size() - tail) : from;
  return Match::kNeedMore;
}

bool MultipartParser::ParsePreamble() {
  size_t start = 0, line_end = 0, resume = 0;
  bool closing = false;
  if (FindDelimiter(scan_from_, &start, &line_end, &closing, &resume) == Match::kYes) {
    consumed_ = line_end;
    state_ = closing ? State::kEnd : State::kHeaders;
    headers_.clear();
    content_length_.reset();
    return true;
  }
  scan_from_ = resume;
  if (buffer_.size() - consumed_ > kMaxPreambleBytes) {
    return Fail("no multipart boundary in the first " + std::to_string(kMaxPreambleBytes) +
                " bytes");
  }
  return false;
}

bool MultipartParser::ParseDelimiter() {
  // Whatever line endings separate the body from the delimiter, or none.
  while (consumed_ < buffer_.size() && (buffer_[consumed_] == '\r' || buffer_[consumed_] == '\n')) {
    ++consumed_;
  }
  if (consumed_ >= buffer_.size()) return false;
  size_t line_end = 0;
  bool closing = false;
  switch (MatchDelimiter(consumed_, true, &line_end, &closing)) {
    case Match::kNeedMore:
      return false;
    case Match::kNo:
      return Fail("expected the boundary delimiter after a part's body");
    case Match::kYes:
      break;
  }
  consumed_ = line_end;
  state_ = closing ? State::kEnd : State::kHeaders;
  headers_.clear();
  content_length_.reset();
  return true;
}

bool MultipartParser::ParseHeaders() {
  size_t header_bytes = 0;
  size_t pos = consumed_;
  // Headers are parsed in one go once the blank line has arrived, so a part's
  // header section is never half-applied.
  std::vector<Header> headers;
  std::optional<size_t> length;
  for (;;) {
    const size_t nl = buffer_.find('\n', pos);
    if (nl == std::string::npos) {
      if (buffer_.size() - consumed_ > kMaxHeaderBytes) return Fail("part headers too long");
      return false;
    }
    header_bytes = nl + 1 - consumed_;
    if (header_bytes > kMaxHeaderBytes) return Fail("part headers too long");
    std::string_view line(buffer_.data() + pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = nl + 1;
    if (line.empty()) break;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return Fail("part header line without a colon");
    const std::string_view name = line.substr(0, colon);
    if (!IsToken(name)) return Fail("bad part header name");
    Header header{AsciiLower(name), std::string(TrimWhitespace(line.substr(colon + 1)))};
    if (header.name == "content-length") {
      const auto value = ParseDecimal(header.value);
      if (!value) return Fail("bad Content-Length: " + header.value);
      if (length && *length != *value) return Fail("conflicting Content-Length headers");
      if (*value > max_part_bytes_) {
        return Fail("part of " + header.value + " bytes exceeds the limit of " +
                    std::to_string(max_part_bytes_));
      }
      length = static_cast<size_t>(*value);
    }
    headers.push_back(std::move(header));
  }
  headers_ = std::move(headers);
  content_length_ = length;
  consumed_ = pos;
  scan_from_ = pos;
  state_ = State::kBody;
  return true;
}

bool MultipartParser::ParseBody(Part* part) {
  const size_t body_start = consumed_;
  size_t body_end = 0;
  if (content_length_) {
    if (buffer_.size() - body_start < *content_length_) return false;
    body_end = body_start + *content_length_;
    consumed_ = body_end;
    state_ = State::kDelimiter;
  } else {
    size_t start = 0, line_end = 0, resume = 0;
    bool closing = false;
    const auto too_big = [this] {
      return Fail("part without Content-Length exceeds the limit of " +
                  std::to_string(max_part_bytes_) + " bytes");
    };
    if (FindDelimiter(scan_from_, &start, &line_end, &closing, &resume) != Match::kYes) {
      scan_from_ = resume;
      // Beyond the body, the buffer may hold the start of the delimiter line
      // that ends it (CRLF, "--boundary", padding): fail only once the body
      // itself must be over the limit, so that the verdict does not depend
      // on how the bytes were split into reads.
      const size_t pending_delimiter = 2 + delimiter_.size() + kMaxHeaderBytes + 2;
      if (buffer_.size() - body_start > max_part_bytes_ + pending_delimiter) return too_big();
      return false;
    }
    // The line ending before the delimiter belongs to the delimiter.
    body_end = start;
    if (body_end > body_start && buffer_[body_end - 1] == '\n') --body_end;
    if (body_end > body_start && buffer_[body_end - 1] == '\r') --body_end;
    // Also when the delimiter came in the same read as the body.
    if (body_end - body_start > max_part_bytes_) return too_big();
    consumed_ = line_end;
    state_ = closing ? State::kEnd : State::kHeaders;
  }
  part->headers = std::move(headers_);
  part->body = std::string_view(buffer_).substr(body_start, body_end - body_start);
  headers_.clear();
  content_length_.reset();
  return true;
}

}  // namespace freshframe::httpclient
