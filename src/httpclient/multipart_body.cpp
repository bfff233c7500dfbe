#include "httpclient/multipart_body.h"

#include <utility>

namespace freshframe::httpclient {

MultipartBody::MultipartBody(std::string boundary, bool chunked, size_t max_part_bytes)
    : parser_(std::move(boundary), max_part_bytes) {
  if (chunked) chunked_.emplace();
}

bool MultipartBody::Dechunk(std::string_view* bytes) {
  if (!chunked_) return true;
  plain_.clear();
  const bool ok = chunked_->Decode(*bytes, &plain_);
  *bytes = plain_;
  if (!ok) error_ = "bad chunked encoding: " + chunked_->error();
  return ok;
}

MultipartBody::Status MultipartBody::NeedMore() {
  // A chunked body can end without a closing boundary: its last chunk.
  if (chunked_ && chunked_->done()) {
    ended_by_ = "last chunk";
    return Status::kEnded;
  }
  return Status::kMore;
}

}  // namespace freshframe::httpclient
