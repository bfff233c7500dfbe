// The body of a multipart/x-mixed-replace response (an MJPEG stream) as it
// arrives off the socket: de-chunked first when the server sent it with
// "Transfer-Encoding: chunked", then split into parts. One piece for every
// client of such streams: the probe, the MJPEG source and bench/compare's
// strip sampler.
//
// Thread-safety and ownership: not thread-safe; one thread feeds it. A part's
// body is valid only during the on_part call that receives it.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "httpclient/http_response.h"
#include "httpclient/multipart_parser.h"

namespace freshframe::httpclient {

class MultipartBody {
 public:
  enum class Status {
    kMore,    // wants more bytes
    kEnded,   // the server ended the stream; ended_by() says how
    kBroken,  // malformed; error() says why
  };

  MultipartBody(std::string boundary, bool chunked,
                size_t max_part_bytes = MultipartParser::kDefaultMaxPartBytes);

  // Feeds bytes received from the socket and calls on_part(body) for each
  // part they complete, in order (on_part(part) if it takes the whole
  // MultipartParser::Part, headers included).
  // Parts completed before broken chunking in the same bytes are still
  // delivered: what a Feed yields never depends on how the socket split the
  // stream (fuzz/mjpeg_source_fuzzer.cpp checks this).
  template <typename OnPart>
  Status Feed(std::string_view bytes, OnPart&& on_part) {
    const bool dechunked = Dechunk(&bytes);
    parser_.Feed(bytes);
    MultipartParser::Part part;
    for (;;) {
      switch (parser_.Next(&part)) {
        case MultipartParser::Status::kPart:
          if constexpr (std::is_invocable_v<OnPart&, const MultipartParser::Part&>) {
            on_part(static_cast<const MultipartParser::Part&>(part));
          } else {
            on_part(part.body);
          }
          continue;
        case MultipartParser::Status::kNeedMore:
          return dechunked ? NeedMore() : Status::kBroken;
        case MultipartParser::Status::kEnd:
          ended_by_ = "closing boundary";
          return Status::kEnded;
        case MultipartParser::Status::kError:
          error_ = "bad multipart stream: " + parser_.error();
          return Status::kBroken;
      }
    }
  }

  // "closing boundary" or "last chunk", once Feed returned kEnded.
  std::string_view ended_by() const { return ended_by_; }
  const std::string& error() const { return error_; }

 private:
  // Replaces *bytes by their de-chunked payload (when chunked); false and
  // error_ set if the chunking is malformed, *bytes then being the payload
  // decoded before the fault.
  bool Dechunk(std::string_view* bytes);
  Status NeedMore();

  MultipartParser parser_;
  std::optional<ChunkedDecoder> chunked_;
  std::string plain_;  // de-chunked bytes of the current Feed
  std::string_view ended_by_;
  std::string error_;
};

}  // namespace freshframe::httpclient
