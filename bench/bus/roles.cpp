// bus_bench child processes: the writer and the readers of one run, for each
// transport (the freshframe bus with ReadView or ReadCopy, a Unix domain
// socket, ZeroMQ PUB/SUB over ipc://). The transports are in roles_bus.cpp
// and roles_sockets.cpp (interfaces: roles.h).
//
// Protocol with the driver:
//   writer: sets up, prints "ready", waits for "go" on stdin (the readers are
//           then attached), publishes, prints result lines and exits:
//             W <seq> <before_ns> <after_ns>   per measured frame (latency)
//             S <published> <window_ns> <dropped> <rate_hz> <minflt> <nivcsw>
//   reader: sets up (and, on the bus, takes the priming frame), prints
//           "ready", reads until the end marker, prints
//             L <seq> <recv_ns> <latency_ns>   per measured frame (latency)
//             R <received> <first_ns> <last_ns> <timed_out> <bad> <minflt> <nivcsw>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <opencv2/core.hpp>

#include "common.h"
#include "roles.h"

namespace busbench {

volatile std::sig_atomic_t g_stop = 0;

namespace {

void OnStop(int) { g_stop = 1; }

}  // namespace

void InstallStopHandler() {
  struct sigaction sa {};
  sa.sa_handler = OnStop;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: blocking calls return EINTR
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

void Say(const std::string& line) {
  std::fputs(line.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

bool WaitForLine(std::string* line) {
  line->clear();
  char c = 0;
  for (;;) {
    const ssize_t n = read(STDIN_FILENO, &c, 1);
    if (n == 1) {
      if (c == '\n') return true;
      line->push_back(c);
    } else if (n < 0 && errno == EINTR) {
      if (g_stop) return false;
    } else {
      return false;
    }
  }
}

std::string_view TransportName(Transport t) {
  switch (t) {
    case Transport::kBusView:
      return "bus";
    case Transport::kBusCopy:
      return "bus-copy";
    case Transport::kBusPublish:
      return "bus-publish";
    case Transport::kUds:
      return "uds";
    case Transport::kZmq:
      return "zmq-ipc";
    case Transport::kFutexFloor:
      return "futex-floor";
  }
  return "?";
}

std::optional<Transport> ParseTransport(std::string_view name) {
  for (Transport t : {Transport::kFutexFloor, Transport::kBusView, Transport::kBusCopy,
                      Transport::kBusPublish, Transport::kUds, Transport::kZmq}) {
    if (TransportName(t) == name) return t;
  }
  return std::nullopt;
}

void Fail(const std::string& what) {
  std::fprintf(stderr, "bus_bench[%d]: %s\n", getpid(), what.c_str());
}

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

cv::Mat TestImage(const RoleArgs& a) {
  cv::Mat image(a.height, a.width, a.channels == 1 ? CV_8UC1 : CV_8UC3);
  cv::randu(image, 0, 256);
  return image;
}

namespace {

std::unique_ptr<Publisher> MakePublisher(const RoleArgs& a) {
  auto t = ParseTransport(a.transport);
  if (!t) return nullptr;
  switch (*t) {
    case Transport::kBusView:
    case Transport::kBusCopy:
      return MakeBusPublisher(a, true);
    case Transport::kBusPublish:
      return MakeBusPublisher(a, false);
    case Transport::kUds:
      return MakeUdsPublisher(a);
    case Transport::kZmq:
      return MakeZmqPublisher(a);
    case Transport::kFutexFloor:
      return MakeFloorPublisher(a);
  }
  return nullptr;
}

std::unique_ptr<Subscriber> MakeSubscriber(const RoleArgs& a) {
  auto t = ParseTransport(a.transport);
  if (!t) return nullptr;
  switch (*t) {
    case Transport::kBusView:
    case Transport::kBusPublish:
      return MakeBusSubscriber(a, true);
    case Transport::kBusCopy:
      return MakeBusSubscriber(a, false);
    case Transport::kUds:
      return MakeUdsSubscriber(a);
    case Transport::kZmq:
      return MakeZmqSubscriber(a);
    case Transport::kFutexFloor:
      return MakeFloorSubscriber(a);
  }
  return nullptr;
}

// Minor page faults and involuntary context switches (preemptions) so far.
struct Usage {
  long minflt = 0;
  long nivcsw = 0;
};
Usage Now() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return Usage{ru.ru_minflt, ru.ru_nivcsw};
}

void SleepUntil(int64_t t_ns) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(t_ns / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(t_ns % 1'000'000'000);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR && !g_stop) {
  }
}

}  // namespace

int RunWriter(const RoleArgs& a) {
  InstallStopHandler();
  auto pub = MakePublisher(a);
  if (!pub || !pub->Setup()) return 2;
  Say("ready");
  std::string line;
  if (!WaitForLine(&line) || line != "go") return 2;
  if (!pub->Attach()) return 2;

  const bool latency = a.mode == "latency";
  const auto period = static_cast<int64_t>(1e9 / a.rate_hz);
  uint64_t seq = 0;
  // Warm-up: page faults, caches, socket buffers, ZeroMQ's first messages.
  int64_t next = NowNs();
  for (int i = 0; i < a.warm && !g_stop; ++i) {
    if (latency) {
      SleepUntil(next);
      next += period;
    }
    if (!pub->Prepare() || !pub->Send(Kind::kWarm, ++seq, NowNs())) return 2;
  }

  std::vector<int64_t> before;
  std::vector<int64_t> after;
  const Usage usage0 = Now();
  uint64_t published = 0;
  int64_t start = 0;
  int64_t end = 0;
  if (latency) {
    before.reserve(static_cast<size_t>(a.frames));
    after.reserve(static_cast<size_t>(a.frames));
    next = NowNs() + period;
    for (int64_t i = 0; i < a.frames && !g_stop; ++i) {
      SleepUntil(next);
      // A transport slower than the rate makes the writer late: do not burst
      // to catch up (the rate achieved is reported).
      next = std::max(next + period, NowNs());
      if (!pub->Prepare()) return 2;
      const int64_t stamp = NowNs();
      if (!pub->Send(Kind::kMeasure, ++seq, stamp)) return 2;
      const int64_t done = NowNs();
      before.push_back(stamp);
      after.push_back(done);
      if (published == 0) start = stamp;
      end = done;
      ++published;
    }
  } else {
    start = NowNs();
    const auto deadline = start + static_cast<int64_t>(a.seconds * 1e9);
    for (;;) {
      if (NowNs() >= deadline || g_stop) break;
      // Throughput counts producing the frame too (Prepare).
      if (!pub->Prepare()) return 2;
      if (!pub->Send(Kind::kMeasure, ++seq, NowNs())) return 2;
      ++published;
    }
    end = NowNs();
  }
  const Usage usage1 = Now();
  const uint64_t first_seq = seq - published + 1;
  // Let the readers drain before the end marker (UDS is in order anyway).
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  pub->SendEnd(++seq);

  std::string out;
  char buf[160];
  for (size_t i = 0; i < before.size(); ++i) {
    std::snprintf(buf, sizeof buf, "W %llu %lld %lld\n",
                  static_cast<unsigned long long>(first_seq + i), static_cast<long long>(before[i]),
                  static_cast<long long>(after[i]));
    out += buf;
  }
  const double window_s = static_cast<double>(end - start) / 1e9;
  std::snprintf(buf, sizeof buf, "S %llu %lld %llu %.3f %ld %ld",
                static_cast<unsigned long long>(published), static_cast<long long>(end - start),
                static_cast<unsigned long long>(pub->dropped()),
                window_s > 0 ? static_cast<double>(published) / window_s : 0.0,
                usage1.minflt - usage0.minflt, usage1.nivcsw - usage0.nivcsw);
  out += buf;
  Say(out);
  return 0;
}

int RunReader(const RoleArgs& a) {
  InstallStopHandler();
  auto sub = MakeSubscriber(a);
  if (!sub || !sub->Setup()) return 2;
  const bool latency = a.mode == "latency";
  std::vector<Msg> samples;
  if (latency) samples.reserve(static_cast<size_t>(a.frames) + 16);
  Say("ready");

  uint64_t received = 0;
  uint64_t bad = 0;
  int64_t first = 0;
  int64_t last = 0;
  bool timed_out = false;
  int64_t last_activity = NowNs();
  Usage usage0;
  for (;;) {
    Msg m;
    const Got got = sub->Recv(200, &m);
    if (got == Got::kError) {
      bad = 1;
      break;
    }
    if (got == Got::kTimeout) {
      if (g_stop || NowNs() - last_activity > 20'000'000'000LL) {
        timed_out = true;
        break;
      }
      continue;
    }
    last_activity = m.recv_ns;
    if (m.kind == Kind::kEnd) break;
    if (m.kind != Kind::kMeasure) continue;
    ++received;
    if (first == 0) {
      first = m.recv_ns;
      usage0 = Now();
    }
    last = m.recv_ns;
    if (latency) samples.push_back(m);
  }

  std::string out;
  out.reserve(samples.size() * 40 + 100);
  char buf[160];
  for (const Msg& m : samples) {
    std::snprintf(buf, sizeof buf, "L %llu %lld %lld\n", static_cast<unsigned long long>(m.seq),
                  static_cast<long long>(m.recv_ns),
                  static_cast<long long>(m.recv_ns - m.stamp_ns));
    out += buf;
  }
  const Usage usage1 = Now();
  std::snprintf(buf, sizeof buf, "R %llu %lld %lld %d %llu %ld %ld",
                static_cast<unsigned long long>(received), static_cast<long long>(first),
                static_cast<long long>(last), timed_out ? 1 : 0,
                static_cast<unsigned long long>(bad), usage1.minflt - usage0.minflt,
                usage1.nivcsw - usage0.nivcsw);
  out += buf;
  Say(out);
  return 0;
}

}  // namespace busbench
