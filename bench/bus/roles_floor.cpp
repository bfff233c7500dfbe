// bus_bench child processes: the "futex-floor" transport, the machine's own
// floor for a cross-process wake-up. The writer stores a stamp in a shared
// page and bumps a futex word; readers sleep on that word and read the stamp.
// No pixels, no slots, no validation: whatever the freshframe bus adds on top
// of this (and whatever it cannot beat) shows in the rows side by side.
// It is the program MEASUREMENTS.md describes ("writer stamps CLOCK_MONOTONIC
// and wakes, reader measures"), run with the same readers and rate as the bus.
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <memory>
#include <string>

#include "common.h"
#include "roles.h"

namespace busbench {
namespace {

// The shared page. Every field is an atomic so that a reader racing with the
// writer reads a stale or a new value, never a torn one; `word` orders them.
struct FloorPage {
  std::atomic<uint32_t> word;  // futex word, bumped once per message
  std::atomic<uint32_t> kind;
  std::atomic<uint64_t> seq;
  std::atomic<int64_t> stamp_ns;
};
static_assert(std::atomic<uint32_t>::is_always_lock_free &&
              std::atomic<uint64_t>::is_always_lock_free);

class FloorPageMap {
 public:
  ~FloorPageMap() {
    if (page_ != nullptr) munmap(page_, sizeof(FloorPage));
  }
  // The writer creates the object (the driver unlinks it after the run);
  // readers open the existing one.
  bool Map(const std::string& endpoint, bool create) {
    const std::string name = FloorShmName(endpoint);
    const int fd = shm_open(name.c_str(), create ? O_RDWR | O_CREAT | O_EXCL : O_RDWR, 0600);
    if (fd < 0) {
      Fail(Errno("shm_open " + name));
      return false;
    }
    if (create && ftruncate(fd, sizeof(FloorPage)) != 0) {
      Fail(Errno("ftruncate " + name));
      close(fd);
      return false;
    }
    void* p = mmap(nullptr, sizeof(FloorPage), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
      Fail(Errno("mmap " + name));
      return false;
    }
    // A fresh object is zero-filled, which is a valid FloorPage (word 0).
    page_ = static_cast<FloorPage*>(p);
    return true;
  }
  FloorPage& page() { return *page_; }

 private:
  FloorPage* page_ = nullptr;
};

class FloorPublisher : public Publisher {
 public:
  explicit FloorPublisher(const RoleArgs& a) : args_(a) {}
  bool Setup() override { return map_.Map(args_.endpoint, true) && Send(Kind::kPrime, 0, NowNs()); }
  bool Send(Kind kind, uint64_t seq, int64_t stamp_ns) override {
    FloorPage& p = map_.page();
    // Relaxed: the release on `word` below publishes these stores.
    p.kind.store(static_cast<uint32_t>(kind), std::memory_order_relaxed);
    p.seq.store(seq, std::memory_order_relaxed);
    p.stamp_ns.store(stamp_ns, std::memory_order_relaxed);
    p.word.fetch_add(1, std::memory_order_release);
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&p.word), FUTEX_WAKE, INT_MAX, nullptr, nullptr,
            0);
    return true;
  }

 private:
  RoleArgs args_;
  FloorPageMap map_;
};

class FloorSubscriber : public Subscriber {
 public:
  explicit FloorSubscriber(const RoleArgs& a) : args_(a) {}
  bool Setup() override {
    if (!map_.Map(args_.endpoint, false)) return false;
    Msg m;
    if (Recv(5000, &m) != Got::kFrame || m.kind != Kind::kPrime) {
      Fail("futex-floor reader: no priming message");
      return false;
    }
    return true;
  }
  Got Recv(int timeout_ms, Msg* out) override {
    FloorPage& p = map_.page();
    const int64_t deadline = NowNs() + static_cast<int64_t>(timeout_ms) * 1'000'000;
    for (;;) {
      // Acquire: pairs with the writer's release bump, so the fields read
      // below are at least as new as this word.
      const uint32_t word = p.word.load(std::memory_order_acquire);
      if (word != seen_) {
        out->recv_ns = NowNs();
        out->kind = static_cast<Kind>(p.kind.load(std::memory_order_relaxed));
        out->seq = p.seq.load(std::memory_order_relaxed);
        out->stamp_ns = p.stamp_ns.load(std::memory_order_relaxed);
        // Acquire fence, then the word again: if the writer bumped it while
        // we read, the fields may mix two messages; take the newer one.
        std::atomic_thread_fence(std::memory_order_acquire);
        if (p.word.load(std::memory_order_relaxed) != word) continue;
        seen_ = word;
        return Got::kFrame;
      }
      const int64_t left = deadline - NowNs();
      if (left <= 0) return Got::kTimeout;
      timespec ts{};
      ts.tv_sec = static_cast<time_t>(left / 1'000'000'000);
      ts.tv_nsec = static_cast<long>(left % 1'000'000'000);
      // Sleeps only while the word still equals `word`: a bump in between
      // makes FUTEX_WAIT return at once (EAGAIN).
      syscall(SYS_futex, reinterpret_cast<uint32_t*>(&p.word), FUTEX_WAIT, word, &ts, nullptr, 0);
    }
  }

 private:
  RoleArgs args_;
  FloorPageMap map_;
  uint32_t seen_ = 0;
};

}  // namespace

std::unique_ptr<Publisher> MakeFloorPublisher(const RoleArgs& a) {
  return std::make_unique<FloorPublisher>(a);
}

std::unique_ptr<Subscriber> MakeFloorSubscriber(const RoleArgs& a) {
  return std::make_unique<FloorSubscriber>(a);
}

}  // namespace busbench
