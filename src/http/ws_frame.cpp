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
  WsHeader header{};
  std::copy_n("FFWS", 4, header.begin());
  Put<uint16_t>(&header[4], kWsVersion);
  Put<uint16_t>(&header[6], static_cast<uint16_t>(kWsHeaderSize));
  Put<uint64_t>(&header[8], frame.meta.sequence);
  Put<uint64_t>(&header[16],
                static_cast<uint64_t>(std::max<int64_t>(0, frame.meta.stamps.capture_us)));
  Put<uint16_t>(&header[24], Clamp16(frame.meta.width));
  Put<uint16_t>(&header[26], Clamp16(frame.meta.height));
  return header;  // 28..31 reserved: zero
}

std::optional<WsHeaderFields> ParseWsHeader(const unsigned char* data, size_t size) {
  if (size < kWsHeaderSize || !std::equal(data, data + 4, "FFWS")) return std::nullopt;
  WsHeaderFields fields;
  fields.version = Get<uint16_t>(data + 4);
  fields.header_length = Get<uint16_t>(data + 6);
  if (fields.header_length < kWsHeaderSize || fields.header_length > size) return std::nullopt;
  fields.sequence = Get<uint64_t>(data + 8);
  fields.capture_us = Get<uint64_t>(data + 16);
  fields.width = Get<uint16_t>(data + 24);
  fields.height = Get<uint16_t>(data + 26);
  return fields;
}

}  // namespace freshframe::http
