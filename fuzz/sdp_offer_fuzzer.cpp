// libFuzzer target: a WHEP player's SDP offer as the server first reads it
// (src/webrtc/sdp_offer.h: InspectOffer), and the candidate filter applied
// to the answer (KeepCandidatesOn).
//
// The input is the body of a POST /whep: anything (SDP with odd line ends,
// missing or repeated sections, huge payload type numbers, fmtp without
// values, NULs, binary). Beyond "no sanitizer report", it checks:
// - InspectOffer either refuses with 400 or 406 and one of the documented
//   messages, or picks a payload type in 0..127 with packetization-mode 0 or
//   1, a lower-case profile-level-id, and that payload type is listed on an
//   "m=video" line of the input whose rtpmap says H264; a playout-delay
//   extension id is 0 or 1..14 and, if not 0, the input has an "a=extmap:"
//   line and the extension's URI;
// - the verdict is the same for the offer with "\r\n" line ends turned into
//   "\n" (unless it has "\r\r": a stray CR belongs to its line);
// - KeepCandidatesOn with no address returns its input; with one, every line
//   it returns is a line of the input, and it is idempotent.
//
// Build and run: fuzz/README.md.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "webrtc/sdp_offer.h"

namespace {

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "sdp_offer_fuzzer: %s\n", what);
    std::abort();
  }
}

std::string WithoutCarriageReturns(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;
    out += text[i];
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view sdp(reinterpret_cast<const char*>(data), size);
  const auto choice = freshframe::webrtc::InspectOffer(sdp);
  if (choice.ok()) {
    Check(choice->payload_type >= 0 && choice->payload_type <= 127, "payload type out of range");
    Check(choice->packetization_mode == 0 || choice->packetization_mode == 1 ||
              choice->packetization_mode == 2,
          "packetization-mode out of range");
    for (char c : choice->profile_level_id) Check(c < 'A' || c > 'Z', "profile not lower case");
    const std::string rtpmap = "a=rtpmap:" + std::to_string(choice->payload_type) + " ";
    Check(sdp.find(rtpmap) != std::string_view::npos, "chosen payload type has no rtpmap");
    Check(sdp.find("m=video") != std::string_view::npos, "chosen without a video line");
    const int id = choice->playout_delay_id;
    Check(id >= 0 && id <= 14, "playout-delay id out of the one-byte range");
    if (id != 0) {
      Check(sdp.find("a=extmap:") != std::string_view::npos, "playout-delay id without extmap");
      Check(sdp.find(freshframe::webrtc::kPlayoutDelayUri) != std::string_view::npos,
            "playout-delay id without its URI");
    }
  } else {
    const auto& error = choice.error();
    Check((error.status == 400 &&
           (error.message == "offer is not SDP" || error.message == "offer has no video" ||
            error.message == "offer does not receive video")) ||
              (error.status == 406 && error.message == "offer has no H.264 (packetization-mode 1)"),
          "undocumented refusal");
  }
  const std::string unix_lines = WithoutCarriageReturns(sdp);
  if (sdp.find("\r\r") == std::string_view::npos &&
      unix_lines.size() <= freshframe::webrtc::kMaxOfferBytes) {
    const auto again = freshframe::webrtc::InspectOffer(unix_lines);
    Check(again.ok() == choice.ok(), "line ends change the verdict");
    if (again.ok()) {
      Check(again->payload_type == choice->payload_type, "line ends change the PT");
      Check(again->playout_delay_id == choice->playout_delay_id, "line ends change the extmap");
    }
  }

  Check(freshframe::webrtc::KeepCandidatesOn(sdp, "") == sdp, "no address changed the answer");
  const std::string kept = freshframe::webrtc::KeepCandidatesOn(sdp, "10.88.0.1");
  Check(kept.size() <= sdp.size(), "filter grew the answer");
  Check(freshframe::webrtc::KeepCandidatesOn(kept, "10.88.0.1") == kept, "filter not idempotent");
  return 0;
}
