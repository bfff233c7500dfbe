// Internal to src/bus: the binary layout of a bus in shared memory, exactly
// as documented in docs/bus-protocol.md. Plain data only: fixed-size fields,
// lock-free atomics, no pointers, nothing with heap storage, so any process
// (and any language) that maps the object sees the same bytes.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "bus/bus.h"

namespace freshframe::bus::layout {

inline constexpr uint64_t kMagic = 0x3153554246524646ULL;  // "FFRFBUS1" little-endian
inline constexpr uint32_t kVersion = 1;
inline constexpr uint32_t kStateActive = 1;
inline constexpr uint32_t kStateReplaced = 2;  // a newer object now has this name
inline constexpr size_t kPage = 4096;

struct alignas(64) ReaderEntry {
  std::atomic<int32_t> pid;     // 0: free
  std::atomic<int32_t> pinned;  // slot held by the reader's view, -1: none
  uint8_t reserved[56];
};

struct alignas(64) Header {
  uint64_t magic;
  uint32_t version;
  uint32_t header_bytes;       // sizeof(Header)
  uint32_t slot_count;         // 1..255
  uint32_t slot_header_bytes;  // sizeof(SlotHeader)
  uint64_t slot_capacity;      // pixel bytes per slot
  uint64_t slot_stride;        // bytes from one slot to the next
  uint64_t slots_offset;       // offset of slot 0 from the start
  uint64_t total_bytes;        // size of the object
  std::atomic<uint32_t> state;
  std::atomic<int32_t> writer_pid;  // 0: no writer
  std::atomic<uint64_t> writer_epoch;
  // (publish_index << 8) | slot of the newest complete frame; 0: none yet.
  std::atomic<uint64_t> newest;
  // Futex word: incremented on every publish and state change.
  alignas(64) std::atomic<uint32_t> futex;
  alignas(64) ReaderEntry readers[kMaxReaders];
};

struct alignas(64) SlotHeader {
  // 2 * publish_index once complete; odd while being written or claimed.
  std::atomic<uint64_t> seq;
  uint64_t publish_index;
  uint64_t writer_epoch;
  uint64_t sequence;
  uint32_t source_id;
  int32_t width;
  int32_t height;
  uint32_t format;  // PixelFormat
  uint32_t channels;
  uint32_t row_bytes;
  uint64_t pixel_bytes;
  uint64_t detections_sequence;
  int64_t capture_us;
  int64_t grab_us;
  int64_t infer_start_us;
  int64_t infer_end_us;
  int64_t publish_us;
  int64_t encode_us;
  uint64_t checksum;
};

static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<uint32_t>::is_always_lock_free);
static_assert(std::atomic<int32_t>::is_always_lock_free);
static_assert(std::is_standard_layout_v<Header>);
static_assert(std::is_standard_layout_v<SlotHeader>);
static_assert(sizeof(std::atomic<uint64_t>) == 8 && sizeof(std::atomic<uint32_t>) == 4);
// Offsets the protocol document and the Python example rely on.
static_assert(offsetof(Header, slot_count) == 16);
static_assert(offsetof(Header, state) == 56);
static_assert(offsetof(Header, writer_epoch) == 64);
static_assert(offsetof(Header, newest) == 72);
static_assert(offsetof(Header, futex) == 128);
static_assert(offsetof(Header, readers) == 192);
static_assert(sizeof(SlotHeader) == 128);
static_assert(offsetof(SlotHeader, width) == 36);
static_assert(offsetof(SlotHeader, capture_us) == 72);
static_assert(offsetof(SlotHeader, checksum) == 120);

// Where the slots of one object are. Validated once, when the object is
// mapped, and then kept in the process: the header's copies of these fields
// are shared memory that any process with write access may change, so they
// are never read again after validation.
struct Geometry {
  uint32_t slot_count = 0;
  uint64_t slot_capacity = 0;  // pixel bytes per slot
  uint64_t slot_stride = 0;
  uint64_t slots_offset = 0;
  uint64_t total_bytes = 0;
};

inline constexpr uint64_t Pack(uint64_t publish_index, uint32_t slot) {
  return (publish_index << 8) | slot;
}
inline constexpr uint64_t IndexOf(uint64_t packed) { return packed >> 8; }
inline constexpr uint32_t SlotOf(uint64_t packed) { return static_cast<uint32_t>(packed & 0xFF); }

}  // namespace freshframe::bus::layout
