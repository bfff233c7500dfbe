#include "http/ws_frame.h"

#include <algorithm>

namespace freshframe::http {
namespace {

template <typename T>
void Put(unsigned char* out, T value) {
  for (size_t i = 0; i < sizeof(T); ++i) {
    out[i] = static_cast<unsigned char>((static_cast<uint64_t>(value) >> (8 * i)) & 0xFF);
  }
}

template <typename T>
T Get(const unsigned char* in) {
  uint64_t value = 0;
  for (size_t i = 0; i < sizeof(T); ++i) value |= static_cast<uint64_t>(in[i]) << (8 * i);
  return static_cast<T>(value);
}

uint16_t Clamp16(int32_t value) {
  return static_cast<uint16_t>(std::clamp<int32_t>(value, 0, 0xFFFF));
}

}  // namespace

WsHeader MakeWsHeader(const encode::EncodedFrame& frame) {
  const bool h264 = frame.codec == encode::Codec::kH264;
  WsHeader header{};
  std::copy_n(h264 ? kWsH264Magic : kWsJpegMagic, 4, header.begin());
  Put<uint16_t>(&header[4], kWsVersion);
  Put<uint16_t>(&header[6], static_cast<uint16_t>(kWsHeaderSize));
  // H.264: the access unit's number, whose gaps tell a skip to a keyframe.
  Put<uint64_t>(&header[8], h264 ? frame.sequence : frame.meta.sequence);
  Put<uint64_t>(&header[16],
                static_cast<uint64_t>(std::max<int64_t>(0, frame.meta.stamps.capture_us)));
  Put<uint16_t>(&header[24], Clamp16(frame.meta.width));
  Put<uint16_t>(&header[26], Clamp16(frame.meta.height));
  if (h264 && frame.keyframe) header[28] = kWsFlagKeyframe;
  return header;  // the rest reserved: zero
}

std::optional<WsHeaderFields> ParseWsHeader(const unsigned char* data, size_t size) {
  if (size < kWsHeaderSize) return std::nullopt;
  WsHeaderFields fields;
  if (std::equal(data, data + 4, kWsJpegMagic)) {
    fields.codec = encode::Codec::kJpeg;
  } else if (std::equal(data, data + 4, kWsH264Magic)) {
    fields.codec = encode::Codec::kH264;
  } else {
    return std::nullopt;
  }
  fields.version = Get<uint16_t>(data + 4);
  fields.header_length = Get<uint16_t>(data + 6);
  if (fields.header_length < kWsHeaderSize || fields.header_length > size) return std::nullopt;
  fields.sequence = Get<uint64_t>(data + 8);
  fields.capture_us = Get<uint64_t>(data + 16);
  fields.width = Get<uint16_t>(data + 24);
  fields.height = Get<uint16_t>(data + 26);
  fields.keyframe = fields.codec == encode::Codec::kJpeg || (data[28] & kWsFlagKeyframe) != 0;
  return fields;
}

}  // namespace freshframe::http
