// bus_bench: shared definitions of the driver and the child processes it
// starts (writer, readers, stress writer/readers). See bench/bus/README.md.
//
// Every child is this same executable, exec'd with `--role ...`; it talks to
// the driver through its stdin (writer: the "go" line) and stdout (a "ready"
// line, then result lines, see roles.cpp).
#pragma once

#include <csignal>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace busbench {

// CLOCK_MONOTONIC in nanoseconds (the same clock as Python's
// time.monotonic_ns() and freshframe::MonotonicMicros()).
inline int64_t NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// What a message is. On the bus it travels in FrameMeta::source_id, the
// frame number in FrameMeta::sequence and the ns stamp in the checksum field.
enum class Kind : uint32_t { kPrime = 0, kWarm = 1, kMeasure = 2, kEnd = 3 };

// The header in front of the pixels on the Unix socket and as ZeroMQ's first
// message part.
struct WireHeader {
  uint32_t magic;
  uint32_t kind;
  uint64_t seq;
  int64_t stamp_ns;
  uint64_t bytes;  // pixel bytes that follow
};
inline constexpr uint32_t kWireMagic = 0x46425542;  // "BUBF"
static_assert(sizeof(WireHeader) == 32);

// bus / bus-copy: the writer fills a claimed slot in place (ClaimSlot, before
// the stamp) and the measured publish is Commit; readers use ReadView /
// ReadCopy. bus-publish: the copying BusWriter::Publish, ReadView readers.
// futex-floor: a stamp and a futex wake, no frame (the machine's floor).
enum class Transport { kFutexFloor, kBusView, kBusCopy, kBusPublish, kUds, kZmq };
std::string_view TransportName(Transport t);
std::optional<Transport> ParseTransport(std::string_view name);

// The POSIX shared-memory name of a futex-floor run's page.
inline std::string FloorShmName(const std::string& endpoint) { return "/ff-floor-" + endpoint; }

// A child's command line (one struct for every role; unused fields stay 0).
struct RoleArgs {
  std::string role;       // writer | reader | stress-writer | stress-reader
  std::string transport;  // bus-view | bus-copy | uds | zmq
  std::string mode;       // latency | throughput
  std::string endpoint;   // bus name, socket path or ZeroMQ endpoint
  std::string read_mode;  // stress readers: copy | view
  int width = 0;
  int height = 0;
  int channels = 3;
  int readers = 1;     // the writer waits for this many
  int index = 0;       // reader number
  int warm = 20;       // warm-up frames before the measured ones
  int64_t frames = 0;  // latency: measured frames; stress: frames to publish
  double rate_hz = 200;
  double seconds = 2;  // throughput window
  int slots = 10;      // bus slots (the writer creates the bus)
};

int RunWriter(const RoleArgs& args);
int RunReader(const RoleArgs& args);
int RunStressWriter(const RoleArgs& args);
int RunStressReader(const RoleArgs& args);

// Set by SIGTERM/SIGINT in children (installed by InstallStopHandler).
extern volatile std::sig_atomic_t g_stop;
void InstallStopHandler();

// Writes one line to stdout and flushes it (child -> driver).
void Say(const std::string& line);
// Reads one line from stdin (driver -> writer), false on EOF.
bool WaitForLine(std::string* line);

}  // namespace busbench
