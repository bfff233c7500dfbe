// bus_bench driver: its child processes (fork+exec of this executable or
// Python, reading their stdout, reaping and killing them), the files and buses
// to remove at the end, and the driver's Ctrl-C handling.
#pragma once

#include <sys/types.h>

#include <csignal>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace busbench {

// Set by SIGINT/SIGTERM in the driver (installed by InstallInterruptHandler).
extern volatile std::sig_atomic_t g_interrupted;

extern std::vector<std::string> g_files;  // socket paths to remove at the end
extern std::vector<std::string> g_buses;  // bus names to unlink at the end

inline constexpr int64_t kSecond = 1'000'000'000;

std::string SelfExe();

struct Child {
  std::string name;
  pid_t pid = -1;  // -1 once reaped (never signalled after that)
  int out = -1;    // its stdout
  int in = -1;     // its stdin (the writer's "go")
  std::string text;
  bool eof = false;
  int status = -1;
};

bool Spawn(const std::string& exe, const std::vector<std::string>& args, bool with_stdin, Child* c);

// Reads the children's stdout until done() or the deadline; false on
// timeout or Ctrl-C.
bool Pump(const std::vector<Child*>& kids, int64_t deadline_ns, const std::function<bool()>& done);

bool AllEof(const std::vector<Child*>& kids);

bool Ready(const Child* k);

// Waits for the children to exit (up to `grace_ns`), then SIGTERM, then
// SIGKILL; only ever signals pids it has not reaped.
void Reap(const std::vector<Child*>& kids, int64_t grace_ns);

bool ExitedOk(const Child& k);

// The lines a child printed after "ready".
std::vector<std::string> Lines(const Child& k);

// Kills the children not reaped yet, removes the files and buses.
void Cleanup();

void InstallInterruptHandler();

}  // namespace busbench
