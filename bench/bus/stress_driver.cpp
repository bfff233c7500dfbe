// bus_bench --stress N: the driver side (stress.cpp has the child
// processes): starts the stress writer and readers, prints their results.
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bus/bus.h"
#include "children.h"
#include "common.h"
#include "driver.h"
#include "report.h"

namespace busbench {

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
