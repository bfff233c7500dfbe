// JPEG decoding (TurboJPEG): what a JPEG consumer needs, apart from the
// encoder stage, so that a source that receives JPEGs (the MJPEG source) and
// the tools and tests that read snapshots do not depend on src/encode.
//
// Thread-safety and ownership: DecodeJpeg may be called from any thread, also
// concurrently (each call uses its own decompressor); it only reads the
// caller's bytes during the call and returns an image the caller owns.
#pragma once

#include <cstddef>

#include <opencv2/core/mat.hpp>

#include "core/expected.h"

namespace freshframe::jpeg {

// Decodes a JPEG into an 8-bit BGR image (gray JPEGs too); an error if the
// bytes are not a JPEG or the decode fails.
Expected<cv::Mat> DecodeJpeg(const unsigned char* data, size_t size);

}  // namespace freshframe::jpeg
