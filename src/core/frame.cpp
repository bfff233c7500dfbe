#include "core/frame.h"

namespace freshframe {

std::string_view PixelFormatName(PixelFormat format) {
  switch (format) {
    case PixelFormat::kBgr24:
      return "bgr24";
    case PixelFormat::kGray8:
      return "gray8";
  }
  return "unknown";
}

}  // namespace freshframe
