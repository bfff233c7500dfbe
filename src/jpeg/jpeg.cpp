#include "jpeg/jpeg.h"

#include <turbojpeg.h>

#include <string>

namespace freshframe::jpeg {

Expected<cv::Mat> DecodeJpeg(const unsigned char* data, size_t size) {
  tjhandle handle = tjInitDecompress();
  if (handle == nullptr) return Error{"TurboJPEG decompressor could not be created"};
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
  const auto jpeg_size = static_cast<unsigned long>(size);
  // TurboJPEG 2.x takes a non-const pointer but does not write through it.
  auto* input = const_cast<unsigned char*>(data);
  if (tjDecompressHeader3(handle, input, jpeg_size, &width, &height, &subsampling, &colorspace) !=
      0) {
    std::string why = tjGetErrorStr2(handle);
    tjDestroy(handle);
    return Error{"not a JPEG: " + why};
  }
  cv::Mat image(height, width, CV_8UC3);
  const int rc = tjDecompress2(handle, input, jpeg_size, image.data, width,
                               static_cast<int>(image.step), height, TJPF_BGR, 0);
  std::string why = rc != 0 ? tjGetErrorStr2(handle) : "";
  tjDestroy(handle);
  if (rc != 0) return Error{"JPEG decode failed: " + why};
  return image;
}

}  // namespace freshframe::jpeg
