// `freshframe run|capture|infer|serve`: start the pipeline, wait for
// SIGINT/SIGTERM, stop it, with a bounded shutdown.
//
// Shutdown is bounded because a stage can be stuck where no stop token
// reaches it (a GStreamer pipeline that never produces a frame blocks
// cv::VideoCapture::read, and with it Grabber::Stop): a watchdog thread
// exits the process if stopping takes longer than kShutdownLimit, naming the
// part it was stopping, and a second signal during shutdown exits at once.
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include <spdlog/spdlog.h>

#include "app/app.h"
#include "app/config.h"
#include "app/logging.h"
#include "app/pipeline.h"
#include "app/service_notify.h"
#include "core/clock.h"
#include "httpclient/redact.h"

namespace freshframe::app {
namespace {

constexpr int64_t kShutdownLimitUs = 5'000'000;
// How often the watchdog looks at its deadline between signals.
constexpr long kWatchSliceNs = 100'000'000;

const char* SignalName(int signal_number) {
  return signal_number == SIGINT ? "SIGINT" : signal_number == SIGTERM ? "SIGTERM" : "a signal";
}

// SIGINT and SIGTERM stop the pipeline; SIGHUP reloads --config (and, being
// blocked like the others, never ends the process by its default action).
sigset_t PipelineSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  return signals;
}

// Descriptors the process needs besides one per streaming client: sources,
// buses, the encoders' and engines' sockets, log files, the listeners.
constexpr rlim_t kFixedDescriptors = 256;

// The soft RLIMIT_NOFILE is often 1024 (systemd's default) while the hard
// one is far higher; a server that keeps one socket per viewer raises it to
// the hard limit, as nginx and Go do, so that --max-clients is what limits
// the audience rather than EMFILE in accept. Warns if even the hard limit is
// too low.
void RaiseOpenFileLimit(int max_clients) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) getrlimit(RLIMIT_NOFILE, &limit);
  }
  const rlim_t needed = max_clients > 0 ? static_cast<rlim_t>(max_clients) + kFixedDescriptors : 0;
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed) {
    spdlog::warn(
        "open files are limited to {} (RLIMIT_NOFILE), fewer than --max-clients {} needs "
        "({}): raise the limit (LimitNOFILE= in a systemd unit, ulimit -n) or lower "
        "--max-clients",
        limit.rlim_cur, max_clients, needed);
  }
}

// The result of WaitForSignal when SIGHUP asked for a reload.
constexpr int kReload = SIGHUP;

// Waits for the stop signals on its own thread (they are blocked in every
// thread, so only sigtimedwait receives them). The first one wakes
// WaitForSignal and starts the shutdown clock; a second one, or the clock
// running out, ends the process with _exit: nothing that is stuck can hold
// it up. Doing() is called from the main thread; the rest is internal.
class ShutdownWatchdog {
 public:
  explicit ShutdownWatchdog(const sigset_t& signals)
      : signals_(signals), thread_([this](std::stop_token stop) { Run(stop); }) {}
  ~ShutdownWatchdog() { Done(); }
  ShutdownWatchdog(const ShutdownWatchdog&) = delete;
  ShutdownWatchdog& operator=(const ShutdownWatchdog&) = delete;

  // Blocks until the first SIGINT/SIGTERM, and returns its number, or until
  // a SIGHUP that has not been returned yet (several in a row count as one),
  // and returns kReload.
  int WaitForSignal() {
    std::unique_lock lock(mutex_);
    signalled_.wait(lock, [this] { return first_signal_ != 0 || reload_requested_; });
    if (first_signal_ != 0) return first_signal_;
    reload_requested_ = false;
    return kReload;
  }

  // What the main thread is doing now, for the message if it gets stuck.
  void Doing(std::string what) {
    std::lock_guard lock(mutex_);
    doing_ = std::move(what);
  }

  // Shutdown finished: stop watching (joins the thread).
  void Done() {
    if (!thread_.joinable()) return;
    thread_.request_stop();
    thread_.join();
  }

 private:
  [[noreturn]] void Exit(int status) {
    spdlog::default_logger()->flush();
    std::fflush(stderr);
    _exit(status);
  }

  void Run(std::stop_token stop) {
    while (!stop.stop_requested()) {
      const timespec slice{0, kWatchSliceNs};
      const int signal_number = sigtimedwait(&signals_, nullptr, &slice);
      std::unique_lock lock(mutex_);
      const std::string doing = doing_;
      if (signal_number == SIGHUP) {
        // A reload is the main thread's job; during shutdown it is ignored.
        if (first_signal_ == 0) reload_requested_ = true;
        lock.unlock();
        signalled_.notify_all();
        continue;
      }
      if (signal_number > 0 && first_signal_ == 0) {
        first_signal_ = signal_number;
        shutdown_started_us_ = MonotonicMicros();
        lock.unlock();
        spdlog::info("received {}, shutting down (send it again to exit at once)",
                     SignalName(signal_number));
        signalled_.notify_all();
        continue;
      }
      if (signal_number > 0) {
        spdlog::warn("received {} again while {}: exiting at once (status {})",
                     SignalName(signal_number), doing, 128 + signal_number);
        Exit(128 + signal_number);
      }
      if (first_signal_ != 0 && MonotonicMicros() - shutdown_started_us_ > kShutdownLimitUs) {
        spdlog::error("shutdown did not finish within {} s: stuck while {}; exiting (status 1)",
                      kShutdownLimitUs / 1'000'000, doing);
        Exit(1);
      }
    }
  }

  const sigset_t signals_;
  std::mutex mutex_;  // guards the three below
  std::string doing_ = "starting (opening the source)";
  std::condition_variable signalled_;
  int first_signal_ = 0;
  bool reload_requested_ = false;
  int64_t shutdown_started_us_ = 0;
  std::jthread thread_;  // last: started once everything it uses exists
};

// SIGHUP: reads --config again and applies it; a file with an error changes
// nothing, and the log says where the error is.
void ReloadConfig(const RunOptions& options, Pipeline& pipeline) {
  if (options.config_file.empty()) {
    spdlog::info("received SIGHUP: nothing to reload (started without --config)");
    return;
  }
  spdlog::info("received SIGHUP: reloading {}", options.config_file);
  auto config = LoadConfig(options.config_file);
  if (!config) {
    spdlog::error("reload: {}; still running the previous config", config.error().message);
    return;
  }
  spdlog::info("reload: {}", pipeline.Reload(*config));
}

}  // namespace

void BlockPipelineSignals(bool block) {
  const sigset_t signals = PipelineSignals();
  pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &signals, nullptr);
}

int RunPipeline(const RunOptions& options) {
  // Block the stop signals before any thread exists, so every thread inherits
  // the mask and only the watchdog's sigtimedwait receives them.
  const sigset_t stop_signals = PipelineSignals();
  BlockPipelineSignals(true);
  // A client that vanishes mid-write must be an error code, not a signal.
  std::signal(SIGPIPE, SIG_IGN);
  RaiseOpenFileLimit(options.max_clients);

  // Watching from the start: opening a source can hang too, and a signal
  // then still ends the process within the limit.
  ShutdownWatchdog watchdog(stop_signals);
  auto pipeline = Pipeline::Create(options);
  if (!pipeline) {
    PrintError(pipeline.error().message);
    return 1;
  }
  const std::string url = (*pipeline)->url();
  if (!url.empty()) {
    std::printf("freshframe: serving on %s\n", url.c_str());
  } else {
    std::printf("freshframe: running (%s -> bus %s)\n",
                options.role == Role::kCapture ? httpclient::RedactUrl(options.source).c_str()
                                               : options.in_bus.c_str(),
                options.out_bus.c_str());
  }
  std::fflush(stdout);

  // Under systemd (Type=notify), `systemctl start` and `reload` wait for
  // these; elsewhere they do nothing.
  const ServiceNotifier notifier = ServiceNotifier::FromEnvironment();
  const auto notify = [&notifier](std::string_view state) {
    if (auto sent = notifier.Notify(state); !sent) {
      spdlog::warn("service manager: {}", sent.error().message);
    }
  };
  notify("READY=1");
  watchdog.Doing("running");
  while (watchdog.WaitForSignal() == kReload) {
    watchdog.Doing("reloading the config");
    notify("RELOADING=1");
    ReloadConfig(options, **pipeline);
    notify("READY=1");
    watchdog.Doing("running");
  }
  notify("STOPPING=1");
  (*pipeline)->Stop(
      [&watchdog](const char* stage) { watchdog.Doing(std::string("stopping the ") + stage); });
  watchdog.Done();
  return 0;
}

}  // namespace freshframe::app
