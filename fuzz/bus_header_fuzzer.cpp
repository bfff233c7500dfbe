// libFuzzer target: a bus reader on a crafted shared-memory object.
//
// The input is the whole object, as another process (another user, a
// crashed or hostile writer) could have left it in /dev/shm. It runs
// through what a reader does with a mapped object (src/bus/shm_object.h,
// src/bus/slot_read.h):
// - ValidateImage, the open-time check of the header, which yields the
//   geometry the reader keeps;
// - when that accepts it, CopyFrame (ReadCopy's seqlock copy) and
//   CheckPinned (ReadView's check after pinning) on the frame `newest`
//   names and on every slot's own frame, through a Mapping with that
//   geometry.
// Each input is read twice: from an exact-size heap copy (ASan reports a
// read even one byte past the object) and from a memfd mapped PROT_READ
// (a write anywhere faults: reading a bus must never write these paths).
//
// Beyond "no sanitizer report", it checks:
// - an accepted geometry fits the object and follows from slot_count and
//   slot_capacity exactly (no wrapped arithmetic), and GeometryFor of any
//   two numbers either fails or gives such a geometry;
// - a copied frame has the size its metadata says, within the slot's
//   capacity, and its pixels are the object's bytes at the slot;
// - a view's pixels lie inside the slot, inside the object.
//
// Build and run: fuzz/README.md.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "bus/bus_layout.h"
#include "bus/shm_object.h"
#include "bus/slot_read.h"

namespace {

namespace fb = freshframe::bus;
namespace layout = freshframe::bus::layout;

constexpr uint32_t kMaxSlotsTried = 8;  // per input, keeps runs fast

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "bus_header_fuzzer: check failed: %s\n", what);
  std::abort();
}

void Check(bool ok, const char* what) {
  if (!ok) Fail(what);
}

void CheckGeometry(const layout::Geometry& g, size_t object_size) {
  const auto slots = static_cast<unsigned __int128>(g.slot_stride) * g.slot_count;
  Check(g.slots_offset + slots == g.total_bytes, "total_bytes = slots_offset + stride * count");
  Check(g.total_bytes <= object_size, "the geometry fits the object");
  Check(
      g.slot_stride >= static_cast<unsigned __int128>(g.slot_capacity) + sizeof(layout::SlotHeader),
      "a slot holds its header and capacity");
  Check(g.slot_stride % layout::kPage == 0 && g.slots_offset >= sizeof(layout::Header),
        "aligned slots after the header");
  Check(g.slot_count >= 2 && g.slot_count <= 255, "slot_count 2..255");
}

// Reads frame `newest` both ways; `base`/`size` is the object.
void ReadFrame(const fb::Mapping& map, uint64_t newest, const unsigned char* base, size_t size) {
  const layout::Geometry& g = map.geometry();
  freshframe::Frame frame;
  fb::BusFrame info;
  const fb::SlotOutcome copied = fb::CopyFrame(map, newest, frame, info);
  const uint32_t slot = layout::SlotOf(newest);
  if (copied.check == fb::SlotCheck::kOk) {
    Check(slot < g.slot_count, "a copied frame's slot is in the table");
    const size_t bytes = frame.image.total() * frame.image.elemSize();
    Check(frame.image.cols == info.meta.width && frame.image.rows == info.meta.height,
          "the copy has the size its metadata says");
    Check(bytes <= g.slot_capacity, "the copy fits the slot");
    const unsigned char* pixels = map.pixels(slot);
    Check(pixels >= base && pixels + bytes <= base + size, "copied pixels are in the object");
    Check(std::memcmp(frame.image.data, pixels, bytes) == 0, "the copy is the slot's bytes");
  } else if (copied.check == fb::SlotCheck::kCorrupt) {
    Check(!copied.why.empty(), "a corrupt slot says why");
  }
  cv::Mat view;
  fb::BusFrame view_info;
  const fb::SlotOutcome pinned = fb::CheckPinned(map, newest, view_info, view);
  if (pinned.check == fb::SlotCheck::kOk) {
    const size_t bytes = view.total() * view.elemSize();
    const unsigned char* slot_start = map.pixels(slot);
    Check(view.data == slot_start && bytes <= g.slot_capacity, "a view stays in its slot");
    Check(view.data >= base && view.data + bytes <= base + size, "a view is in the object");
    unsigned sum = 0;  // touch every byte: ASan checks the range really is ours
    for (size_t i = 0; i < bytes; ++i) sum += view.data[i];
    (void)sum;
  }
}

void ReadObject(unsigned char* base, size_t size) {
  auto geometry = fb::ValidateImage(base, size, "freshframe.fuzz");
  if (!geometry) {
    Check(!geometry.error().message.empty(), "a refusal says why");
    return;
  }
  CheckGeometry(*geometry, size);
  const fb::Mapping map(base, size, 0, 0600, *geometry, /*owns_memory=*/false);
  ReadFrame(map, map.header().newest.load(std::memory_order_acquire), base, size);
  // Every slot's own frame too, whatever `newest` says.
  const uint32_t slots = std::min(geometry->slot_count, kMaxSlotsTried);
  for (uint32_t i = 0; i < slots; ++i) {
    const uint64_t seq = map.slot(i).seq.load(std::memory_order_acquire);
    ReadFrame(map, layout::Pack(seq / 2, i), base, size);
  }
}

// One memfd for the whole run, refilled per input.
int ReadOnlyObjectFd() {
  static const int fd = memfd_create("bus_header_fuzzer", MFD_CLOEXEC);
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // GeometryFor on two numbers from the input, whatever they are.
  if (size >= 12) {
    uint32_t count = 0;
    uint64_t capacity = 0;
    std::memcpy(&count, data, sizeof count);
    std::memcpy(&capacity, data + 4, sizeof capacity);
    if (auto g = fb::GeometryFor(count % 256, capacity); g && g->slot_count >= 2) {
      CheckGeometry(*g, static_cast<size_t>(g->total_bytes));
    }
  }
  if (size == 0) return 0;

  // An exact-size heap copy, aligned as a mapping is (the header's atomics
  // need it): ASan sees any read past the end.
  auto* copy = static_cast<unsigned char*>(::operator new (size, std::align_val_t{64}));
  std::memcpy(copy, data, size);
  ReadObject(copy, size);
  ::operator delete (copy, std::align_val_t{64});

  // The same bytes as a read-only shared mapping, as a reader without write
  // access would have it: any write faults.
  const int fd = ReadOnlyObjectFd();
  if (fd < 0 || ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) {
    return 0;
  }
  void* mapped = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  if (mapped == MAP_FAILED) return 0;
  ReadObject(static_cast<unsigned char*>(mapped), size);
  munmap(mapped, size);
  return 0;
}
