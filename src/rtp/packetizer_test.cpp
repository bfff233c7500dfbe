#include "rtp/packetizer.h"

#include <gtest/gtest.h>

#include "rtp/testing.h"

namespace freshframe::rtp {
namespace {

using testing::Depacketizer;
using testing::MakeAccessUnit;
using testing::ReadRtp;
using testing::RtpPacket;

std::vector<RtpPacket> PacketsOf(Packetizer& packetizer, const std::vector<uint8_t>& unit,
                                 uint32_t timestamp, size_t mtu) {
  std::vector<RtpPacket> packets;
  packetizer.Packetize(unit, timestamp, [&](std::span<const uint8_t> bytes) {
    EXPECT_LE(bytes.size(), mtu);
    std::optional<RtpPacket> packet = ReadRtp(bytes);
    EXPECT_TRUE(packet.has_value());
    if (packet) packets.push_back(*packet);
    return true;
  });
  return packets;
}

TEST(SplitAnnexBTest, FindsUnitsBetweenThreeAndFourByteStartCodes) {
  const std::vector<uint8_t> bytes = {0, 0,    0, 1, 0x67, 1, 2, 0, 0,
                                      1, 0x68, 3, 0, 0,    0, 0, 1, 0x65};
  const auto units = SplitAnnexB(bytes);
  ASSERT_EQ(units.size(), 3u);
  EXPECT_EQ(std::vector<uint8_t>(units[0].begin(), units[0].end()),
            (std::vector<uint8_t>{0x67, 1, 2}));
  // The zero byte before a 4-byte start code is not part of the unit.
  EXPECT_EQ(std::vector<uint8_t>(units[1].begin(), units[1].end()),
            (std::vector<uint8_t>{0x68, 3}));
  EXPECT_EQ(units[2].size(), 1u);
  EXPECT_TRUE(SplitAnnexB({}).empty());
}

TEST(PacketizerTest, RoundTripsAnIdrThroughFuAWithinTheMtu) {
  constexpr size_t kMtu = 500;
  Packetizer packetizer(0x11223344, 65530, 96, kMtu);
  Depacketizer depacketizer;
  const std::vector<uint8_t> idr = MakeAccessUnit(true, 5000, 3);
  const std::vector<RtpPacket> packets = PacketsOf(packetizer, idr, 1234, kMtu);
  // SPS and PPS alone, then the 5000-byte slice in ceil(4999 / 486) FU-As.
  ASSERT_EQ(packets.size(), 2u + 11u);
  EXPECT_EQ(packets[0].payload[0] & 0x1f, 7);
  EXPECT_EQ(packets[1].payload[0] & 0x1f, 8);
  EXPECT_EQ(packets[2].payload[0] & 0x1f, 28);
  EXPECT_EQ(packets[2].payload[1], 0x80 | 5);      // start, type IDR
  EXPECT_EQ(packets.back().payload[1], 0x40 | 5);  // end
  EXPECT_EQ(packets[2].payload[0] & 0x60, 0x60);   // NRI of the IDR kept
  std::optional<std::vector<uint8_t>> rebuilt;
  for (size_t i = 0; i < packets.size(); ++i) {
    EXPECT_EQ(packets[i].marker, i + 1 == packets.size());
    EXPECT_EQ(packets[i].timestamp, 1234u);
    EXPECT_EQ(packets[i].ssrc, 0x11223344u);
    EXPECT_EQ(packets[i].payload_type, 96);
    // Consecutive across the 16-bit wrap.
    EXPECT_EQ(packets[i].sequence, static_cast<uint16_t>(65530 + i));
    rebuilt = depacketizer.Add(packets[i]);
    EXPECT_EQ(rebuilt.has_value(), i + 1 == packets.size());
  }
  ASSERT_TRUE(rebuilt.has_value());
  EXPECT_EQ(*rebuilt, idr);

  const std::vector<uint8_t> p_frame = MakeAccessUnit(false, 300, 4);
  const std::vector<RtpPacket> next = PacketsOf(packetizer, p_frame, 4234, kMtu);
  ASSERT_EQ(next.size(), 1u);  // fits: a single NAL unit packet
  EXPECT_TRUE(next[0].marker);
  EXPECT_EQ(next[0].sequence, static_cast<uint16_t>(65530 + packets.size()));
  EXPECT_EQ(depacketizer.Add(next[0]), p_frame);
}

TEST(PacketizerTest, AUnitOfExactlyTheRoomIsOnePacket) {
  constexpr size_t kMtu = 100;
  Packetizer packetizer(1, 0, 96, kMtu);
  EXPECT_EQ(PacketsOf(packetizer, MakeAccessUnit(false, kMtu - kRtpHeaderSize, 1), 0, kMtu).size(),
            1u);
  EXPECT_EQ(
      PacketsOf(packetizer, MakeAccessUnit(false, kMtu - kRtpHeaderSize + 1, 1), 0, kMtu).size(),
      2u);
}

TEST(PacketizerTest, AGivenUpUnitUsesNoSequenceNumbers) {
  Packetizer packetizer(1, 100, 96, 200);
  int calls = 0;
  const size_t sent =
      packetizer.Packetize(MakeAccessUnit(true, 2000, 1), 0, [&](auto) { return ++calls < 3; });
  EXPECT_EQ(sent, 2u);
  EXPECT_EQ(packetizer.next_sequence(), 102);  // the receiver sees no hole
}

}  // namespace
}  // namespace freshframe::rtp
