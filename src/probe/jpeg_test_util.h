// Test helper: encodes an 8-bit BGR or gray cv::Mat as a baseline 4:2:0 JPEG
// with libjpeg, the same library family as the server's TurboJPEG encoder.
// (cv::imencode would also do, but its first call initialises GDAL inside
// OpenCV, which ThreadSanitizer reports as a lock-order inversion in
// libgdal, failing the tsan preset's halt_on_error runs.)
//
// Thread-safety: safe from any thread on distinct images. Header-only, for
// the probe's *_test.cpp files.
#pragma once

#include <jpeglib.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <opencv2/core/mat.hpp>
#include <string>

namespace freshframe::probe::test_util {

inline std::string EncodeJpeg(const cv::Mat& image, int quality) {
  jpeg_compress_struct cinfo{};
  jpeg_error_mgr err{};
  // The default error handler exits the process: acceptable in a test, whose
  // inputs are always valid images.
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  unsigned char* out = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &out, &size);
  cinfo.image_width = static_cast<JDIMENSION>(image.cols);
  cinfo.image_height = static_cast<JDIMENSION>(image.rows);
  cinfo.input_components = image.channels();
  cinfo.in_color_space = image.channels() == 3 ? JCS_EXT_BGR : JCS_GRAYSCALE;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    // libjpeg does not write through the row pointer; its API just isn't const.
    auto* row = const_cast<JSAMPLE*>(image.ptr<JSAMPLE>(static_cast<int>(cinfo.next_scanline)));
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  std::string jpeg(reinterpret_cast<const char*>(out), static_cast<size_t>(size));
  std::free(out);
  jpeg_destroy_compress(&cinfo);
  return jpeg;
}

}  // namespace freshframe::probe::test_util
