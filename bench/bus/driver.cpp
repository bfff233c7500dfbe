#include "driver.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "bus/bus.h"
#include "children.h"
#include "common.h"
#include "report.h"

namespace busbench {
namespace {

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
    case Transport::kFutexFloor:
      // POSIX shared memory is /dev/shm on Linux: unlink() removes it.
      endpoint = tag;
      file = "/dev/shm" + FloorShmName(tag);
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
          if (IsBus(t) || t == Transport::kFutexFloor) row.wake = Summarise(lat.wake_us);
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
  const std::vector<std::string> order = {"futex-floor", "bus",     "bus-copy",   "bus-publish",
                                          "uds",         "zmq-ipc", "py-mp-queue"};
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

}  // namespace busbench
