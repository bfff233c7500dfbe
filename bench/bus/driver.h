// bus_bench: the driver (the process the user starts). It starts the
// writer and reader processes of each run, collects their results, runs the
// Python multiprocessing.Queue comparison, prints the table and the target
// checks. RunBenchmark is in driver.cpp, RunStress in stress_driver.cpp; their
// helpers in children.h (the child processes) and report.h (table, JSON,
// checks).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace busbench {

struct Size {
  int width = 0;
  int height = 0;
};

struct DriverOptions {
  bool quick = false;
  int64_t frames = 2000;  // measured frames per latency run
  double rate_hz = 200;   // latency runs: publish rate
  double seconds = 2;     // throughput runs: publish window
  std::vector<Size> sizes;
  std::vector<int> readers;
  std::vector<std::string> transports;
  bool python = true;
  std::string python_exe = "/usr/bin/python3";
  std::string python_script;
  int64_t py_frames = 150;
  double py_rate_hz = 10;
  double py_seconds = 2;
  std::string json_path;
  std::string dump_path;      // latency runs' per-frame stamps, CSV (appended)
  int bus_slots = 0;          // 0: max(8, readers + 2)
  int64_t stress_frames = 0;  // > 0: run the stress test instead
  Size stress_size{64, 48};
  int stress_readers = 8;
};

// Returns the process exit status: 0 every target met, 1 a target failed,
// 2 a run failed.
int RunBenchmark(const DriverOptions& options);
int RunStress(const DriverOptions& options);

}  // namespace busbench
