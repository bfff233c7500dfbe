// bus_bench: the freshframe shared-memory frame bus against a Unix domain
// socket, ZeroMQ PUB/SUB over ipc:// and Python's multiprocessing.Queue.
// Usage and output: bench/bus/README.md.
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common.h"
#include "driver.h"

#ifndef FRESHFRAME_BUS_BENCH_PY
#define FRESHFRAME_BUS_BENCH_PY "bench/bus/mp_queue_bench.py"
#endif

namespace {

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

bool ParseSize(const std::string& s, busbench::Size* size) {
  int w = 0;
  int h = 0;
  char x = 0;
  std::istringstream in(s);
  if (!(in >> w >> x >> h) || x != 'x' || w <= 0 || h <= 0 || w > 16384 || h > 16384) return false;
  size->width = w;
  size->height = h;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "bus_bench: publish-to-reader latency and frames/s of the freshframe shared-memory bus, "
      "side by side with a Unix domain socket, ZeroMQ PUB/SUB over ipc:// and Python "
      "multiprocessing.Queue (see bench/bus/README.md)"};
  busbench::DriverOptions o;
  std::string sizes = "640x480,1280x720,1920x1080";
  std::string readers = "1,8";
  std::string transports = "futex-floor,bus,bus-copy,bus-publish,uds,zmq-ipc,py-mp-queue";
  std::string stress_size = "64x48";
  bool no_python = false;
  int64_t frames = -1;
  double seconds = -1;
  int64_t py_frames = -1;
  double py_seconds = -1;
  app.add_flag("--quick", o.quick, "smoke run: 300 latency frames (python 30), 0.5 s throughput");
  app.add_option("--frames", frames, "measured frames per latency run (default 2000, --quick 300)");
  app.add_option("--rate", o.rate_hz, "latency runs: publish rate, Hz")->capture_default_str();
  app.add_option("--seconds", seconds,
                 "throughput runs: seconds of flat-out publishing (default 2)");
  app.add_option("--sizes", sizes, "frame sizes, comma-separated WxH")->capture_default_str();
  app.add_option("--readers", readers, "reader counts, comma-separated")->capture_default_str();
  app.add_option("--transports", transports, "which transports, comma-separated")
      ->capture_default_str();
  app.add_flag("--no-python", no_python, "skip the Python multiprocessing.Queue rows");
  app.add_option("--python", o.python_exe, "Python interpreter")->capture_default_str();
  app.add_option("--py-script", o.python_script, "the Python benchmark script")
      ->default_str(FRESHFRAME_BUS_BENCH_PY);
  app.add_option("--py-frames", py_frames,
                 "python: measured frames per latency run (default 150, --quick 30)");
  app.add_option("--py-rate", o.py_rate_hz, "python: latency-run publish rate, Hz")
      ->capture_default_str();
  app.add_option("--py-seconds", py_seconds, "python: throughput seconds (default 2, --quick 0.5)");
  app.add_option("--bus-slots", o.bus_slots,
                 "slots of the benchmark's buses (default max(8, readers + 2))");
  app.add_option("--json", o.json_path, "also write every figure to this JSON file");
  app.add_option("--dump", o.dump_path,
                 "append every latency-run frame's stamps to this CSV: transport,size,readers,"
                 "reader,seq,before_ns,after_ns,recv_ns");
  app.add_option("--stress", o.stress_frames,
                 "instead of the benchmark: publish N frames flat out, 8 reader processes verify "
                 "every frame's checksum (e.g. --stress 1000000)");
  app.add_option("--stress-size", stress_size, "stress frame size (BGR)")->capture_default_str();
  app.add_option("--stress-readers", o.stress_readers, "stress reader processes")
      ->capture_default_str();

  // The child processes' arguments (the driver passes them; not for users).
  busbench::RoleArgs role;
  app.add_option("--role", role.role)->group("");
  app.add_option("--transport", role.transport)->group("");
  app.add_option("--mode", role.mode)->group("");
  app.add_option("--endpoint", role.endpoint)->group("");
  app.add_option("--read-mode", role.read_mode)->group("");
  app.add_option("--width", role.width)->group("");
  app.add_option("--height", role.height)->group("");
  app.add_option("--expect-readers", role.readers)->group("");
  app.add_option("--index", role.index)->group("");
  app.add_option("--slots", role.slots)->group("");
  CLI11_PARSE(app, argc, argv);

  if (!role.role.empty()) {
    role.frames = frames;
    role.rate_hz = o.rate_hz;
    role.seconds = seconds;
    if (role.role == "writer") return busbench::RunWriter(role);
    if (role.role == "reader") return busbench::RunReader(role);
    if (role.role == "stress-writer") return busbench::RunStressWriter(role);
    if (role.role == "stress-reader") return busbench::RunStressReader(role);
    std::fprintf(stderr, "bus_bench: unknown role %s\n", role.role.c_str());
    return 2;
  }

  o.frames = frames >= 0 ? frames : (o.quick ? 300 : 2000);
  o.seconds = seconds >= 0 ? seconds : (o.quick ? 0.5 : 2.0);
  o.py_frames = py_frames >= 0 ? py_frames : (o.quick ? 30 : 150);
  o.py_seconds = py_seconds >= 0 ? py_seconds : (o.quick ? 0.5 : 2.0);
  o.python = !no_python;
  if (o.python_script.empty()) o.python_script = FRESHFRAME_BUS_BENCH_PY;
  for (const auto& s : Split(sizes)) {
    busbench::Size size;
    if (!ParseSize(s, &size)) {
      std::fprintf(stderr, "bus_bench: bad size '%s' (use WxH)\n", s.c_str());
      return 2;
    }
    o.sizes.push_back(size);
  }
  for (const auto& r : Split(readers)) {
    const int n = std::atoi(r.c_str());
    if (n < 1 || n > 32) {
      std::fprintf(stderr, "bus_bench: bad reader count '%s' (1..32)\n", r.c_str());
      return 2;
    }
    o.readers.push_back(n);
  }
  o.transports = Split(transports);
  if (o.rate_hz <= 0 || o.py_rate_hz <= 0 || o.frames < 1) {
    std::fprintf(stderr, "bus_bench: --rate, --py-rate and --frames must be positive\n");
    return 2;
  }
  if (!ParseSize(stress_size, &o.stress_size) || o.stress_readers < 1 || o.stress_readers > 32) {
    std::fprintf(stderr, "bus_bench: bad --stress-size or --stress-readers\n");
    return 2;
  }
  if (o.stress_frames > 0) return busbench::RunStress(o);
  return busbench::RunBenchmark(o);
}
