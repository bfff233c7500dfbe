// Internal to src/bus: how a reader takes the frame `newest` names out of a
// mapped bus, apart from waiting for it (bus_reader.cpp). The shared memory
// may hold anything (a writer of another user, a crashed or buggy one), so
// everything here reads only inside the geometry the Mapping validated and
// uses each shared field once, from a private copy: whatever the bytes, it
// never reads outside the mapping. fuzz/bus_header_fuzzer.cpp runs these
// functions on crafted objects.
//
// Thread-safety: as BusReader (one thread per reader); the mapping may be
// written by other processes meanwhile.
#pragma once

#include <cstdint>
#include <string>

#include "bus/bus.h"
#include "bus/shm_object.h"
#include "core/frame.h"

namespace freshframe::bus {

enum class SlotCheck {
  kOk,
  kChanged,  // the writer reused the slot meanwhile: take the newest again
  kCorrupt,  // the slot cannot hold that frame (why says what): never retried
};

struct SlotOutcome {
  SlotCheck check = SlotCheck::kOk;
  std::string why;  // for kCorrupt
};

// Copies frame `newest` ((publish_index << 8) | slot) out of `map` into
// `frame` (pixels in a new cv::Mat) and `info`: the seqlock read of
// docs/bus-protocol.md section 8.
SlotOutcome CopyFrame(const Mapping& map, uint64_t newest, Frame& frame, BusFrame& info);

// For a view: checks, after the caller pinned the slot (seq_cst), that it
// still holds frame `newest` and that its header describes pixels inside the
// slot; fills `info` and wraps the pixels in `image` (no copy). The header
// is read once, so a writer that changes it afterwards cannot widen `image`.
SlotOutcome CheckPinned(const Mapping& map, uint64_t newest, BusFrame& info, cv::Mat& image);

}  // namespace freshframe::bus
