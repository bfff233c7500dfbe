#include "driver.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bus/bus.h"
#include "common.h"

namespace busbench {
namespace {

using nlohmann::json;

volatile std::sig_atomic_t g_interrupted = 0;
void OnInterrupt(int) { g_interrupted = 1; }

std::vector<pid_t> g_live;         // children started and not reaped yet
std::vector<std::string> g_files;  // socket paths to remove at the end
std::vector<std::string> g_buses;  // bus names to unlink at the end

constexpr int64_t kSecond = 1'000'000'000;

std::string SelfExe() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  return std::string(buf, static_cast<size_t>(n));
}

// ------------------------------------------------------------ children

struct Child {
  std::string name;
  pid_t pid = -1;  // -1 once reaped (never signalled after that)
  int out = -1;    // its stdout
  int in = -1;     // its stdin (the writer's "go")
  std::string text;
  bool eof = false;
  int status = -1;
};

void Forget(pid_t pid) {
  g_live.erase(std::remove(g_live.begin(), g_live.end(), pid), g_live.end());
}

bool Spawn(const std::string& exe, const std::vector<std::string>& args, bool with_stdin,
           Child* c) {
  int out[2] = {-1, -1};
  int in[2] = {-1, -1};
  if (pipe2(out, O_CLOEXEC) != 0) return false;
  if (with_stdin && pipe2(in, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    return false;
  }
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(exe.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    // Own process group: the terminal's Ctrl-C reaches the driver only,
    // which stops its children by pid. Dies with the driver.
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    dup2(out[1], STDOUT_FILENO);
    dup2(with_stdin ? in[0] : devnull, STDIN_FILENO);
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
  if (devnull >= 0) close(devnull);
  close(out[1]);
  if (with_stdin) close(in[0]);
  if (pid < 0) {
    close(out[0]);
    if (with_stdin) close(in[1]);
    return false;
  }
  c->pid = pid;
  c->out = out[0];
  c->in = with_stdin ? in[1] : -1;
  g_live.push_back(pid);
  return true;
}

// Reads the children's stdout until done() or the deadline; false on
// timeout or Ctrl-C.
bool Pump(const std::vector<Child*>& kids, int64_t deadline_ns, const std::function<bool()>& done) {
  for (;;) {
    if (done()) return true;
    if (g_interrupted) return false;
    const int64_t now = NowNs();
    if (now >= deadline_ns) return false;
    std::vector<pollfd> fds;
    std::vector<Child*> who;
    for (Child* k : kids) {
      if (!k->eof) {
        fds.push_back(pollfd{k->out, POLLIN, 0});
        who.push_back(k);
      }
    }
    if (fds.empty()) return done();
    const auto timeout =
        static_cast<int>(std::min<int64_t>((deadline_ns - now) / 1'000'000 + 1, 200));
    const int r = poll(fds.data(), fds.size(), timeout);
    if (r < 0 && errno != EINTR) return false;
    for (size_t i = 0; r > 0 && i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      char buf[65536];
      const ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        who[i]->text.append(buf, static_cast<size_t>(n));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        who[i]->eof = true;
        close(who[i]->out);
        who[i]->out = -1;
      }
    }
  }
}

bool AllEof(const std::vector<Child*>& kids) {
  return std::all_of(kids.begin(), kids.end(), [](const Child* k) { return k->eof; });
}

bool Ready(const Child* k) { return k->text.rfind("ready\n", 0) == 0; }

// Waits for the children to exit (up to `grace_ns`), then SIGTERM, then
// SIGKILL; only ever signals pids it has not reaped.
void Reap(const std::vector<Child*>& kids, int64_t grace_ns) {
  auto wait_all = [&](int64_t until) {
    for (;;) {
      bool pending = false;
      for (Child* k : kids) {
        if (k->pid <= 0) continue;
        int status = 0;
        const pid_t r = waitpid(k->pid, &status, WNOHANG);
        if (r == k->pid) {
          k->status = status;
          Forget(k->pid);
          k->pid = -1;
        } else {
          pending = true;
        }
      }
      if (!pending) return true;
      if (NowNs() >= until) return false;
      usleep(5000);
    }
  };
  if (!wait_all(NowNs() + grace_ns)) {
    for (Child* k : kids) {
      if (k->pid > 0) kill(k->pid, SIGTERM);
    }
    if (!wait_all(NowNs() + 2 * kSecond)) {
      for (Child* k : kids) {
        if (k->pid > 0) kill(k->pid, SIGKILL);
      }
      wait_all(NowNs() + 10 * kSecond);
    }
  }
  for (Child* k : kids) {
    if (k->out >= 0) close(k->out);
    if (k->in >= 0) close(k->in);
    k->out = k->in = -1;
  }
}

bool ExitedOk(const Child& k) { return WIFEXITED(k.status) && WEXITSTATUS(k.status) == 0; }

// The lines a child printed after "ready".
std::vector<std::string> Lines(const Child& k) {
  std::vector<std::string> lines;
  std::istringstream in(k.text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line != "ready") lines.push_back(line);
  }
  return lines;
}

void Cleanup() {
  for (pid_t pid : g_live) kill(pid, SIGKILL);
  for (pid_t pid : g_live) waitpid(pid, nullptr, 0);
  g_live.clear();
  for (const auto& f : g_files) unlink(f.c_str());
  g_files.clear();
  for (const auto& b : g_buses) freshframe::bus::BusWriter::Unlink(b);
  g_buses.clear();
}

void InstallInterruptHandler() {
  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

// ------------------------------------------------------------ statistics

struct Stats {
  size_t n = 0;
  double p50 = 0;
  double p99 = 0;
  double max = 0;
};

// Nearest-rank percentiles.
Stats Summarise(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto rank = [&](double q) {
    auto i = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::min(v.size() - 1, i == 0 ? 0 : i - 1)];
  };
  s.n = v.size();
  s.p50 = rank(0.50);
  s.p99 = rank(0.99);
  s.max = v.back();
  return s;
}

json StatsJson(const std::optional<Stats>& s) {
  if (!s) return nullptr;
  return json{{"n", s->n}, {"p50_us", s->p50}, {"p99_us", s->p99}, {"max_us", s->max}};
}

// ------------------------------------------------------------ one run

struct RunResult {
  bool ok = false;
  std::string error;
  std::vector<double> lat_us;   // publish call -> frame in the reader's hands
  std::vector<double> wake_us;  // publish call returned -> frame in hands
  std::vector<double> send_us;  // the publish/send call itself (writer)
  // Per frame, the earliest reader's latency: with more readers than cores
  // the others wait for a CPU, and this separates that from the hand-over.
  std::vector<double> first_us;
  double rate_hz = 0;  // publish rate achieved
  double window_s = 0;
  uint64_t published = 0;
  uint64_t dropped = 0;  // bus writer: every slot pinned
  std::vector<uint64_t> received;
  int timeouts = 0;
  double other_cpu = 0;       // % of all CPUs used by other processes meanwhile
  long writer_faults = 0;     // minor page faults in the measured phase
  long writer_preempted = 0;  // involuntary context switches in it
  long reader_faults = 0;     // summed over readers
  long reader_preempted = 0;
};

// The 1-minute load average (other processes disturb the tails).
std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one;
  in >> one;
  return one.empty() ? "?" : one;
}

// CPU seconds: busy and total over all CPUs (/proc/stat), and this process
// with its reaped children (getrusage). Other processes' share of the machine
// during a run = (busy - ours) / total.
struct CpuSample {
  double busy = 0;
  double total = 0;
  double ours = 0;
};

CpuSample SampleCpu() {
  CpuSample c;
  std::ifstream in("/proc/stat");
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  const auto hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  c.busy = (user + nice + system + irq + softirq + steal) / hz;
  c.total = c.busy + (idle + iowait) / hz;
  auto seconds = [](const rusage& ru) {
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  };
  rusage self{};
  rusage children{};
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &children);
  c.ours = seconds(self) + seconds(children);
  return c;
}

// Percent of all CPUs used by processes other than ours between a and b.
double OtherCpuPercent(const CpuSample& a, const CpuSample& b) {
  const double total = b.total - a.total;
  if (total <= 0) return 0;
  return std::max(0.0, 100.0 * ((b.busy - a.busy) - (b.ours - a.ours)) / total);
}

std::string SizeName(Size s) { return std::to_string(s.width) + "x" + std::to_string(s.height); }

bool IsBus(Transport t) {
  return t == Transport::kBusView || t == Transport::kBusCopy || t == Transport::kBusPublish;
}

RunResult RunOne(const std::string& exe, Transport t, Size size, int readers, bool latency,
                 const DriverOptions& o, int run_no) {
  RunResult res;
  const std::string tag = "busbench-" + std::to_string(getpid()) + "-" + std::to_string(run_no);
  std::string endpoint;
  std::string file;
  switch (t) {
    case Transport::kBusView:
    case Transport::kBusCopy:
    case Transport::kBusPublish:
      endpoint = tag;
      g_buses.push_back(tag);
      break;
    case Transport::kUds:
      file = "/tmp/ff-" + tag + ".sock";
      endpoint = file;
      break;
    case Transport::kZmq:
      file = "/tmp/ff-" + tag + ".ipc";
      endpoint = "ipc://" + file;
      break;
  }
  if (!file.empty()) g_files.push_back(file);
  auto cleanup = [&] {
    if (!file.empty()) {
      unlink(file.c_str());
      g_files.erase(std::remove(g_files.begin(), g_files.end(), file), g_files.end());
    }
    if (IsBus(t)) {
      freshframe::bus::BusWriter::Unlink(tag);
      g_buses.erase(std::remove(g_buses.begin(), g_buses.end(), tag), g_buses.end());
    }
  };

  const int slots = o.bus_slots > 0
                        ? o.bus_slots
                        : std::max(static_cast<int>(freshframe::bus::kDefaultSlots), readers + 2);
  std::vector<std::string> common = {"--transport",      std::string(TransportName(t)),
                                     "--mode",           latency ? "latency" : "throughput",
                                     "--endpoint",       endpoint,
                                     "--width",          std::to_string(size.width),
                                     "--height",         std::to_string(size.height),
                                     "--frames",         std::to_string(o.frames),
                                     "--rate",           std::to_string(o.rate_hz),
                                     "--seconds",        std::to_string(o.seconds),
                                     "--slots",          std::to_string(slots),
                                     "--expect-readers", std::to_string(readers)};

  const CpuSample cpu0 = SampleCpu();
  Child writer;
  writer.name = "writer";
  std::vector<Child> reader_kids(static_cast<size_t>(readers));
  std::vector<Child*> all;
  std::vector<Child*> rkids;
  auto fail = [&](const std::string& why) {
    for (Child* k : all) {
      if (k->pid > 0) kill(k->pid, SIGKILL);
    }
    Reap(all, 0);
    cleanup();
    res.ok = false;
    res.error = why;
    return res;
  };

  std::vector<std::string> wargs = {"--role", "writer"};
  wargs.insert(wargs.end(), common.begin(), common.end());
  if (!Spawn(exe, wargs, true, &writer)) return fail("cannot start the writer");
  all.push_back(&writer);
  if (!Pump(all, NowNs() + 20 * kSecond, [&] { return Ready(&writer) || writer.eof; }) ||
      !Ready(&writer)) {
    return fail("writer did not become ready");
  }
  for (int i = 0; i < readers; ++i) {
    Child& r = reader_kids[static_cast<size_t>(i)];
    r.name = "reader " + std::to_string(i);
    std::vector<std::string> rargs = {"--role", "reader", "--index", std::to_string(i)};
    rargs.insert(rargs.end(), common.begin(), common.end());
    if (!Spawn(exe, rargs, false, &r)) return fail("cannot start a reader");
    all.push_back(&r);
    rkids.push_back(&r);
  }
  if (!Pump(all, NowNs() + 20 * kSecond,
            [&] {
              return std::all_of(rkids.begin(), rkids.end(),
                                 [](const Child* k) { return Ready(k) || k->eof; });
            }) ||
      !std::all_of(rkids.begin(), rkids.end(), [](const Child* k) { return Ready(k); })) {
    return fail("readers did not become ready");
  }
  const char go[] = "go\n";
  if (write(writer.in, go, sizeof go - 1) != static_cast<ssize_t>(sizeof go - 1)) {
    return fail("cannot start the writer (go)");
  }
  close(writer.in);
  writer.in = -1;

  const double expect_s = latency ? static_cast<double>(o.frames) / o.rate_hz * 4 : o.seconds;
  const int64_t deadline = NowNs() + static_cast<int64_t>((expect_s + 60) * 1e9);
  if (!Pump(all, deadline, [&] { return writer.eof; })) {
    return fail(g_interrupted ? "interrupted" : "writer did not finish in time");
  }
  Pump(all, NowNs() + 10 * kSecond, [&] { return AllEof(all); });
  Reap(all, 2 * kSecond);
  res.other_cpu = OtherCpuPercent(cpu0, SampleCpu());
  cleanup();
  if (g_interrupted) return fail("interrupted");
  if (!ExitedOk(writer))
    return fail("writer failed (status " + std::to_string(writer.status) + ")");

  // Writer: per measured frame its stamps, then the summary.
  std::map<uint64_t, int64_t> after;
  std::map<uint64_t, int64_t> before;
  for (const auto& line : Lines(writer)) {
    std::istringstream in(line);
    char what = 0;
    in >> what;
    if (what == 'W') {
      uint64_t seq = 0;
      int64_t b = 0;
      int64_t a = 0;
      in >> seq >> b >> a;
      after[seq] = a;
      before[seq] = b;
      res.send_us.push_back(static_cast<double>(a - b) / 1e3);
    } else if (what == 'S') {
      int64_t window_ns = 0;
      in >> res.published >> window_ns >> res.dropped >> res.rate_hz >> res.writer_faults >>
          res.writer_preempted;
      res.window_s = static_cast<double>(window_ns) / 1e9;
    }
  }
  std::ofstream dump;
  if (!o.dump_path.empty() && latency) dump.open(o.dump_path, std::ios::app);
  std::map<uint64_t, int64_t> earliest;  // seq -> smallest latency over readers, ns
  for (size_t ri = 0; ri < rkids.size(); ++ri) {
    Child* r = rkids[ri];
    bool summary = false;
    for (const auto& line : Lines(*r)) {
      std::istringstream in(line);
      char what = 0;
      in >> what;
      if (what == 'L') {
        uint64_t seq = 0;
        int64_t recv = 0;
        int64_t lat = 0;
        in >> seq >> recv >> lat;
        res.lat_us.push_back(static_cast<double>(lat) / 1e3);
        auto [first, fresh] = earliest.try_emplace(seq, lat);
        if (!fresh) first->second = std::min(first->second, lat);
        auto it = after.find(seq);
        if (it != after.end()) res.wake_us.push_back(static_cast<double>(recv - it->second) / 1e3);
        if (dump.is_open() && it != after.end()) {
          dump << TransportName(t) << ',' << SizeName(size) << ',' << readers << ',' << ri << ','
               << seq << ',' << before[seq] << ',' << it->second << ',' << recv << '\n';
        }
      } else if (what == 'R') {
        uint64_t received = 0;
        int64_t first = 0;
        int64_t last = 0;
        int timed_out = 0;
        uint64_t bad = 0;
        long faults = 0;
        long preempted = 0;
        in >> received >> first >> last >> timed_out >> bad >> faults >> preempted;
        res.reader_faults += faults;
        res.reader_preempted += preempted;
        res.received.push_back(received);
        res.timeouts += timed_out;
        if (bad != 0) return fail(r->name + " received a malformed message");
        summary = true;
      }
    }
    if (!summary || !ExitedOk(*r)) return fail(r->name + " failed");
  }
  for (const auto& [seq, lat] : earliest) res.first_us.push_back(static_cast<double>(lat) / 1e3);
  res.ok = true;
  return res;
}

// ------------------------------------------------------------ table rows

struct Row {
  std::string transport;
  Size size;
  int readers = 0;
  std::optional<Stats> lat;
  std::optional<Stats> wake;
  std::optional<Stats> send;
  std::optional<Stats> first;  // earliest reader per frame
  double rate_hz = 0;
  double got_min = 0;  // latency run: frames the slowest reader got / published
  double pub_fps = 0;
  double recv_fps_min = 0;
  uint64_t dropped = 0;
  json process;                     // page faults and preemptions of the latency run's processes
  std::optional<double> other_cpu;  // % of all CPUs other processes used in the runs
  std::string error;
};

json RowJson(const Row& r) {
  return json{{"transport", r.transport},
              {"size", SizeName(r.size)},
              {"readers", r.readers},
              {"latency", StatsJson(r.lat)},
              {"wake_after_publish_returned", StatsJson(r.wake)},
              {"publish_call", StatsJson(r.send)},
              {"latency_earliest_reader", StatsJson(r.first)},
              {"latency_run_rate_hz", r.rate_hz},
              {"latency_run_got_min", r.got_min},
              {"pub_fps", r.pub_fps},
              {"recv_fps_min", r.recv_fps_min},
              {"bus_writer_dropped", r.dropped},
              {"latency_run_processes", r.process},
              {"other_processes_cpu_percent", r.other_cpu ? json(*r.other_cpu) : json(nullptr)},
              {"error", r.error.empty() ? json(nullptr) : json(r.error)}};
}

std::string Fmt(double v, int decimals = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

void PrintTable(const std::vector<Row>& rows) {
  auto opt = [](const std::optional<Stats>& st, double Stats::*field) {
    return st ? Fmt((*st).*field) : std::string("-");
  };
  std::printf("\n%-11s %-9s %2s | %8s %8s %8s | %7s %7s | %8s | %6s %4s | %8s %8s | %4s\n",
              "transport", "size", "rd", "p50 us", "p99 us", "max us", "ret p50", "ret p99",
              "call p50", "lat Hz", "got%", "pub fps", "recv fps", "bg%");
  std::printf("%s\n", std::string(124, '-').c_str());
  for (const Row& r : rows) {
    if (!r.error.empty()) {
      std::printf("%-11s %-9s %2d | FAILED: %s\n", r.transport.c_str(), SizeName(r.size).c_str(),
                  r.readers, r.error.c_str());
      continue;
    }
    std::printf("%-11s %-9s %2d | %8s %8s %8s | %7s %7s | %8s | %6s %4s | %8s %8s | %4s\n",
                r.transport.c_str(), SizeName(r.size).c_str(), r.readers,
                opt(r.lat, &Stats::p50).c_str(), opt(r.lat, &Stats::p99).c_str(),
                opt(r.lat, &Stats::max).c_str(), opt(r.wake, &Stats::p50).c_str(),
                opt(r.wake, &Stats::p99).c_str(), opt(r.send, &Stats::p50).c_str(),
                Fmt(r.rate_hz, 0).c_str(), Fmt(100 * r.got_min, 0).c_str(),
                Fmt(r.pub_fps, 0).c_str(), Fmt(r.recv_fps_min, 0).c_str(),
                r.other_cpu ? Fmt(*r.other_cpu, 0).c_str() : "-");
  }
  std::printf(
      "\n"
      "p50/p99/max: CLOCK_MONOTONIC stamp taken just before the publish/send call -> the reader "
      "has\n"
      "  the whole frame in hand (bus, bus-publish: ReadView returned; bus-copy: ReadCopy "
      "returned;\n"
      "  uds/zmq: last byte received; python: Queue.get returned the array), over all readers.\n"
      "  bus, bus-copy: the writer produced the frame in a claimed slot before the stamp; the\n"
      "  publish call is Commit. bus-publish: the copying Publish() (a memcpy of the frame).\n"
      "ret p50/p99: bus rows, from the publish call *returning* (futex woken) -> in hand: the\n"
      "  wake-up alone. Can be negative: a woken reader may run before the writer's wake-all\n"
      "  syscall returns.\n"
      "call p50: the writer's publish/send call itself (bus: Commit + wake; bus-publish: copy "
      "into\n"
      "  the slot + wake; uds: the sends to every reader in turn; zmq: queueing a zero-copy\n"
      "  message to the I/O thread).\n"
      "lat Hz / got%%: publish rate achieved in the latency run (asked: see header) and the share "
      "of\n"
      "  measured frames the slowest reader got.  pub fps / recv fps: throughput run, writer\n"
      "  publishing flat out; recv fps is the slowest reader's frames received per second\n"
      "  (zmq-ipc pub fps counts send() calls, most of them dropped at the HWM).\n"
      "bg%%: CPU used by processes other than this benchmark's during the row's runs, %% of all\n"
      "  CPUs (/proc/stat minus our own and our children's): high values inflate the tails.\n"
      "Semantics differ: bus = newest-only (writer never waits, readers skip frames they were too\n"
      "  slow for); uds = every frame to every reader (writer blocks on the slowest reader);\n"
      "  zmq-ipc = PUB/SUB, SNDHWM=RCVHWM=2 (plus kernel socket buffers), a subscriber that falls\n"
      "  behind loses frames, the writer never blocks; py-mp-queue = every frame, put() blocks\n"
      "  when a consumer's Queue(maxsize=2) is full.\n");
}

// ------------------------------------------------------------ python

std::optional<json> RunPython(const DriverOptions& o, std::string* skipped) {
  if (access(o.python_exe.c_str(), X_OK) != 0) {
    *skipped = o.python_exe + " not found";
    return std::nullopt;
  }
  if (access(o.python_script.c_str(), R_OK) != 0) {
    *skipped = o.python_script + " not found";
    return std::nullopt;
  }
  std::string sizes;
  for (const Size& s : o.sizes) sizes += (sizes.empty() ? "" : ",") + SizeName(s);
  std::string readers;
  for (int r : o.readers) readers += (readers.empty() ? "" : ",") + std::to_string(r);
  Child py;
  py.name = "python";
  if (!Spawn(o.python_exe,
             {o.python_script, "--sizes", sizes, "--readers", readers, "--frames",
              std::to_string(o.py_frames), "--rate", std::to_string(o.py_rate_hz), "--seconds",
              std::to_string(o.py_seconds)},
             false, &py)) {
    *skipped = "cannot start " + o.python_exe;
    return std::nullopt;
  }
  std::vector<Child*> kids = {&py};
  const bool done = Pump(kids, NowNs() + 1800 * kSecond, [&] { return py.eof; });
  Reap(kids, done ? 30 * kSecond : 0);
  if (!done || !ExitedOk(py)) {
    *skipped = g_interrupted ? "interrupted" : "the Python benchmark failed";
    return std::nullopt;
  }
  try {
    json j = json::parse(py.text);
    if (j.contains("skipped") && !j["skipped"].is_null()) {
      *skipped = j["skipped"].get<std::string>();
      return std::nullopt;
    }
    return j;
  } catch (const json::exception& e) {
    *skipped = std::string("unreadable output from the Python benchmark: ") + e.what();
    return std::nullopt;
  }
}

std::optional<Stats> StatsFrom(const json& j) {
  if (!j.is_object()) return std::nullopt;
  Stats s;
  s.n = j.value("n", size_t{0});
  s.p50 = j.value("p50_us", 0.0);
  s.p99 = j.value("p99_us", 0.0);
  s.max = j.value("max_us", 0.0);
  return s;
}

// ------------------------------------------------------------ checks

struct Check {
  std::string name;
  std::string result;  // PASS | FAIL | n/a
  std::string detail;
};

const Row* FindRow(const std::vector<Row>& rows, const std::string& transport, Size size,
                   int readers) {
  for (const Row& r : rows) {
    if (r.transport == transport && r.size.width == size.width && r.size.height == size.height &&
        r.readers == readers && r.error.empty()) {
      return &r;
    }
  }
  return nullptr;
}

std::vector<Check> Checks(const std::vector<Row>& rows, const DriverOptions& o) {
  std::vector<Check> checks;
  for (const Row& r : rows) {
    if (r.transport != "bus") continue;
    Check c;
    c.name =
        "bus p99 < 50 us, " + SizeName(r.size) + ", " + std::to_string(r.readers) + " reader(s)";
    if (!r.lat) {
      c.result = "FAIL";
      c.detail = "no measurement" + (r.error.empty() ? "" : ": " + r.error);
    } else {
      c.result = r.lat->p99 < 50 ? "PASS" : "FAIL";
      c.detail = "p99 " + Fmt(r.lat->p99) + " us from before Commit() (Commit() itself: p50 " +
                 (r.send ? Fmt(r.send->p50) : "?") + " us); p99 " +
                 (r.wake ? Fmt(r.wake->p99) : "?") + " us from Commit() returning";
      if (r.readers > 1 && r.first) {
        c.detail += "; first reader to have each frame: p99 " + Fmt(r.first->p99) + " us";
      }
    }
    checks.push_back(c);
  }
  const Size hd{1920, 1080};
  for (int readers : o.readers) {
    Check c;
    c.name =
        "bus >= 1000 frames/s published at 1920x1080, " + std::to_string(readers) + " reader(s)";
    if (const Row* r = FindRow(rows, "bus", hd, readers)) {
      c.result = r->pub_fps >= 1000 ? "PASS" : "FAIL";
      c.detail = "published " + Fmt(r->pub_fps, 0) + " fps; slowest reader received " +
                 Fmt(r->recv_fps_min, 0) + " fps (newest-only: readers skip)";
    } else {
      c.result = "n/a";
      c.detail = "no bus 1920x1080 row in this run";
    }
    checks.push_back(c);
  }
  for (int readers : o.readers) {
    Check c;
    c.name =
        "bus p99 >= 10x lower than zmq-ipc at 1920x1080, " + std::to_string(readers) + " reader(s)";
    const Row* bus = FindRow(rows, "bus", hd, readers);
    const Row* zmq = FindRow(rows, "zmq-ipc", hd, readers);
    if (bus != nullptr && zmq != nullptr && bus->lat && zmq->lat) {
      const double ratio = zmq->lat->p99 / std::max(bus->lat->p99, 1e-3);
      c.result = ratio >= 10 ? "PASS" : "FAIL";
      c.detail = "zmq p99 " + Fmt(zmq->lat->p99) + " us / bus p99 " + Fmt(bus->lat->p99) +
                 " us = " + Fmt(ratio) + "x; p50s: zmq " + Fmt(zmq->lat->p50) + " us, bus " +
                 Fmt(bus->lat->p50) + " us";
      if (zmq->got_min < 0.999) {
        c.detail += " (zmq reader got " + Fmt(100 * zmq->got_min, 0) +
                    "% of frames at the latency rate: saturated, its p99 includes queueing)";
      }
    } else {
      c.result = "n/a";
      c.detail = "needs bus and zmq-ipc 1920x1080 rows";
    }
    checks.push_back(c);
  }
  return checks;
}

}  // namespace

// ------------------------------------------------------------ entry points

int RunBenchmark(const DriverOptions& o) {
  InstallInterruptHandler();
  const std::string exe = SelfExe();
  if (exe.empty()) {
    std::fprintf(stderr, "bus_bench: cannot find its own executable\n");
    return 2;
  }
  std::vector<Transport> transports;
  for (const auto& name : o.transports) {
    if (name == "py-mp-queue") continue;
    auto t = ParseTransport(name);
    if (!t) {
      std::fprintf(stderr, "bus_bench: unknown transport %s\n", name.c_str());
      return 2;
    }
    transports.push_back(*t);
  }
  const bool want_python = o.python && std::find(o.transports.begin(), o.transports.end(),
                                                 "py-mp-queue") != o.transports.end();

  const std::string load_before = LoadAverage();
  std::printf(
      "bus_bench: %s; latency runs: %lld frames at %.0f Hz (python: %lld at %.0f Hz); throughput "
      "runs: %.1f s (python %.1f s); %ld CPUs, load average %s\n",
      o.quick ? "quick" : "full", static_cast<long long>(o.frames), o.rate_hz,
      static_cast<long long>(o.py_frames), o.py_rate_hz, o.seconds, o.py_seconds,
      sysconf(_SC_NPROCESSORS_ONLN), load_before.c_str());
  std::fflush(stdout);

  std::vector<Row> rows;
  const size_t total = o.sizes.size() * o.readers.size() * transports.size();
  size_t done_runs = 0;
  int run_no = 0;
  bool run_failed = false;
  for (const Size& size : o.sizes) {
    for (int readers : o.readers) {
      for (Transport t : transports) {
        if (g_interrupted) break;
        ++done_runs;
        std::fprintf(stderr, "[%zu/%zu] %s %s, %d reader(s) ...", done_runs, total,
                     std::string(TransportName(t)).c_str(), SizeName(size).c_str(), readers);
        std::fflush(stderr);
        Row row;
        row.transport = std::string(TransportName(t));
        row.size = size;
        row.readers = readers;
        RunResult lat = RunOne(exe, t, size, readers, true, o, ++run_no);
        RunResult thr = lat.ok ? RunOne(exe, t, size, readers, false, o, ++run_no) : RunResult{};
        if (!lat.ok || !thr.ok) {
          row.error = !lat.ok ? "latency run: " + lat.error : "throughput run: " + thr.error;
          run_failed = true;
        } else {
          row.lat = Summarise(lat.lat_us);
          if (IsBus(t)) row.wake = Summarise(lat.wake_us);
          row.send = Summarise(lat.send_us);
          row.first = Summarise(lat.first_us);
          row.process = {{"writer_minor_faults", lat.writer_faults},
                         {"writer_involuntary_switches", lat.writer_preempted},
                         {"readers_minor_faults", lat.reader_faults},
                         {"readers_involuntary_switches", lat.reader_preempted}};
          row.rate_hz = lat.rate_hz;
          const uint64_t got = lat.received.empty()
                                   ? 0
                                   : *std::min_element(lat.received.begin(), lat.received.end());
          row.got_min =
              lat.published ? static_cast<double>(got) / static_cast<double>(lat.published) : 0;
          row.pub_fps = thr.window_s > 0 ? static_cast<double>(thr.published) / thr.window_s : 0;
          const uint64_t recv = thr.received.empty()
                                    ? 0
                                    : *std::min_element(thr.received.begin(), thr.received.end());
          row.recv_fps_min = thr.window_s > 0 ? static_cast<double>(recv) / thr.window_s : 0;
          row.dropped = lat.dropped + thr.dropped;
          row.other_cpu = (lat.other_cpu * lat.window_s + thr.other_cpu * thr.window_s) /
                          std::max(lat.window_s + thr.window_s, 1e-9);
        }
        std::fprintf(
            stderr, " %s\n",
            row.error.empty()
                ? ("p99 " + Fmt(row.lat->p99) + " us, " + Fmt(row.pub_fps, 0) + " fps").c_str()
                : row.error.c_str());
        rows.push_back(row);
      }
    }
  }

  std::string py_skipped;
  std::optional<json> py;
  if (want_python && !g_interrupted) {
    std::fprintf(stderr, "python multiprocessing.Queue runs ...\n");
    py = RunPython(o, &py_skipped);
    if (py) {
      for (const json& pr : (*py)["rows"]) {
        Row row;
        row.transport = "py-mp-queue";
        row.size = Size{pr.value("width", 0), pr.value("height", 0)};
        row.readers = pr.value("readers", 0);
        if (pr.contains("error") && !pr["error"].is_null()) {
          row.error = pr["error"].get<std::string>();
        } else {
          row.lat = StatsFrom(pr["latency"]);
          row.rate_hz = pr.value("latency_run_rate_hz", 0.0);
          row.got_min = pr.value("latency_run_got_min", 0.0);
          row.pub_fps = pr.value("pub_fps", 0.0);
          row.recv_fps_min = pr.value("recv_fps_min", 0.0);
        }
        rows.push_back(row);
      }
    }
  } else if (!want_python) {
    py_skipped = "not requested";
  }
  if (g_interrupted) {
    Cleanup();
    std::fprintf(stderr, "bus_bench: interrupted\n");
    return 130;
  }

  // Group rows by size and reader count, transports in a fixed order.
  const std::vector<std::string> order = {"bus", "bus-copy", "bus-publish",
                                          "uds", "zmq-ipc",  "py-mp-queue"};
  auto rank = [&](const Row& r) {
    return static_cast<size_t>(std::find(order.begin(), order.end(), r.transport) - order.begin());
  };
  std::stable_sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
    const long pa = static_cast<long>(a.size.width) * a.size.height;
    const long pb = static_cast<long>(b.size.width) * b.size.height;
    if (pa != pb) return pa < pb;
    if (a.readers != b.readers) return a.readers < b.readers;
    return rank(a) < rank(b);
  });
  PrintTable(rows);
  if (!py_skipped.empty()) {
    std::printf("\npy-mp-queue rows SKIPPED: %s\n", py_skipped.c_str());
  } else {
    std::printf(
        "py-mp-queue: %lld frames at %.0f Hz per latency run (the C++ rows: %lld at %.0f Hz)\n",
        static_cast<long long>(o.py_frames), o.py_rate_hz, static_cast<long long>(o.frames),
        o.rate_hz);
  }
  uint64_t dropped = 0;
  for (const Row& r : rows) dropped += r.dropped;
  std::printf("bus writer drops (every slot pinned) over all bus runs: %llu\n",
              static_cast<unsigned long long>(dropped));
  const std::string load_after = LoadAverage();
  std::printf(
      "load average (1 min) at start %s, at end %s: anything else running shares the "
      "CPUs and shows in the tails\n",
      load_before.c_str(), load_after.c_str());

  const std::vector<Check> checks = Checks(rows, o);
  bool all_pass = true;
  std::printf("\nTarget checks:\n");
  for (const Check& c : checks) {
    std::printf("  %-4s  %s: %s\n", c.result.c_str(), c.name.c_str(), c.detail.c_str());
    if (c.result == "FAIL") all_pass = false;
  }

  if (!o.json_path.empty()) {
    json j;
    j["config"] = {{"quick", o.quick},
                   {"frames", o.frames},
                   {"rate_hz", o.rate_hz},
                   {"seconds", o.seconds},
                   {"py_frames", o.py_frames},
                   {"py_rate_hz", o.py_rate_hz},
                   {"py_seconds", o.py_seconds},
                   {"cpus", sysconf(_SC_NPROCESSORS_ONLN)},
                   {"load_average_start", load_before},
                   {"load_average_end", load_after}};
    j["rows"] = json::array();
    for (const Row& r : rows) j["rows"].push_back(RowJson(r));
    j["python"] = py ? *py : json{{"skipped", py_skipped}};
    j["checks"] = json::array();
    for (const Check& c : checks) {
      j["checks"].push_back({{"name", c.name}, {"result", c.result}, {"detail", c.detail}});
    }
    std::ofstream out(o.json_path);
    out << j.dump(2) << "\n";
    if (!out) std::fprintf(stderr, "bus_bench: cannot write %s\n", o.json_path.c_str());
  }
  Cleanup();
  if (run_failed) return 2;
  return all_pass ? 0 : 1;
}

int RunStress(const DriverOptions& o) {
  InstallInterruptHandler();
  const std::string exe = SelfExe();
  const std::string name = "busbench-" + std::to_string(getpid()) + "-stress";
  g_buses.push_back(name);
  const int views = o.stress_readers / 2;
  const int slots = std::max(static_cast<int>(freshframe::bus::kDefaultSlots), views + 2);
  const std::vector<std::string> common = {"--endpoint", name,
                                           "--width",    std::to_string(o.stress_size.width),
                                           "--height",   std::to_string(o.stress_size.height),
                                           "--frames",   std::to_string(o.stress_frames),
                                           "--slots",    std::to_string(slots)};
  std::printf(
      "bus_bench --stress: %lld frames of %s BGR (%d bytes), %d reader processes "
      "(%d ReadCopy, %d ReadView), %d slots\n",
      static_cast<long long>(o.stress_frames), SizeName(o.stress_size).c_str(),
      o.stress_size.width * o.stress_size.height * 3, o.stress_readers, o.stress_readers - views,
      views, slots);
  std::fflush(stdout);

  Child writer;
  std::vector<Child> readers(static_cast<size_t>(o.stress_readers));
  std::vector<Child*> all;
  std::vector<Child*> rkids;
  auto fail = [&](const std::string& why) {
    for (Child* k : all) {
      if (k->pid > 0) kill(k->pid, SIGKILL);
    }
    Reap(all, 0);
    Cleanup();
    std::printf("stress: FAIL (%s)\n", why.c_str());
    return 2;
  };
  std::vector<std::string> wargs = {"--role", "stress-writer"};
  wargs.insert(wargs.end(), common.begin(), common.end());
  if (!Spawn(exe, wargs, true, &writer)) return fail("cannot start the writer");
  all.push_back(&writer);
  if (!Pump(all, NowNs() + 20 * kSecond, [&] { return Ready(&writer) || writer.eof; }) ||
      !Ready(&writer)) {
    return fail("writer did not become ready");
  }
  for (int i = 0; i < o.stress_readers; ++i) {
    Child& r = readers[static_cast<size_t>(i)];
    r.name = "reader " + std::to_string(i);
    std::vector<std::string> rargs = {"--role",      "stress-reader",
                                      "--index",     std::to_string(i),
                                      "--read-mode", i % 2 == 0 ? "copy" : "view"};
    rargs.insert(rargs.end(), common.begin(), common.end());
    if (!Spawn(exe, rargs, false, &r)) return fail("cannot start a reader");
    all.push_back(&r);
    rkids.push_back(&r);
  }
  if (!Pump(all, NowNs() + 20 * kSecond,
            [&] {
              return std::all_of(rkids.begin(), rkids.end(),
                                 [](const Child* k) { return Ready(k) || k->eof; });
            }) ||
      !std::all_of(rkids.begin(), rkids.end(), [](const Child* k) { return Ready(k); })) {
    return fail("readers did not become ready");
  }
  const int64_t start = NowNs();
  const char go[] = "go\n";
  if (write(writer.in, go, sizeof go - 1) != static_cast<ssize_t>(sizeof go - 1)) {
    return fail("cannot start the writer");
  }
  close(writer.in);
  writer.in = -1;
  const int64_t budget = std::max<int64_t>(600 * kSecond, o.stress_frames * 200'000);
  if (!Pump(all, NowNs() + budget, [&] { return AllEof(all); })) {
    return fail(g_interrupted ? "interrupted" : "did not finish in time");
  }
  const double wall_s = static_cast<double>(NowNs() - start) / 1e9;
  Reap(all, 5 * kSecond);
  Cleanup();

  uint64_t published = 0;
  int64_t elapsed_ns = 0;
  uint64_t dropped = 0;
  for (const auto& line : Lines(writer)) {
    std::istringstream in(line);
    char what = 0;
    in >> what;
    if (what == 'S') in >> published >> elapsed_ns >> dropped;
  }
  if (!ExitedOk(writer) || published == 0) return fail("writer failed");
  const double elapsed_s = static_cast<double>(elapsed_ns) / 1e9;
  std::printf(
      "writer: published %llu frames in %.2f s (%.0f frames/s), dropped %llu; all readers "
      "done after %.2f s\n",
      static_cast<unsigned long long>(published), elapsed_s,
      static_cast<double>(published) / elapsed_s, static_cast<unsigned long long>(dropped), wall_s);
  std::printf("%-8s %-5s %10s %9s %8s %11s %9s %10s %8s\n", "reader", "mode", "checked", "bad sum",
              "bad meta", "view changed", "reordered", "skipped", "timeout");
  uint64_t bad_total = 0;
  uint64_t checked_total = 0;
  bool complete = true;
  json jreaders = json::array();
  for (size_t i = 0; i < rkids.size(); ++i) {
    const Child& r = *rkids[i];
    uint64_t checked = 0, bad_sum = 0, bad_meta = 0, changed = 0, reordered = 0, skipped = 0;
    int timed_out = 1;
    bool summary = false;
    for (const auto& line : Lines(r)) {
      std::istringstream in(line);
      char what = 0;
      in >> what;
      if (what == 'R') {
        in >> checked >> bad_sum >> bad_meta >> changed >> reordered >> skipped >> timed_out;
        summary = true;
      }
    }
    if (!summary || !ExitedOk(r) || timed_out != 0) complete = false;
    const char* mode = i % 2 == 0 ? "copy" : "view";
    std::printf("%-8zu %-5s %10llu %9llu %8llu %11llu %9llu %10llu %8s\n", i, mode,
                static_cast<unsigned long long>(checked), static_cast<unsigned long long>(bad_sum),
                static_cast<unsigned long long>(bad_meta), static_cast<unsigned long long>(changed),
                static_cast<unsigned long long>(reordered),
                static_cast<unsigned long long>(skipped),
                summary ? (timed_out ? "yes" : "no") : "FAILED");
    bad_total += bad_sum + bad_meta + changed + reordered;
    checked_total += checked;
    jreaders.push_back({{"mode", mode},
                        {"checked", checked},
                        {"bad_checksum", bad_sum},
                        {"bad_meta", bad_meta},
                        {"view_changed", changed},
                        {"reordered", reordered},
                        {"skipped", skipped},
                        {"complete", summary && timed_out == 0}});
  }
  const bool pass = bad_total == 0 && complete;
  std::printf(
      "stress: %s: %llu frames checked by %d readers, %llu bad (checksum, metadata, pinned "
      "view changed, or out of order)%s\n",
      pass ? "PASS" : "FAIL", static_cast<unsigned long long>(checked_total), o.stress_readers,
      static_cast<unsigned long long>(bad_total), complete ? "" : "; a reader did not finish");
  if (!o.json_path.empty()) {
    json j = {{"stress_frames", o.stress_frames},
              {"size", SizeName(o.stress_size)},
              {"published", published},
              {"elapsed_s", elapsed_s},
              {"dropped", dropped},
              {"readers", jreaders},
              {"bad_total", bad_total},
              {"result", pass ? "PASS" : "FAIL"}};
    std::ofstream(o.json_path) << j.dump(2) << "\n";
  }
  return pass ? 0 : 1;
}

}  // namespace busbench
