// RFC 6184 packetization-mode 1 of H.264 access units into RTP packets:
// each NAL unit that fits in one packet goes as a single NAL unit packet,
// larger ones as FU-A fragments; the marker bit is set on the last packet
// of the access unit. Internal to the rtp module (and its tests and fuzzer).
//
// Thread-safety: none; a Packetizer belongs to one sender thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace freshframe::rtp {

inline constexpr size_t kRtpHeaderSize = 12;

// The NAL units of an Annex B byte stream (start codes 00 00 01 or
// 00 00 00 01), without their start codes; empty units are skipped. Bytes
// before the first start code are taken as one NAL unit (an encoder that
// gives bare NAL units).
std::vector<std::span<const uint8_t>> SplitAnnexB(std::span<const uint8_t> bytes);

class Packetizer {
 public:
  // `mtu`: the largest packet, header included (at least kRtpHeaderSize +
  // 3, or it is raised to that).
  Packetizer(uint32_t ssrc, uint16_t first_sequence, uint8_t payload_type, size_t mtu);

  // Gets each packet of the access unit in order; `send` returns false to
  // give up the rest (its sequence numbers are not used, so the receiver
  // sees no gap for packets never sent). Returns the packets sent.
  using SendFn = std::function<bool(std::span<const uint8_t> packet)>;
  size_t Packetize(std::span<const uint8_t> annex_b, uint32_t timestamp, const SendFn& send);

  uint32_t ssrc() const { return ssrc_; }
  uint16_t next_sequence() const { return sequence_; }

 private:
  bool Emit(std::span<const uint8_t> fu_header, std::span<const uint8_t> payload, bool marker,
            uint32_t timestamp, const SendFn& send);

  uint32_t ssrc_;
  uint16_t sequence_;
  uint8_t payload_type_;
  size_t mtu_;
  std::vector<uint8_t> packet_;  // reused for every packet
};

}  // namespace freshframe::rtp
