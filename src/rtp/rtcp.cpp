#include "rtp/rtcp.h"

#include <algorithm>

namespace freshframe::rtp {
namespace {

constexpr uint8_t kSenderReport = 200;
constexpr uint8_t kReceiverReport = 201;
constexpr uint8_t kSourceDescription = 202;
constexpr uint8_t kPayloadFeedback = 206;
constexpr uint8_t kPliFormat = 1;
constexpr uint8_t kFirFormat = 4;
constexpr size_t kHeaderSize = 4;
constexpr size_t kReportBlockSize = 24;
constexpr size_t kSenderInfoSize = 20;
constexpr size_t kFirEntrySize = 8;

uint32_t U32(std::span<const uint8_t> bytes, size_t at) {
  return static_cast<uint32_t>(bytes[at]) << 24 | static_cast<uint32_t>(bytes[at + 1]) << 16 |
         static_cast<uint32_t>(bytes[at + 2]) << 8 | static_cast<uint32_t>(bytes[at + 3]);
}

void PutU32(std::vector<uint8_t>& out, uint32_t value) {
  out.push_back(static_cast<uint8_t>(value >> 24));
  out.push_back(static_cast<uint8_t>(value >> 16));
  out.push_back(static_cast<uint8_t>(value >> 8));
  out.push_back(static_cast<uint8_t>(value));
}

// SR and RR: `blocks` report blocks start at `first_block` (bytes checked
// by the caller).
void ReadReports(std::span<const uint8_t> packet, size_t first_block, size_t blocks,
                 uint32_t our_ssrc, RtcpSummary& summary) {
  bool about_us = false;
  for (size_t i = 0; i < blocks; ++i) {
    const size_t at = first_block + i * kReportBlockSize;
    if (U32(packet, at) != our_ssrc) continue;
    ReceptionReport report;
    report.reporter_ssrc = U32(packet, kHeaderSize);
    const uint32_t lost = U32(packet, at + 4);
    report.fraction_lost = static_cast<uint8_t>(lost >> 24);
    // 24-bit two's complement.
    const uint32_t cumulative = lost & 0xffffff;
    report.cumulative_lost = cumulative & 0x800000 ? static_cast<int32_t>(cumulative) - 0x1000000
                                                   : static_cast<int32_t>(cumulative);
    report.highest_sequence = U32(packet, at + 8);
    report.jitter = U32(packet, at + 12);
    report.last_sr = U32(packet, at + 16);
    report.delay_since_last_sr = U32(packet, at + 20);
    summary.report = report;
    about_us = true;
  }
  if (about_us) ++summary.receiver_reports;
}

// One RTCP packet (its length already checked); false if its content does
// not fit its own length.
bool ReadPacket(std::span<const uint8_t> packet, uint32_t our_ssrc, RtcpSummary& summary) {
  const uint8_t count = packet[0] & 0x1f;  // RC, SC or FMT
  const uint8_t type = packet[1];
  switch (type) {
    case kSenderReport:
    case kReceiverReport: {
      const size_t first_block = kHeaderSize + 4 + (type == kSenderReport ? kSenderInfoSize : 0);
      if (first_block + count * kReportBlockSize > packet.size()) return false;
      ReadReports(packet, first_block, count, our_ssrc, summary);
      return true;
    }
    case kPayloadFeedback: {
      // Header, sender SSRC, media source SSRC, then the FCI.
      constexpr size_t kFciStart = kHeaderSize + 8;
      if (packet.size() < kFciStart) return false;
      const uint32_t media = U32(packet, kHeaderSize + 4);
      if (count == kPliFormat) {
        if (media == our_ssrc || media == 0) ++summary.pli;
      } else if (count == kFirFormat) {
        // RFC 5104 4.3.1: the media source SSRC is unused (0); each FCI
        // entry names the SSRC it asks a keyframe of.
        const size_t entries = (packet.size() - kFciStart) / kFirEntrySize;
        for (size_t i = 0; i < entries; ++i) {
          if (U32(packet, kFciStart + i * kFirEntrySize) == our_ssrc) {
            ++summary.fir;
            break;
          }
        }
      }
      return true;
    }
    default:
      return true;  // SDES, BYE, APP, RTPFB (NACK, REMB...): not ours to act on
  }
}

}  // namespace

RtcpSummary ParseRtcp(std::span<const uint8_t> datagram, uint32_t our_ssrc) {
  RtcpSummary summary;
  size_t at = 0;
  while (at < datagram.size()) {
    if (datagram.size() - at < kHeaderSize || (datagram[at] >> 6) != 2) {
      summary.malformed = true;
      break;
    }
    const size_t length =
        (static_cast<size_t>(datagram[at + 2]) << 8 | datagram[at + 3]) * 4 + kHeaderSize;
    if (length > datagram.size() - at) {
      summary.malformed = true;
      break;
    }
    std::span<const uint8_t> packet = datagram.subspan(at, length);
    if (packet[0] & 0x20) {
      // Padding: its count is the last octet and must leave the header.
      const size_t padding = packet.back();
      if (padding == 0 || padding > packet.size() - kHeaderSize) {
        summary.malformed = true;
        break;
      }
      packet = packet.first(packet.size() - padding);
    }
    ++summary.packets;
    if (!ReadPacket(packet, our_ssrc, summary)) {
      summary.malformed = true;
      break;
    }
    at += length;
  }
  return summary;
}

uint64_t NtpFromUnixMicros(int64_t unix_us) {
  constexpr uint64_t kUnixToNtpSeconds = 2'208'988'800;
  const uint64_t us = static_cast<uint64_t>(std::max<int64_t>(unix_us, 0));
  const uint64_t seconds = us / 1'000'000 + kUnixToNtpSeconds;
  const uint64_t fraction = ((us % 1'000'000) << 32) / 1'000'000;
  return seconds << 32 | fraction;
}

std::vector<uint8_t> BuildSenderReport(const SenderInfo& info, std::string_view cname) {
  std::vector<uint8_t> out;
  out.reserve(64);
  // SR: V=2, RC=0, length 6 (28 bytes).
  out.insert(out.end(), {0x80, kSenderReport, 0, 6});
  PutU32(out, info.ssrc);
  PutU32(out, static_cast<uint32_t>(info.ntp >> 32));
  PutU32(out, static_cast<uint32_t>(info.ntp));
  PutU32(out, info.rtp_timestamp);
  PutU32(out, info.packets);
  PutU32(out, info.octets);
  // SDES: one chunk (SSRC, CNAME item, end of items), padded to 32 bits.
  const size_t name_size = std::min<size_t>(cname.size(), 255);
  const size_t sdes_start = out.size();
  out.insert(out.end(), {0x81, kSourceDescription, 0, 0});
  PutU32(out, info.ssrc);
  out.push_back(1);  // CNAME
  out.push_back(static_cast<uint8_t>(name_size));
  out.insert(out.end(), cname.begin(), cname.begin() + static_cast<std::ptrdiff_t>(name_size));
  out.push_back(0);  // end of the item list
  while (out.size() % 4 != 0) out.push_back(0);
  const size_t words = (out.size() - sdes_start) / 4 - 1;
  out[sdes_start + 2] = static_cast<uint8_t>(words >> 8);
  out[sdes_start + 3] = static_cast<uint8_t>(words);
  return out;
}

}  // namespace freshframe::rtp
