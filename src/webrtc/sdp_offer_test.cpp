#include "webrtc/sdp_offer.h"

#include <gtest/gtest.h>

#include <string>

namespace freshframe::webrtc {
namespace {

// A Chromium recvonly offer, cut to what InspectOffer reads (plus enough to
// look real).
std::string ChromiumOffer() {
  return "v=0\r\n"
         "o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n"
         "s=-\r\n"
         "t=0 0\r\n"
         "a=group:BUNDLE 0\r\n"
         "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 106 107 127\r\n"
         "c=IN IP4 0.0.0.0\r\n"
         "a=mid:0\r\n"
         "a=recvonly\r\n"
         "a=rtpmap:96 VP8/90000\r\n"
         "a=rtpmap:97 rtx/90000\r\n"
         "a=fmtp:97 apt=96\r\n"
         "a=rtpmap:102 H264/90000\r\n"
         "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n"
         "a=rtpmap:103 rtx/90000\r\n"
         "a=rtpmap:106 H264/90000\r\n"
         "a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f\r\n"
         "a=rtpmap:107 H264/90000\r\n"
         "a=fmtp:107 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640032\r\n"
         "a=rtpmap:127 H264/90000\r\n"
         "a=fmtp:127 packetization-mode=1;profile-level-id=42e01f\r\n";
}

TEST(SdpOfferTest, PicksModeOneWithAPreferredProfileInOfferOrder) {
  const auto choice = InspectOffer(ChromiumOffer());
  ASSERT_TRUE(choice.ok()) << choice.error().message;
  EXPECT_EQ(choice->payload_type, 102);
  EXPECT_EQ(choice->packetization_mode, 1);
  EXPECT_EQ(choice->profile_level_id, "42001f");
  EXPECT_EQ(choice->video_index, 0U);
  EXPECT_EQ(choice->mid, "0");
}

TEST(SdpOfferTest, FindsThePlayoutDelayExtensionOfTheVideoSection) {
  // Chromium lists it among its other extensions.
  const auto chromium =
      InspectOffer(ChromiumOffer() +
                   "a=extmap:3 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n"
                   "a=extmap:6 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay\r\n"
                   "a=extmap:9 urn:ietf:params:rtp-hdrext:sdes:mid\r\n");
  ASSERT_TRUE(chromium.ok()) << chromium.error().message;
  EXPECT_EQ(chromium->playout_delay_id, 6);
  EXPECT_EQ(InspectOffer(ChromiumOffer())->playout_delay_id, 0);

  const std::string video = "m=video 9 RTP/AVP 96\na=rtpmap:96 H264/90000\n";
  const std::string uri(kPlayoutDelayUri);
  struct Case {
    std::string sdp;
    int id;
  };
  const Case cases[] = {
      {"v=0\n" + video + "a=extmap:14/recvonly " + uri + "\n", 14},  // with a direction
      {"v=0\n" + video + "a=extmap:1 " + uri + " extra\n", 1},
      // Ids beyond 14 need the two-byte header form; 0 and 15 are reserved.
      {"v=0\n" + video + "a=extmap:15 " + uri + "\n", 0},
      {"v=0\n" + video + "a=extmap:200 " + uri + "\n", 0},
      {"v=0\n" + video + "a=extmap:0 " + uri + "\n", 0},
      {"v=0\n" + video + "a=extmap:x " + uri + "\n", 0},
      {"v=0\n" + video + "a=extmap:4 " + uri + "-not\n", 0},
      // Another section's extension is not the video's.
      {"v=0\nm=audio 9 RTP/AVP 111\na=extmap:4 " + uri + "\n" + video, 0},
  };
  for (const Case& c : cases) {
    const auto choice = InspectOffer(c.sdp);
    ASSERT_TRUE(choice.ok()) << c.sdp;
    EXPECT_EQ(choice->playout_delay_id, c.id) << c.sdp;
  }
}

TEST(SdpOfferTest, ModeOneBeatsAPreferredProfileInModeZero) {
  const auto choice = InspectOffer(
      "v=0\nm=video 9 UDP/TLS/RTP/SAVPF 106 107\na=rtpmap:106 h264/90000\n"
      "a=fmtp:106 packetization-mode=0;profile-level-id=42E01F\n"
      "a=rtpmap:107 H264/90000\na=fmtp:107 packetization-mode=1;profile-level-id=640032\n");
  ASSERT_TRUE(choice.ok()) << choice.error().message;
  EXPECT_EQ(choice->payload_type, 107);
  EXPECT_EQ(choice->profile_level_id, "640032");
}

TEST(SdpOfferTest, ModeZeroOnlyIsAccepted) {
  const auto choice = InspectOffer("v=0\r\nm=video 9 RTP/AVP 99\r\na=rtpmap:99 H264/90000\r\n");
  ASSERT_TRUE(choice.ok()) << choice.error().message;
  EXPECT_EQ(choice->payload_type, 99);
  EXPECT_EQ(choice->packetization_mode, 0);
  EXPECT_EQ(choice->profile_level_id, "");
}

TEST(SdpOfferTest, UsesTheFirstVideoSectionAfterAudioAndSkipsRejectedOnes) {
  const auto choice = InspectOffer(
      "v=0\nm=audio 9 RTP/AVP 111\na=rtpmap:111 opus/48000/2\na=rtpmap:96 H264/90000\n"
      "m=video 0 RTP/AVP 100\na=rtpmap:100 H264/90000\n"
      "m=video 9 RTP/AVP 101\na=mid:v\na=rtpmap:101 H264/90000\n"
      "a=fmtp:101 packetization-mode=1\n");
  ASSERT_TRUE(choice.ok()) << choice.error().message;
  EXPECT_EQ(choice->payload_type, 101);
  EXPECT_EQ(choice->video_index, 2U);
  EXPECT_EQ(choice->mid, "v");
}

TEST(SdpOfferTest, RtpmapOfAFormatNotOnTheMediaLineDoesNotCount) {
  const auto choice =
      InspectOffer("v=0\nm=video 9 RTP/AVP 96\na=rtpmap:96 VP8/90000\na=rtpmap:98 H264/90000\n");
  ASSERT_FALSE(choice.ok());
  EXPECT_EQ(choice.error().status, 406U);
}

// Found by fuzz.sdp_offer: an rtpmap of "0102" described payload type 102.
TEST(SdpOfferTest, NumbersWithLeadingZerosAreNotTheSameNumber) {
  auto choice = InspectOffer(
      "v=0\nm=video 9 RTP/AVP 102\na=rtpmap:0102 H264/90000\n"
      "a=fmtp:102 packetization-mode=1;profile-level-id=42e01f\n");
  ASSERT_FALSE(choice.ok());
  EXPECT_EQ(choice.error().status, 406U);
  choice = InspectOffer(
      "v=0\nm=video 9 RTP/AVP 0102 102\na=rtpmap:102 H264/90000\n"
      "a=fmtp:102 packetization-mode=01;profile-level-id=42e01f\n");
  ASSERT_TRUE(choice.ok()) << choice.error().message;
  EXPECT_EQ(choice->payload_type, 102);
  EXPECT_EQ(choice->packetization_mode, 0);  // "01" is not a mode: the default
}

// Found by fuzz.sdp_offer: "a=rtpmap:<tabs>102 H264/90000" described 102.
TEST(SdpOfferTest, AttributeNumbersFollowTheColon) {
  for (const char* space : {" ", "\t", "\t\t "}) {
    const auto choice = InspectOffer(std::string("v=0\nm=video 9 RTP/AVP 102\na=rtpmap:") + space +
                                     "102 H264/90000\na=fmtp:102 packetization-mode=1\n");
    ASSERT_FALSE(choice.ok()) << "space " << static_cast<int>(space[0]);
    EXPECT_EQ(choice.error().status, 406U);
  }
  const auto choice = InspectOffer(
      "v=0\nm=video 9 RTP/AVP 102\na=rtpmap:102 H264/90000\n"
      "a=fmtp: 102 packetization-mode=0\na=fmtp:102 packetization-mode=1\n"
      "a=extmap: 3 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay\n");
  ASSERT_TRUE(choice.ok()) << choice.error().message;
  EXPECT_EQ(choice->packetization_mode, 1);
  EXPECT_EQ(choice->playout_delay_id, 0);
}

TEST(SdpOfferTest, ErrorsSayWhatIsMissing) {
  struct Case {
    std::string sdp;
    unsigned status;
    std::string message;
  };
  const Case cases[] = {
      {"", 400, "offer is not SDP"},
      {"\r\n\r\n", 400, "offer is not SDP"},
      {"hello", 400, "offer is not SDP"},
      {"{\"sdp\": \"v=0\"}", 400, "offer is not SDP"},
      {"s=-\r\nv=0\r\n", 400, "offer is not SDP"},
      {"v=0\r\nm=video 9 RTP/AVP 96\r\nthis is not a line\r\n", 400, "offer is not SDP"},
      // No whitespace after '=' (RFC 4566 §5): once read as a video line
      // (found by fuzz.sdp_offer, corpus whitespace_after_equals).
      {"v=0\r\nm=\t video 9 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n", 400, "offer is not SDP"},
      {"v=0\r\nm=video 9 RTP/AVP 96\r\na= rtpmap:96 H264/90000\r\n", 400, "offer is not SDP"},
      {std::string("v=0\r\na=x\0y\r\n", 12), 400, "offer is not SDP"},
      {"v=0\r\n" + std::string(kMaxOfferBytes, 'a'), 400, "offer is not SDP"},
      {"v=0\r\nm=audio 9 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n", 400, "offer has no video"},
      {"v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n", 400, "offer has no video"},
      {"v=0\r\nm=video 9 RTP/AVP 96\r\na=sendonly\r\na=rtpmap:96 H264/90000\r\n", 400,
       "offer does not receive video"},
      {"v=0\r\nm=video 9 RTP/AVP 96 97\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 VP9/90000\r\n", 406,
       "offer has no H.264 (packetization-mode 1)"},
  };
  for (const Case& c : cases) {
    const auto choice = InspectOffer(c.sdp);
    ASSERT_FALSE(choice.ok()) << c.sdp.substr(0, 80);
    EXPECT_EQ(choice.error().status, c.status) << c.sdp.substr(0, 80);
    EXPECT_EQ(choice.error().message, c.message) << c.sdp.substr(0, 80);
  }
}

TEST(SdpOfferTest, KeepCandidatesOnKeepsOnlyTheBoundAddress) {
  const std::string answer =
      "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\n"
      "a=candidate:1 1 UDP 2015363327 192.0.2.2 40000 typ host\r\n"
      "a=candidate:2 1 UDP 2015363327 10.88.0.1 40001 typ host\r\n"
      "a=candidate:3 1 TCP 1015021823 10.88.0.1 9 typ host tcptype active\r\n"
      "a=end-of-candidates\r\n";
  EXPECT_EQ(KeepCandidatesOn(answer, ""), answer);
  EXPECT_EQ(KeepCandidatesOn(answer, "10.88.0.1"),
            "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\n"
            "a=candidate:2 1 UDP 2015363327 10.88.0.1 40001 typ host\r\n"
            "a=candidate:3 1 TCP 1015021823 10.88.0.1 9 typ host tcptype active\r\n"
            "a=end-of-candidates\r\n");
  EXPECT_EQ(KeepCandidatesOn("a=candidate:1 1 UDP 1 10.88.0.10 1 typ host", "10.88.0.1"), "");
}

}  // namespace
}  // namespace freshframe::webrtc
