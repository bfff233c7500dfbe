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
#include <limits>
#include <new>

namespace freshframe::bus {
namespace {

// Overflow-checked: the operands may come from a crafted header.
std::optional<uint64_t> AlignUp(uint64_t n, uint64_t a) {
  uint64_t padded = 0;
  if (__builtin_add_overflow(n, a - 1, &padded)) return std::nullopt;
  return padded / a * a;
}

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

std::string Octal(uint32_t mode) {
  char text[16];
  std::snprintf(text, sizeof text, "%04o", mode);
  return text;
}

// Closes a descriptor on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

void Initialise(void* base, const layout::Geometry& g) {
  std::memset(base, 0, sizeof(layout::Header));
  auto* header = new (base) layout::Header{};
  header->version = layout::kVersion;
  header->header_bytes = sizeof(layout::Header);
  header->slot_count = g.slot_count;
  header->slot_header_bytes = sizeof(layout::SlotHeader);
  header->slot_capacity = g.slot_capacity;
  header->slot_stride = g.slot_stride;
  header->slots_offset = g.slots_offset;
  header->total_bytes = g.total_bytes;
  header->state.store(layout::kStateActive, std::memory_order_relaxed);
  for (auto& reader : header->readers) reader.pinned.store(-1, std::memory_order_relaxed);
  auto* bytes = static_cast<unsigned char*>(base);
  for (uint32_t i = 0; i < g.slot_count; ++i) {
    new (bytes + g.slots_offset + i * g.slot_stride) layout::SlotHeader{};
  }
  // Release: the magic is written last, so whoever sees it (after taking the
  // init lock) sees a fully initialised header. The flock already orders
  // this; the fence documents the intent for readers that skip the lock.
  std::atomic_thread_fence(std::memory_order_release);
  header->magic = layout::kMagic;
}

// Whether this process may use the object `st` describes: a regular file,
// its own (or an owner `options` allow), not world-writable, no special bits.
Expected<bool> CheckObject(const struct stat& st, const std::string& shm_name,
                           const BusOptions& options) {
  const std::string path = "/dev/shm/" + shm_name;
  if (!S_ISREG(st.st_mode)) return Error{path + " is not a freshframe bus (not a regular file)"};
  const uid_t me = geteuid();
  if (st.st_uid != me && !options.allow_any_owner &&
      !(options.allow_owner && *options.allow_owner == st.st_uid)) {
    return Error{path + " is owned by uid " + std::to_string(st.st_uid) +
                 ", not by this user (uid " + std::to_string(me) +
                 "): refusing a bus another user controls (--bus-allow-owner " +
                 std::to_string(st.st_uid) + " trusts that user)"};
  }
  const auto mode = static_cast<uint32_t>(st.st_mode & 07777);
  if ((mode & 07000) != 0) {
    return Error{path + " has mode " + Octal(mode) +
                 ": setuid, setgid or sticky bits are never set on a bus (remove it)"};
  }
  if ((mode & 0002) != 0) {
    return Error{path + " has mode " + Octal(mode) +
                 ": world-writable, any user could corrupt it (chmod 0600, or 0660 for a "
                 "group, or remove it)"};
  }
  return true;
}

Expected<std::unique_ptr<Mapping>> MapAndValidate(int fd, const std::string& shm_name,
                                                  const BusOptions& options) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return Error{Errno("cannot stat bus " + shm_name)};
  if (auto allowed = CheckObject(st, shm_name, options); !allowed) return allowed.error();
  const auto size = static_cast<size_t>(st.st_size);
  if (size < sizeof(layout::Header)) {
    return Error{"/dev/shm/" + shm_name + " is not a freshframe bus (too small)"};
  }
  void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) return Error{Errno("cannot map bus " + shm_name)};
  // Validated on this mapping, not with read(): what is checked is what is
  // used (another process may write the object between a read and an mmap).
  auto geometry = ValidateImage(base, size, shm_name);
  if (!geometry) {
    munmap(base, size);
    return geometry.error();
  }
  return std::make_unique<Mapping>(base, size, st.st_ino, st.st_mode & 07777, *geometry);
}

}  // namespace

std::optional<layout::Geometry> GeometryFor(uint32_t slot_count, uint64_t capacity) {
  layout::Geometry g{};
  g.slot_count = slot_count;
  g.slot_capacity = capacity;
  g.slots_offset = *AlignUp(sizeof(layout::Header), layout::kPage);
  uint64_t slot_bytes = 0;
  if (__builtin_add_overflow(capacity, sizeof(layout::SlotHeader), &slot_bytes)) {
    return std::nullopt;
  }
  const auto stride = AlignUp(slot_bytes, layout::kPage);
  if (!stride) return std::nullopt;
  g.slot_stride = *stride;
  uint64_t slots_bytes = 0;
  if (__builtin_mul_overflow(g.slot_stride, uint64_t{slot_count}, &slots_bytes) ||
      __builtin_add_overflow(slots_bytes, g.slots_offset, &g.total_bytes) ||
      g.total_bytes > static_cast<uint64_t>(std::numeric_limits<off_t>::max())) {
    return std::nullopt;
  }
  return g;
}

Expected<layout::Geometry> ValidateImage(const void* base, size_t size,
                                         const std::string& shm_name) {
  if (size < sizeof(layout::Header)) {
    return Error{"/dev/shm/" + shm_name + " is not a freshframe bus (too small)"};
  }
  // The fields are read once, into a copy: the memory is shared and may
  // change under us; only the copy is checked and used.
  const auto* h = static_cast<const layout::Header*>(base);
  uint64_t magic = 0;
  std::memcpy(&magic, &h->magic, sizeof magic);
  if (magic != layout::kMagic) {
    return Error{"/dev/shm/" + shm_name + " is not a freshframe bus (bad magic)"};
  }
  uint32_t version = 0;
  std::memcpy(&version, &h->version, sizeof version);
  if (version != layout::kVersion) {
    return Error{"bus " + shm_name + " has layout version " + std::to_string(version) +
                 ", this freshframe speaks version " + std::to_string(layout::kVersion) +
                 " (stop its processes and remove /dev/shm/" + shm_name + ")"};
  }
  // Bytes 12..55: header_bytes, slot_count, slot_header_bytes, slot_capacity,
  // slot_stride, slots_offset, total_bytes.
  uint32_t header_bytes = 0, slot_count = 0, slot_header_bytes = 0;
  layout::Geometry claimed{};
  std::memcpy(&header_bytes, &h->header_bytes, sizeof header_bytes);
  std::memcpy(&slot_count, &h->slot_count, sizeof slot_count);
  std::memcpy(&slot_header_bytes, &h->slot_header_bytes, sizeof slot_header_bytes);
  std::memcpy(&claimed.slot_capacity, &h->slot_capacity, sizeof claimed.slot_capacity);
  std::memcpy(&claimed.slot_stride, &h->slot_stride, sizeof claimed.slot_stride);
  std::memcpy(&claimed.slots_offset, &h->slots_offset, sizeof claimed.slots_offset);
  std::memcpy(&claimed.total_bytes, &h->total_bytes, sizeof claimed.total_bytes);
  const std::string bad = "bus " + shm_name + " has an inconsistent header: ";
  if (header_bytes != sizeof(layout::Header) || slot_header_bytes != sizeof(layout::SlotHeader)) {
    return Error{bad + "header_bytes " + std::to_string(header_bytes) + ", slot_header_bytes " +
                 std::to_string(slot_header_bytes) + " (expected " +
                 std::to_string(sizeof(layout::Header)) + ", " +
                 std::to_string(sizeof(layout::SlotHeader)) + ")"};
  }
  if (slot_count < 2 || slot_count > 255) {
    return Error{bad + "slot_count " + std::to_string(slot_count) + " (not 2..255)"};
  }
  const auto g = GeometryFor(slot_count, claimed.slot_capacity);
  if (!g) {
    return Error{bad + "slot_capacity " + std::to_string(claimed.slot_capacity) +
                 " overflows the geometry"};
  }
  if (claimed.slot_stride != g->slot_stride || claimed.slots_offset != g->slots_offset ||
      claimed.total_bytes != g->total_bytes) {
    return Error{bad + "slot_stride " + std::to_string(claimed.slot_stride) + ", slots_offset " +
                 std::to_string(claimed.slots_offset) + ", total_bytes " +
                 std::to_string(claimed.total_bytes) + " do not follow from " +
                 std::to_string(slot_count) + " slots of " + std::to_string(g->slot_capacity) +
                 " bytes"};
  }
  if (g->total_bytes > size) {
    return Error{bad + "total_bytes " + std::to_string(g->total_bytes) + " but the object has " +
                 std::to_string(size)};
  }
  return *g;
}

Expected<bool> CheckBusMode(uint32_t mode) {
  if ((mode & ~uint32_t{0777}) != 0) {
    return Error{"bus mode " + Octal(mode) +
                 " has setuid, setgid or sticky bits (use e.g. 0600 or 0660)"};
  }
  if ((mode & 0002) != 0) {
    return Error{"bus mode " + Octal(mode) +
                 " is world-writable: any user could corrupt the bus (use 0600, or 0660 for a "
                 "group)"};
  }
  if ((mode & 0600) != 0600) {
    return Error{"bus mode " + Octal(mode) +
                 " does not let its owner read and write it (use e.g. 0600 or 0660)"};
  }
  return true;
}

Mapping::~Mapping() {
  if (owns_memory_) munmap(base_, size_);
}

layout::SlotHeader& Mapping::slot(uint32_t index) const {
  return *reinterpret_cast<layout::SlotHeader*>(static_cast<unsigned char*>(base_) +
                                                geometry_.slots_offset +
                                                uint64_t{index} * geometry_.slot_stride);
}

unsigned char* Mapping::pixels(uint32_t index) const {
  return reinterpret_cast<unsigned char*>(&slot(index)) + sizeof(layout::SlotHeader);
}

Expected<std::unique_ptr<Mapping>> OpenOrCreate(const std::string& shm_name,
                                                const BusOptions& options) {
  // Two slots at least: the writer never overwrites the newest frame, so it
  // needs another slot to write into.
  if (options.slots < 2 || options.slots > 255) return Error{"bus slots must be 2..255"};
  if (auto mode_ok = CheckBusMode(options.mode); !mode_ok) return mode_ok.error();
  Fd fd{shm_open(("/" + shm_name).c_str(), O_RDWR | O_CREAT, options.mode)};
  if (fd.fd < 0) return Error{Errno("cannot open bus /dev/shm/" + shm_name)};
  // Owner, type and mode are checked before the object is touched: a foreign
  // object is neither initialised nor locked.
  struct stat st {};
  if (fstat(fd.fd, &st) != 0) return Error{Errno("cannot stat bus " + shm_name)};
  if (auto allowed = CheckObject(st, shm_name, options); !allowed) return allowed.error();
  // Creation and initialisation happen under an exclusive flock, which the
  // kernel drops if the holder dies: a creator killed half-way leaves an
  // object of size 0 or without magic, and the next opener initialises it.
  if (flock(fd.fd, LOCK_EX) != 0) return Error{Errno("cannot lock bus")};
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
    const layout::Geometry g = *GeometryFor(options.slots, 0);
    if (ftruncate(fd.fd, static_cast<off_t>(g.total_bytes)) != 0) {
      flock(fd.fd, LOCK_UN);
      return Error{Errno("cannot size bus")};
    }
    void* base = mmap(nullptr, g.total_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd.fd, 0);
    if (base == MAP_FAILED) {
      flock(fd.fd, LOCK_UN);
      return Error{Errno("cannot map bus")};
    }
    Initialise(base, g);
    munmap(base, g.total_bytes);
  }
  flock(fd.fd, LOCK_UN);
  return MapAndValidate(fd.fd, shm_name, options);
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
  const auto g = GeometryFor(slot_count, capacity);
  if (!g) {
    return Error{"bus " + shm_name + ": a frame of " + std::to_string(capacity) +
                 " bytes is too large for a bus"};
  }
  const std::string temp = shm_name + ".new." + std::to_string(getpid());
  shm_unlink(("/" + temp).c_str());  // a leftover of an earlier crash
  Fd fd{shm_open(("/" + temp).c_str(), O_RDWR | O_CREAT | O_EXCL, mode)};
  if (fd.fd < 0) return Error{Errno("cannot create bus /dev/shm/" + temp)};
  fchmod(fd.fd, mode);  // the old object's mode: its readers must still get in
  void* base = MAP_FAILED;
  if (ftruncate(fd.fd, static_cast<off_t>(g->total_bytes)) == 0) {
    base = mmap(nullptr, g->total_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd.fd, 0);
  }
  if (base == MAP_FAILED) {
    const std::string why = Errno("cannot size bus for the new frame size");
    shm_unlink(("/" + temp).c_str());
    return Error{why};
  }
  Initialise(base, *g);
  auto& header = *static_cast<layout::Header*>(base);
  header.writer_pid.store(getpid(), std::memory_order_relaxed);
  header.writer_epoch.store(epoch, std::memory_order_relaxed);
  munmap(base, g->total_bytes);
  // POSIX shared memory lives in /dev/shm on Linux, where rename() swaps the
  // name atomically: a process opening the name sees the old or the new
  // object, never none (and so never creates an empty one in between).
  if (rename(("/dev/shm/" + temp).c_str(), ("/dev/shm/" + shm_name).c_str()) != 0) {
    const std::string why = Errno("cannot install the resized bus");
    shm_unlink(("/" + temp).c_str());
    return Error{why};
  }
  return MapAndValidate(fd.fd, shm_name, BusOptions{});  // our own object
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
