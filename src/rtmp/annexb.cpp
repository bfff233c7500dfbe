#include "rtmp/annexb.h"

#include <cstddef>

namespace freshframe::rtmp {
namespace {

// The offset of the NAL unit after the start code found at or after `from`
// (3- or 4-byte codes), or the size if there is none.
size_t NextNal(std::span<const unsigned char> bytes, size_t from) {
  for (size_t i = from; i + 3 <= bytes.size(); ++i) {
    if (bytes[i] == 0 && bytes[i + 1] == 0 && bytes[i + 2] == 1) return i + 3;
  }
  return bytes.size();
}

}  // namespace

std::vector<unsigned char> ParameterSets(std::span<const unsigned char> access_unit) {
  std::vector<unsigned char> out;
  bool sps = false;
  bool pps = false;
  size_t start = NextNal(access_unit, 0);
  while (start < access_unit.size()) {
    size_t next = NextNal(access_unit, start);
    // The NAL unit ends before the next start code, whose leading zero (of
    // a 4-byte code) and any trailing zeros are not part of it.
    size_t end = next == access_unit.size() ? next : next - 3;
    while (end > start && access_unit[end - 1] == 0) --end;
    const unsigned type = access_unit[start] & 0x1fU;
    if (type == 7 || type == 8) {
      out.insert(out.end(), {0, 0, 0, 1});
      out.insert(out.end(), access_unit.begin() + static_cast<std::ptrdiff_t>(start),
                 access_unit.begin() + static_cast<std::ptrdiff_t>(end));
      (type == 7 ? sps : pps) = true;
    }
    start = next;
  }
  if (!sps || !pps) out.clear();
  return out;
}

}  // namespace freshframe::rtmp
