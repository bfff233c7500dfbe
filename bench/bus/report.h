// bus_bench driver: the results: latency percentiles (Stats), one table row
// per transport x size x reader count (Row), the table, the rows as JSON and
// the target checks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "driver.h"

namespace busbench {

using nlohmann::json;

struct Stats {
  size_t n = 0;
  double p50 = 0;
  double p99 = 0;
  double max = 0;
};

// Nearest-rank percentiles.
Stats Summarise(std::vector<double> v);

json StatsJson(const std::optional<Stats>& s);
// The inverse of StatsJson (the Python benchmark's rows).
std::optional<Stats> StatsFrom(const json& j);

std::string SizeName(Size s);

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

json RowJson(const Row& r);

std::string Fmt(double v, int decimals = 1);

void PrintTable(const std::vector<Row>& rows);

struct Check {
  std::string name;
  std::string result;  // PASS | FAIL | n/a
  std::string detail;
};

std::vector<Check> Checks(const std::vector<Row>& rows, const DriverOptions& o);

}  // namespace busbench
