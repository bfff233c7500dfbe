#include <atomic>
#include <csignal>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "app/app.h"
#include "app/logging.h"
#include "probe/probe.h"

namespace freshframe::app {
namespace {

// Lock-free atomic: the only kind of write a signal handler may make.
std::atomic<bool> g_probe_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void OnProbeSignal(int) { g_probe_stop.store(true, std::memory_order_relaxed); }

}  // namespace

int RunProbeCommand(const ProbeCommandOptions& options) {
  probe::ProbeOptions probe_options;
  probe_options.url = options.url;
  probe_options.seconds = options.seconds;
  probe_options.clients = options.clients;
  if (std::string problem = probe::CheckOptions(probe_options); !problem.empty()) {
    PrintError(problem);
    return 2;
  }
  std::signal(SIGINT, OnProbeSignal);
  std::signal(SIGTERM, OnProbeSignal);
  std::signal(SIGPIPE, SIG_IGN);

  const probe::ProbeReport report = probe::RunProbe(probe_options, &g_probe_stop);
  if (options.json) {
    std::printf("%s\n", probe::ToJson(report).dump().c_str());
  } else {
    std::fputs(probe::FormatText(report).c_str(), stdout);
  }
  std::fflush(stdout);
  // Failure if any client failed or nothing at all was received.
  return report.failed_clients == 0 && report.frames > 0 ? 0 : 1;
}

}  // namespace freshframe::app
