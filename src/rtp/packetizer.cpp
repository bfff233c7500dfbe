#include "rtp/packetizer.h"

#include <algorithm>

namespace freshframe::rtp {
namespace {

constexpr uint8_t kFuA = 28;
constexpr size_t kFuAOverhead = 2;  // FU indicator + FU header

void PutU16(uint8_t* out, uint16_t value) {
  out[0] = static_cast<uint8_t>(value >> 8);
  out[1] = static_cast<uint8_t>(value);
}

void PutU32(uint8_t* out, uint32_t value) {
  out[0] = static_cast<uint8_t>(value >> 24);
  out[1] = static_cast<uint8_t>(value >> 16);
  out[2] = static_cast<uint8_t>(value >> 8);
  out[3] = static_cast<uint8_t>(value);
}

// The length of the start code at `at`, or 0.
size_t StartCodeAt(std::span<const uint8_t> bytes, size_t at) {
  if (at + 3 <= bytes.size() && bytes[at] == 0 && bytes[at + 1] == 0) {
    if (bytes[at + 2] == 1) return 3;
    if (at + 4 <= bytes.size() && bytes[at + 2] == 0 && bytes[at + 3] == 1) return 4;
  }
  return 0;
}

}  // namespace

std::vector<std::span<const uint8_t>> SplitAnnexB(std::span<const uint8_t> bytes) {
  std::vector<std::span<const uint8_t>> units;
  size_t begin = 0;
  size_t at = 0;
  while (at < bytes.size()) {
    const size_t code = StartCodeAt(bytes, at);
    if (code == 0) {
      ++at;
      continue;
    }
    // Trailing zero bytes before a start code belong to no NAL unit.
    size_t end = at;
    while (end > begin && bytes[end - 1] == 0) --end;
    if (end > begin) units.push_back(bytes.subspan(begin, end - begin));
    at += code;
    begin = at;
  }
  if (bytes.size() > begin) units.push_back(bytes.subspan(begin));
  return units;
}

Packetizer::Packetizer(uint32_t ssrc, uint16_t first_sequence, uint8_t payload_type, size_t mtu)
    : ssrc_(ssrc),
      sequence_(first_sequence),
      payload_type_(static_cast<uint8_t>(payload_type & 0x7f)),
      mtu_(std::max(mtu, kRtpHeaderSize + kFuAOverhead + 1)) {
  packet_.reserve(mtu_);
}

bool Packetizer::Emit(std::span<const uint8_t> prefix, std::span<const uint8_t> payload,
                      bool marker, uint32_t timestamp, const SendFn& send) {
  packet_.resize(kRtpHeaderSize);
  packet_[0] = 0x80;  // version 2, no padding, no extension, no CSRC
  packet_[1] = static_cast<uint8_t>((marker ? 0x80 : 0) | payload_type_);
  PutU16(&packet_[2], sequence_);
  PutU32(&packet_[4], timestamp);
  PutU32(&packet_[8], ssrc_);
  packet_.insert(packet_.end(), prefix.begin(), prefix.end());
  packet_.insert(packet_.end(), payload.begin(), payload.end());
  if (!send(packet_)) return false;
  ++sequence_;
  return true;
}

size_t Packetizer::Packetize(std::span<const uint8_t> annex_b, uint32_t timestamp,
                             const SendFn& send) {
  const std::vector<std::span<const uint8_t>> units = SplitAnnexB(annex_b);
  const size_t room = mtu_ - kRtpHeaderSize;
  size_t sent = 0;
  for (size_t i = 0; i < units.size(); ++i) {
    const std::span<const uint8_t> unit = units[i];
    const bool last_unit = i + 1 == units.size();
    if (unit.size() <= room) {
      if (!Emit({}, unit, last_unit, timestamp, send)) return sent;
      ++sent;
      continue;
    }
    // FU-A: the NAL header's F and NRI bits go into the indicator, its type
    // into the FU header; the header byte itself is not sent.
    const uint8_t header = unit[0];
    std::span<const uint8_t> rest = unit.subspan(1);
    const size_t chunk = room - kFuAOverhead;
    bool first = true;
    while (!rest.empty()) {
      const size_t take = std::min(chunk, rest.size());
      const bool end = take == rest.size();
      const uint8_t fu[kFuAOverhead] = {
          static_cast<uint8_t>((header & 0xe0) | kFuA),
          static_cast<uint8_t>((first ? 0x80 : 0) | (end ? 0x40 : 0) | (header & 0x1f))};
      if (!Emit(fu, rest.first(take), end && last_unit, timestamp, send)) return sent;
      ++sent;
      rest = rest.subspan(take);
      first = false;
    }
  }
  return sent;
}

}  // namespace freshframe::rtp
