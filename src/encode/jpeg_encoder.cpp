#include <turbojpeg.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "encode/encode.h"

namespace freshframe::encode {
namespace {

tjhandle Handle(void* handle) { return static_cast<tjhandle>(handle); }

// TurboJPEG's buffers are freed with tjFree, whatever happens.
struct TjBuffer {
  unsigned char* data = nullptr;
  ~TjBuffer() { tjFree(data); }
};

}  // namespace

JpegEncoder::JpegEncoder(int quality)
    : handle_(tjInitCompress()), quality_(std::clamp(quality, kMinJpegQuality, kMaxJpegQuality)) {}

void JpegEncoder::set_quality(int quality) {
  quality_ = std::clamp(quality, kMinJpegQuality, kMaxJpegQuality);
}

JpegEncoder::~JpegEncoder() {
  if (handle_ != nullptr) tjDestroy(Handle(handle_));
}

Expected<std::vector<unsigned char>> JpegEncoder::Encode(const cv::Mat& image) {
  if (handle_ == nullptr) return Error{"TurboJPEG compressor could not be created"};
  if (image.empty() || image.depth() != CV_8U || (image.channels() != 3 && image.channels() != 1)) {
    return Error{"JPEG encoder needs an 8-bit BGR or gray image"};
  }
  const bool gray = image.channels() == 1;
  TjBuffer out;
  unsigned long size = 0;
  const int rc = tjCompress2(Handle(handle_), image.data, image.cols, static_cast<int>(image.step),
                             image.rows, gray ? TJPF_GRAY : TJPF_BGR, &out.data, &size,
                             gray ? TJSAMP_GRAY : TJSAMP_420, quality_, TJFLAG_FASTDCT);
  if (rc != 0) {
    return Error{std::string("JPEG encode failed: ") + tjGetErrorStr2(Handle(handle_))};
  }
  return std::vector<unsigned char>(out.data, out.data + size);
}

}  // namespace freshframe::encode
