#include "rtp/rtcp.h"

#include <gtest/gtest.h>

namespace freshframe::rtp {
namespace {

constexpr uint32_t kOurs = 0xa1b2c3d4;

void Put32(std::vector<uint8_t>& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(value >> shift));
}

std::vector<uint8_t> Pli(uint32_t media) {
  std::vector<uint8_t> out = {0x81, 206, 0, 2};
  Put32(out, 0x01020304);
  Put32(out, media);
  return out;
}

std::vector<uint8_t> Fir(uint32_t target) {
  std::vector<uint8_t> out = {0x84, 206, 0, 4};
  Put32(out, 0x01020304);
  Put32(out, 0);
  Put32(out, target);
  Put32(out, 0x07000000);  // seq nr 7
  return out;
}

std::vector<uint8_t> ReceiverReport(uint32_t about, uint8_t fraction, uint32_t jitter) {
  std::vector<uint8_t> out = {0x81, 201, 0, 7};
  Put32(out, 0x05060708);
  Put32(out, about);
  Put32(out, static_cast<uint32_t>(fraction) << 24 | 0xfffffe);  // cumulative -2
  Put32(out, 70000);
  Put32(out, jitter);
  Put32(out, 0);
  Put32(out, 0);
  return out;
}

std::vector<uint8_t> Join(std::initializer_list<std::vector<uint8_t>> parts) {
  std::vector<uint8_t> out;
  for (const auto& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

TEST(RtcpTest, CountsPliAndFirForUs) {
  RtcpSummary summary = ParseRtcp(Pli(kOurs), kOurs);
  EXPECT_EQ(summary.pli, 1u);
  EXPECT_FALSE(summary.malformed);
  EXPECT_EQ(ParseRtcp(Pli(0), kOurs).pli, 1u);  // a media SSRC not filled in
  EXPECT_EQ(ParseRtcp(Pli(kOurs + 1), kOurs).pli, 0u);
  EXPECT_EQ(ParseRtcp(Fir(kOurs), kOurs).fir, 1u);
  EXPECT_EQ(ParseRtcp(Fir(kOurs + 1), kOurs).fir, 0u);
}

TEST(RtcpTest, ReadsACompoundPacket) {
  const std::vector<uint8_t> compound =
      Join({ReceiverReport(kOurs, 64, 123), {0x81, 202, 0, 1, 0, 0, 0, 0}, Pli(kOurs), Fir(kOurs)});
  const RtcpSummary summary = ParseRtcp(compound, kOurs);
  EXPECT_FALSE(summary.malformed);
  EXPECT_EQ(summary.packets, 4u);
  EXPECT_EQ(summary.pli, 1u);
  EXPECT_EQ(summary.fir, 1u);
  EXPECT_EQ(summary.receiver_reports, 1u);
  ASSERT_TRUE(summary.report.has_value());
  EXPECT_EQ(summary.report->fraction_lost, 64);
  EXPECT_EQ(summary.report->cumulative_lost, -2);
  EXPECT_EQ(summary.report->highest_sequence, 70000u);
  EXPECT_EQ(summary.report->jitter, 123u);
  EXPECT_EQ(summary.report->reporter_ssrc, 0x05060708u);
}

TEST(RtcpTest, ReportsAboutOthersAreIgnored) {
  const RtcpSummary summary = ParseRtcp(ReceiverReport(kOurs + 1, 64, 123), kOurs);
  EXPECT_EQ(summary.receiver_reports, 0u);
  EXPECT_FALSE(summary.report.has_value());
}

TEST(RtcpTest, StopsAtBadLengthsButKeepsWhatCameBefore) {
  // A length word pointing past the datagram.
  std::vector<uint8_t> bad = Join({Pli(kOurs), {0x81, 206, 0, 9, 0, 0, 0, 0}});
  RtcpSummary summary = ParseRtcp(bad, kOurs);
  EXPECT_TRUE(summary.malformed);
  EXPECT_EQ(summary.pli, 1u);
  // A report count larger than the packet.
  std::vector<uint8_t> rr = ReceiverReport(kOurs, 0, 0);
  rr[0] = 0x82;
  EXPECT_TRUE(ParseRtcp(rr, kOurs).malformed);
  EXPECT_FALSE(ParseRtcp(rr, kOurs).report.has_value());
  // A PLI too short for its media SSRC.
  EXPECT_TRUE(ParseRtcp(std::vector<uint8_t>{0x81, 206, 0, 1, 0, 0, 0, 0}, kOurs).malformed);
  // Not version 2; a stray tail shorter than a header.
  std::vector<uint8_t> v1 = Pli(kOurs);
  v1[0] = 0x41;
  EXPECT_TRUE(ParseRtcp(v1, kOurs).malformed);
  EXPECT_EQ(ParseRtcp(v1, kOurs).pli, 0u);
  EXPECT_TRUE(ParseRtcp(Join({Pli(kOurs), {0x81, 206}}), kOurs).malformed);
  // Padding larger than the packet's body.
  std::vector<uint8_t> padded = Pli(kOurs);
  padded[0] |= 0x20;
  padded.back() = 200;
  EXPECT_TRUE(ParseRtcp(padded, kOurs).malformed);
  EXPECT_EQ(ParseRtcp({}, kOurs).packets, 0u);
}

TEST(RtcpTest, PaddingIsTakenOff) {
  // A PLI with 4 bytes of padding: its FCI would be the padding otherwise.
  std::vector<uint8_t> padded = Pli(kOurs);
  padded[0] |= 0x20;
  padded[3] = 3;
  padded.insert(padded.end(), {0, 0, 0, 4});
  const RtcpSummary summary = ParseRtcp(padded, kOurs);
  EXPECT_FALSE(summary.malformed);
  EXPECT_EQ(summary.pli, 1u);
}

TEST(RtcpTest, SenderReportCarriesNtpAndRtpTimeAndParses) {
  SenderInfo info;
  info.ssrc = kOurs;
  info.ntp = NtpFromUnixMicros(1'500'000);  // 1970-01-01 00:00:01.5
  info.rtp_timestamp = 90000;
  info.packets = 10;
  info.octets = 12000;
  const std::vector<uint8_t> report = BuildSenderReport(info, "freshframe");
  ASSERT_GE(report.size(), 28u);
  EXPECT_EQ(report[1], 200);
  EXPECT_EQ(report.size() % 4, 0u);
  EXPECT_EQ(info.ntp >> 32, 2'208'988'801u);
  EXPECT_EQ(static_cast<uint32_t>(info.ntp), 0x80000000u);  // half a second
  const RtcpSummary summary = ParseRtcp(report, kOurs);
  EXPECT_FALSE(summary.malformed);
  EXPECT_EQ(summary.packets, 2u);  // SR + SDES
  EXPECT_EQ(report[8], 0x83);      // NTP seconds, high byte (2208988801 = 0x83AA7E81)
}

}  // namespace
}  // namespace freshframe::rtp
