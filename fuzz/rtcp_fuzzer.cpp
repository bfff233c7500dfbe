// libFuzzer target: RTCP coming back to the RTP sender (src/rtp/rtcp.h:
// ParseRtcp), as it reads each datagram from Janus (or from anyone who can
// reach its RTCP port), and the Sender Report it builds.
//
// The input: 4 bytes of "our" SSRC, then one UDP datagram (compound RTCP,
// truncated packets, lengths pointing anywhere, padding, report counts that
// do not fit, unknown types, non-RTCP bytes). Beyond "no sanitizer report",
// it checks:
// - the counts are bounded by the datagram: packets <= size / 4, and PLIs,
//   FIRs and receiver reports never outnumber the packets walked; a report
//   is given exactly when a receiver report was counted;
// - a datagram read without error (not malformed) read twice in a row (the
//   two concatenated) gives twice the counts and no error: the walk ends
//   exactly at the end of each packet;
// - a malformed datagram's counts are those of the packets before the bad
//   one, so appending bytes never lowers a count;
// - BuildSenderReport, from an SSRC, times and a CNAME taken from the input,
//   gives two packets (SR + SDES) that parse without error, whose length is
//   a multiple of 4.
//
// Build and run: fuzz/README.md.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string_view>
#include <vector>

#include "rtp/rtcp.h"

namespace {

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "rtcp_fuzzer: %s\n", what);
    std::abort();
  }
}

uint32_t U32(const uint8_t* bytes) {
  return static_cast<uint32_t>(bytes[0]) << 24 | static_cast<uint32_t>(bytes[1]) << 16 |
         static_cast<uint32_t>(bytes[2]) << 8 | static_cast<uint32_t>(bytes[3]);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using freshframe::rtp::ParseRtcp;
  using freshframe::rtp::RtcpSummary;
  if (size < 4) return 0;
  const uint32_t ssrc = U32(data);
  const std::span<const uint8_t> datagram(data + 4, size - 4);

  const RtcpSummary summary = ParseRtcp(datagram, ssrc);
  Check(summary.packets <= datagram.size() / 4, "more packets than 32-bit words");
  Check(summary.pli <= summary.packets, "more PLIs than packets");
  Check(summary.fir <= summary.packets, "more FIRs than packets");
  Check(summary.receiver_reports <= summary.packets, "more reports than packets");
  Check(summary.report.has_value() == (summary.receiver_reports > 0),
        "a report without a counted receiver report, or the reverse");
  Check(summary.malformed || datagram.empty() || summary.packets > 0,
        "bytes read as no packet without an error");

  std::vector<uint8_t> twice(datagram.begin(), datagram.end());
  twice.insert(twice.end(), datagram.begin(), datagram.end());
  const RtcpSummary doubled = ParseRtcp(twice, ssrc);
  if (!summary.malformed) {
    Check(!doubled.malformed, "a well-formed datagram twice is malformed");
    Check(doubled.packets == 2 * summary.packets, "packets not doubled");
    Check(doubled.pli == 2 * summary.pli, "PLIs not doubled");
    Check(doubled.fir == 2 * summary.fir, "FIRs not doubled");
    Check(doubled.receiver_reports == 2 * summary.receiver_reports, "reports not doubled");
  } else {
    // The bad packet may become whole with the bytes appended; what came
    // before it reads the same.
    Check(doubled.packets >= summary.packets && doubled.pli >= summary.pli &&
              doubled.fir >= summary.fir && doubled.receiver_reports >= summary.receiver_reports,
          "appending bytes lowered a count");
  }

  freshframe::rtp::SenderInfo info;
  info.ssrc = ssrc;
  if (datagram.size() >= 16) {
    info.ntp = static_cast<uint64_t>(U32(datagram.data())) << 32 | U32(datagram.data() + 4);
    info.rtp_timestamp = U32(datagram.data() + 8);
    info.packets = U32(datagram.data() + 12);
  }
  const std::string_view cname(reinterpret_cast<const char*>(datagram.data()), datagram.size());
  const std::vector<uint8_t> report = freshframe::rtp::BuildSenderReport(info, cname);
  Check(report.size() % 4 == 0, "sender report not 32-bit aligned");
  const RtcpSummary own = ParseRtcp(report, ssrc);
  Check(!own.malformed && own.packets == 2, "own sender report does not parse as SR + SDES");
  Check(own.pli == 0 && own.fir == 0 && own.receiver_reports == 0, "own report read as feedback");
  return 0;
}
