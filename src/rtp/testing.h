// Test helpers of the rtp module (its unit tests only): a minimal RFC 6184
// depacketizer that turns RTP packets back into Annex B access units, and
// an access unit generator.
//
// Thread-safety: none; each test owns its own.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace freshframe::rtp::testing {

struct RtpPacket {
  bool marker = false;
  uint8_t payload_type = 0;
  uint16_t sequence = 0;
  uint32_t timestamp = 0;
  uint32_t ssrc = 0;
  std::vector<uint8_t> payload;
};

inline std::optional<RtpPacket> ReadRtp(std::span<const uint8_t> bytes) {
  if (bytes.size() < 12 || (bytes[0] >> 6) != 2) return std::nullopt;
  RtpPacket packet;
  packet.marker = (bytes[1] & 0x80) != 0;
  packet.payload_type = bytes[1] & 0x7f;
  packet.sequence = static_cast<uint16_t>(bytes[2] << 8 | bytes[3]);
  packet.timestamp = static_cast<uint32_t>(bytes[4]) << 24 | static_cast<uint32_t>(bytes[5]) << 16 |
                     static_cast<uint32_t>(bytes[6]) << 8 | bytes[7];
  packet.ssrc = static_cast<uint32_t>(bytes[8]) << 24 | static_cast<uint32_t>(bytes[9]) << 16 |
                static_cast<uint32_t>(bytes[10]) << 8 | bytes[11];
  packet.payload.assign(bytes.begin() + 12, bytes.end());
  return packet;
}

// Rebuilds access units (4-byte start codes) from packets in order.
class Depacketizer {
 public:
  // Returns the access unit the packet completes (marker bit), if any.
  std::optional<std::vector<uint8_t>> Add(const RtpPacket& packet) {
    const std::vector<uint8_t>& payload = packet.payload;
    if (payload.empty()) return std::nullopt;
    const uint8_t type = payload[0] & 0x1f;
    if (type == 28 && payload.size() >= 2) {  // FU-A
      const bool start = (payload[1] & 0x80) != 0;
      if (start) {
        unit_.insert(unit_.end(), {0, 0, 0, 1});
        unit_.push_back(static_cast<uint8_t>((payload[0] & 0xe0) | (payload[1] & 0x1f)));
      }
      unit_.insert(unit_.end(), payload.begin() + 2, payload.end());
    } else {
      unit_.insert(unit_.end(), {0, 0, 0, 1});
      unit_.insert(unit_.end(), payload.begin(), payload.end());
    }
    if (!packet.marker) return std::nullopt;
    std::vector<uint8_t> done;
    done.swap(unit_);
    return done;
  }

 private:
  std::vector<uint8_t> unit_;
};

// An Annex B access unit: SPS and PPS (when `idr`), then one slice NAL unit
// of `slice_size` bytes whose content never forms a start code.
inline std::vector<uint8_t> MakeAccessUnit(bool idr, size_t slice_size, uint8_t seed) {
  std::vector<uint8_t> unit;
  if (idr) {
    unit.insert(unit.end(), {0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40});  // SPS
    unit.insert(unit.end(), {0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80});                    // PPS
  }
  unit.insert(unit.end(), {0, 0, 0, 1, static_cast<uint8_t>(idr ? 0x65 : 0x41)});
  for (size_t i = 1; i < slice_size; ++i) {
    unit.push_back(static_cast<uint8_t>(1 + (i * 7 + seed) % 255));
  }
  return unit;
}

}  // namespace freshframe::rtp::testing
