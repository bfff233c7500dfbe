// RTCP (RFC 3550, RFC 4585, RFC 5104) as the RTP sender needs it: the
// Sender Report it sends, and what it reads from a compound packet coming
// back (receiver reports, PLI and FIR). Internal to the rtp module (and its
// tests and fuzzer).
//
// ParseRtcp is a pure function of untrusted bytes: every length is checked
// against the datagram before anything is read, a malformed packet stops
// the walk (what came before it still counts), unknown types are skipped.
//
// Thread-safety: plain functions and values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace freshframe::rtp {

// One report block about our stream (RFC 3550 6.4.1).
struct ReceptionReport {
  uint32_t reporter_ssrc = 0;
  uint8_t fraction_lost = 0;  // of 256, since the previous report
  int32_t cumulative_lost = 0;
  uint32_t highest_sequence = 0;
  uint32_t jitter = 0;  // RTP timestamp units
  uint32_t last_sr = 0;
  uint32_t delay_since_last_sr = 0;
};

struct RtcpSummary {
  size_t packets = 0;                     // RTCP packets walked (well-formed headers)
  uint32_t pli = 0;                       // PSFB fmt 1 naming our SSRC (or 0)
  uint32_t fir = 0;                       // PSFB fmt 4 with an entry for our SSRC
  uint32_t receiver_reports = 0;          // SR/RR packets carrying a block about us
  std::optional<ReceptionReport> report;  // the last block about us
  bool malformed = false;                 // the walk stopped at a bad length or version
};

// Reads one UDP datagram of RTCP sent to the sender of `our_ssrc`.
RtcpSummary ParseRtcp(std::span<const uint8_t> datagram, uint32_t our_ssrc);

// A 64-bit NTP timestamp (seconds since 1900 in the high word) of a
// CLOCK_REALTIME time in microseconds since 1970.
uint64_t NtpFromUnixMicros(int64_t unix_us);

struct SenderInfo {
  uint32_t ssrc = 0;
  uint64_t ntp = 0;            // wall clock now
  uint32_t rtp_timestamp = 0;  // the same instant on the RTP clock
  uint32_t packets = 0;        // sent since the start (wraps)
  uint32_t octets = 0;         // payload octets sent since the start (wraps)
};

// A compound RTCP packet: SR (no report blocks) + SDES with `cname`
// (truncated to 255 bytes).
std::vector<uint8_t> BuildSenderReport(const SenderInfo& info, std::string_view cname);

}  // namespace freshframe::rtp
