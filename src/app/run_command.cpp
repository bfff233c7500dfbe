#include <csignal>
#include <cstdio>

#include <spdlog/spdlog.h>

#include "app/app.h"
#include "app/pipeline.h"

namespace freshframe::app {

int RunPipeline(const RunOptions& options) {
  // Block the stop signals before any thread exists, so every thread inherits
  // the mask and only sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // A client that vanishes mid-write must be an error code, not a signal.
  std::signal(SIGPIPE, SIG_IGN);

  auto pipeline = Pipeline::Create(options);
  if (!pipeline) {
    std::fprintf(stderr, "freshframe: error: %s\n", pipeline.error().message.c_str());
    return 1;
  }
  const std::string url = (*pipeline)->url();
  if (!url.empty()) {
    std::printf("freshframe: serving on %s\n", url.c_str());
  } else {
    std::printf("freshframe: running (%s -> bus %s)\n",
                options.role == Role::kCapture ? options.source.c_str() : options.in_bus.c_str(),
                options.out_bus.c_str());
  }
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  spdlog::info("received {}, shutting down", signal_number == SIGINT ? "SIGINT" : "SIGTERM");
  (*pipeline)->Stop();
  return 0;
}

}  // namespace freshframe::app
