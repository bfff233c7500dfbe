#include "bus/shm_object.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <new>

namespace freshframe::bus {
namespace {

constexpr size_t AlignUp(size_t n, size_t a) { return (n + a - 1) / a * a; }

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// Closes a descriptor on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

void Initialise(void* base, size_t total, uint32_t slot_count, uint64_t capacity, uint64_t stride,
                uint64_t slots_offset) {
  std::memset(base, 0, sizeof(layout::Header));
  auto* header = new (base) layout::Header{};
  header->version = layout::kVersion;
  header->header_bytes = sizeof(layout::Header);
  header->slot_count = slot_count;
  header->slot_header_bytes = sizeof(layout::SlotHeader);
  header->slot_capacity = capacity;
  header->slot_stride = stride;
  header->slots_offset = slots_offset;
  header->total_bytes = total;
  header->state.store(layout::kStateActive, std::memory_order_relaxed);
  for (auto& reader : header->readers) reader.pinned.store(-1, std::memory_order_relaxed);
  auto* bytes = static_cast<unsigned char*>(base);
  for (uint32_t i = 0; i < slot_count; ++i) {
    new (bytes + slots_offset + i * stride) layout::SlotHeader{};
  }
  // Release: the magic is written last, so whoever sees it (after taking the
  // init lock) sees a fully initialised header. The flock already orders
  // this; the fence documents the intent for readers that skip the lock.
  std::atomic_thread_fence(std::memory_order_release);
  header->magic = layout::kMagic;
}

struct Geometry {
  uint64_t stride;
  uint64_t slots_offset;
  uint64_t total;
};

Geometry GeometryFor(uint32_t slot_count, uint64_t capacity) {
  Geometry g{};
  g.slots_offset = AlignUp(sizeof(layout::Header), layout::kPage);
  g.stride = AlignUp(sizeof(layout::SlotHeader) + capacity, layout::kPage);
  g.total = g.slots_offset + g.stride * slot_count;
  return g;
}

Expected<std::unique_ptr<Mapping>> MapAndValidate(int fd, const std::string& shm_name) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return Error{Errno(("cannot stat bus " + shm_name).c_str())};
  const auto size = static_cast<size_t>(st.st_size);
  if (size < sizeof(layout::Header)) {
    return Error{"/dev/shm/" + shm_name + " is not a freshframe bus (too small)"};
  }
  void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) return Error{Errno(("cannot map bus " + shm_name).c_str())};
  auto mapping = std::make_unique<Mapping>(base, size, st.st_ino, st.st_mode & 07777);
  const layout::Header& h = mapping->header();
  if (h.magic != layout::kMagic) {
    return Error{"/dev/shm/" + shm_name + " is not a freshframe bus (bad magic)"};
  }
  if (h.version != layout::kVersion) {
    return Error{"bus " + shm_name + " has layout version " + std::to_string(h.version) +
                 ", this freshframe speaks version " + std::to_string(layout::kVersion) +
                 " (stop its processes and remove /dev/shm/" + shm_name + ")"};
  }
  const Geometry g = GeometryFor(h.slot_count, h.slot_capacity);
  if (h.header_bytes != sizeof(layout::Header) ||
      h.slot_header_bytes != sizeof(layout::SlotHeader) || h.slot_count < 2 || h.slot_count > 255 ||
      h.slot_stride != g.stride || h.slots_offset != g.slots_offset || h.total_bytes != g.total ||
      h.total_bytes > size) {
    return Error{"bus " + shm_name + " has an inconsistent header"};
  }
  return mapping;
}

}  // namespace

Mapping::~Mapping() { munmap(base_, size_); }

layout::SlotHeader& Mapping::slot(uint32_t index) const {
  const auto& h = header();
  return *reinterpret_cast<layout::SlotHeader*>(static_cast<unsigned char*>(base_) +
                                                h.slots_offset + index * h.slot_stride);
}

unsigned char* Mapping::pixels(uint32_t index) const {
  return reinterpret_cast<unsigned char*>(&slot(index)) + sizeof(layout::SlotHeader);
}

Expected<std::unique_ptr<Mapping>> OpenOrCreate(const std::string& shm_name,
                                                const BusOptions& options) {
  // Two slots at least: the writer never overwrites the newest frame, so it
  // needs another slot to write into.
  if (options.slots < 2 || options.slots > 255) return Error{"bus slots must be 2..255"};
  Fd fd{shm_open(("/" + shm_name).c_str(), O_RDWR | O_CREAT, options.mode)};
  if (fd.fd < 0) return Error{Errno(("cannot open bus /dev/shm/" + shm_name).c_str())};
  // Creation and initialisation happen under an exclusive flock, which the
  // kernel drops if the holder dies: a creator killed half-way leaves an
  // object of size 0 or without magic, and the next opener initialises it.
  if (flock(fd.fd, LOCK_EX) != 0) return Error{Errno("cannot lock bus")};
  struct stat st {};
  if (fstat(fd.fd, &st) != 0) return Error{Errno("cannot stat bus")};
  bool initialise = st.st_size == 0;
  if (!initialise && static_cast<size_t>(st.st_size) >= sizeof(uint64_t)) {
    uint64_t magic = 0;
    if (pread(fd.fd, &magic, sizeof magic, 0) == static_cast<ssize_t>(sizeof magic)) {
      initialise = magic == 0;
    }
  }
  if (initialise) {
    fchmod(fd.fd, options.mode);  // shm_open's mode is filtered by the umask
    const Geometry g = GeometryFor(options.slots, 0);
    if (ftruncate(fd.fd, static_cast<off_t>(g.total)) != 0) {
      flock(fd.fd, LOCK_UN);
      return Error{Errno("cannot size bus")};
    }
    void* base = mmap(nullptr, g.total, PROT_READ | PROT_WRITE, MAP_SHARED, fd.fd, 0);
    if (base == MAP_FAILED) {
      flock(fd.fd, LOCK_UN);
      return Error{Errno("cannot map bus")};
    }
    Initialise(base, g.total, options.slots, 0, g.stride, g.slots_offset);
    munmap(base, g.total);
  }
  flock(fd.fd, LOCK_UN);
  return MapAndValidate(fd.fd, shm_name);
}

Expected<BusHandle> AttachBus(const std::string& name, const BusOptions& options) {
  auto shm_name = ShmName(name);
  if (!shm_name) return shm_name.error();
  auto map = OpenOrCreate(*shm_name, options);
  if (!map) return map.error();
  return BusHandle{*shm_name, options, std::move(map).value()};
}

Expected<std::unique_ptr<Mapping>> Replace(const std::string& shm_name, uint64_t capacity,
                                           uint32_t slot_count, uint64_t epoch, mode_t mode) {
  const std::string temp = shm_name + ".new." + std::to_string(getpid());
  shm_unlink(("/" + temp).c_str());  // a leftover of an earlier crash
  Fd fd{shm_open(("/" + temp).c_str(), O_RDWR | O_CREAT | O_EXCL, mode)};
  if (fd.fd < 0) return Error{Errno(("cannot create bus /dev/shm/" + temp).c_str())};
  fchmod(fd.fd, mode);  // the old object's mode: its readers must still get in
  const Geometry g = GeometryFor(slot_count, capacity);
  void* base = MAP_FAILED;
  if (ftruncate(fd.fd, static_cast<off_t>(g.total)) == 0) {
    base = mmap(nullptr, g.total, PROT_READ | PROT_WRITE, MAP_SHARED, fd.fd, 0);
  }
  if (base == MAP_FAILED) {
    const std::string why = Errno("cannot size bus for the new frame size");
    shm_unlink(("/" + temp).c_str());
    return Error{why};
  }
  Initialise(base, g.total, slot_count, capacity, g.stride, g.slots_offset);
  auto& header = *static_cast<layout::Header*>(base);
  header.writer_pid.store(getpid(), std::memory_order_relaxed);
  header.writer_epoch.store(epoch, std::memory_order_relaxed);
  munmap(base, g.total);
  // POSIX shared memory lives in /dev/shm on Linux, where rename() swaps the
  // name atomically: a process opening the name sees the old or the new
  // object, never none (and so never creates an empty one in between).
  if (rename(("/dev/shm/" + temp).c_str(), ("/dev/shm/" + shm_name).c_str()) != 0) {
    const std::string why = Errno("cannot install the resized bus");
    shm_unlink(("/" + temp).c_str());
    return Error{why};
  }
  return MapAndValidate(fd.fd, shm_name);
}

void FutexWait(std::atomic<uint32_t>& word, uint32_t seen, std::chrono::nanoseconds timeout) {
  if (timeout.count() <= 0) return;
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(timeout.count() / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(timeout.count() % 1'000'000'000);
  // Not FUTEX_PRIVATE: the word is in memory shared between processes.
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT, seen, &ts, nullptr, 0);
}

void FutexWakeAll(std::atomic<uint32_t>& word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

bool ProcessAlive(pid_t pid) {
  if (pid <= 0 || (kill(pid, 0) != 0 && errno != EPERM)) return false;
  // /proc/PID/stat is "PID (comm) STATE ...": comm may hold spaces and
  // parentheses, so the state is the first field after the last ')'.
  char path[32];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  Fd fd{open(path, O_RDONLY | O_CLOEXEC)};
  if (fd.fd < 0) return true;  // no /proc: trust kill()
  char text[512];
  const ssize_t n = read(fd.fd, text, sizeof text - 1);
  if (n <= 0) return true;
  text[n] = '\0';
  const char* close = std::strrchr(text, ')');
  return close == nullptr || close[1] == '\0' || close[2] != 'Z';
}

bool NameMovedOn(const std::string& shm_name, const Mapping& mapping) {
  struct stat st {};
  if (stat(("/dev/shm/" + shm_name).c_str(), &st) != 0) return false;  // gone: nothing newer
  return st.st_ino != mapping.inode();
}

}  // namespace freshframe::bus
