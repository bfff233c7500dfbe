// What a WHEP player's SDP offer asks for, read without GStreamer: is it SDP
// at all, does it receive video, and which of its H.264 payload types the
// answer should use. A pure function of the text, so it is fuzzed
// (fuzz/sdp_offer_fuzzer.cpp) and tested alone; webrtcbin parses the offer
// again for the real negotiation.
//
// Thread-safety: pure functions on values.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/expected.h"

namespace freshframe::webrtc {

// The H.264 format the answer uses: one the offer listed on its video m-line.
struct H264Choice {
  int payload_type = 0;          // 0..127, from the m-line's format list
  int packetization_mode = 0;    // 1 (FU-A, what the payloader sends) or 0
  std::string profile_level_id;  // as offered (lower case), empty if absent
  size_t video_index = 0;        // the m-line's index among all m-lines
  std::string mid;               // its a=mid, empty if absent
  // The id the offer gave kPlayoutDelayUri on the video section (a=extmap),
  // 1..14 (the one-byte header form); 0 if it did not offer it (or gave an
  // id only the two-byte form can carry).
  int playout_delay_id = 0;
};

// The RTP header extension by which a sender asks Chrome to render each
// frame at once (min = max = 0) rather than after its jitter buffer's delay.
inline constexpr std::string_view kPlayoutDelayUri =
    "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";

// Why an offer cannot be answered: the HTTP status and a one-line reason.
struct OfferError {
  unsigned status = 400;
  std::string message;
};

// The longest offer read (a browser's is 3-6 kB); longer ones are refused.
inline constexpr size_t kMaxOfferBytes = 64 * 1024;

// Reads `sdp`:
// - not SDP (no "v=0" first, a line that is not "x=value", too long, a NUL)
//   → 400 "offer is not SDP";
// - no video m-line with a port (a port of 0 is a rejected section) → 400
//   "offer has no video"; the first such m-line is the one used;
// - its direction is sendonly or inactive → 400 "offer does not receive
//   video";
// - no H.264 among its formats → 406 "offer has no H.264 (packetization-mode
//   1)".
// Otherwise the H.264 format to answer with, preferring packetization-mode 1,
// then profile-level-id 42e01f, 42001f or 4d001f (browsers decode our Main
// profile stream whatever the id says), then the offer's order; and the
// id of the offer's playout-delay extension, if any.
Expected<H264Choice, OfferError> InspectOffer(std::string_view sdp);

// `sdp` (an answer) without its a=candidate lines whose connection address
// is not `address` (WhepOptions::bind_address); empty `address`: as is.
std::string KeepCandidatesOn(std::string_view sdp, std::string_view address);

}  // namespace freshframe::webrtc
