// Internal to src/bus: opening, initialising and mapping the shared-memory
// object of a bus, and the futex calls on its header.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "bus/bus.h"
#include "bus/bus_layout.h"
#include "core/expected.h"

namespace freshframe::bus {

// One mapping of a bus object, with the geometry validated when it was
// mapped (slot() and pixels() use that copy, never the header's fields).
// Unmaps on destruction unless it was made over memory it does not own.
class Mapping {
 public:
  Mapping(void* base, size_t size, ino_t inode, mode_t mode, const layout::Geometry& geometry,
          bool owns_memory = true)
      : base_(base),
        size_(size),
        inode_(inode),
        mode_(mode),
        geometry_(geometry),
        owns_memory_(owns_memory) {}
  ~Mapping();
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  layout::Header& header() const { return *static_cast<layout::Header*>(base_); }
  const layout::Geometry& geometry() const { return geometry_; }
  // Slot `index` < geometry().slot_count (callers check: `newest` is shared
  // memory too).
  layout::SlotHeader& slot(uint32_t index) const;
  unsigned char* pixels(uint32_t index) const;
  size_t size() const { return size_; }
  ino_t inode() const { return inode_; }  // identifies the object behind a name
  mode_t mode() const { return mode_; }

 private:
  void* base_;
  size_t size_;
  ino_t inode_;
  mode_t mode_;
  layout::Geometry geometry_;
  bool owns_memory_;
};

// The geometry of a bus with `slot_count` slots of `capacity` pixel bytes;
// nullopt when it does not fit in 63 bits (overflow-checked: `capacity` may
// come from a crafted header).
std::optional<layout::Geometry> GeometryFor(uint32_t slot_count, uint64_t capacity);

// Checks the header of a bus object image: `size` bytes at `base`, nothing
// past them is read. Returns the geometry every later access uses; an Error
// naming `shm_name` and what is wrong otherwise. Reads only the fields that
// never change after initialisation (docs/bus-protocol.md section 10).
Expected<layout::Geometry> ValidateImage(const void* base, size_t size,
                                         const std::string& shm_name);

// Whether `shm_name` now names another object than `mapping` (a writer
// replaced it and died before marking the old one replaced) or none.
bool NameMovedOn(const std::string& shm_name, const Mapping& mapping);

// What both ends of a bus hold: its object name, options and mapping.
struct BusHandle {
  std::string shm_name;
  BusOptions options;
  std::shared_ptr<Mapping> map;
};

// Checks `name`, then opens (creating if needed) and maps its bus.
Expected<BusHandle> AttachBus(const std::string& name, const BusOptions& options);

// Opens bus `shm_name`, creating and initialising an empty one (slots with
// no pixel capacity) if it does not exist, and maps it. Refuses an object
// that is not a regular file, is owned by another user (unless `options`
// allow that owner), is world-writable or has special mode bits; validates
// magic, version and geometry.
Expected<std::unique_ptr<Mapping>> OpenOrCreate(const std::string& shm_name,
                                                const BusOptions& options);

// Creates a fresh object with room for `capacity` pixel bytes per slot under
// a temporary name and atomically renames it over `shm_name`. The new header
// starts with `epoch`, no frame, and writer_pid = this process; the caller
// marks the old object replaced.
Expected<std::unique_ptr<Mapping>> Replace(const std::string& shm_name, uint64_t capacity,
                                           uint32_t slot_count, uint64_t epoch, mode_t mode);

// Sleeps until the futex word differs from `seen`, `timeout` passes, or a
// signal arrives. Works across processes (a shared, not private, futex).
void FutexWait(std::atomic<uint32_t>& word, uint32_t seen, std::chrono::nanoseconds timeout);
void FutexWakeAll(std::atomic<uint32_t>& word);

// Whether process `pid` is running: it exists (EPERM counts) and is not a
// zombie (a killed process whose parent has not reaped it yet).
bool ProcessAlive(pid_t pid);

}  // namespace freshframe::bus
