// Annex B helpers for the FLV sequence header (internal to src/rtmp).
//
// Thread-safety: pure functions.
#pragma once

#include <span>
#include <vector>

namespace freshframe::rtmp {

// The SPS and PPS NAL units of an access unit (Annex B, as the encoder puts
// them before every IDR), each behind a 4-byte start code, in their order;
// empty unless the access unit holds at least one SPS and one PPS.
std::vector<unsigned char> ParameterSets(std::span<const unsigned char> access_unit);

}  // namespace freshframe::rtmp
