#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "app/app.h"
#include "capture/capture.h"
#include "http/http.h"

namespace freshframe::app {
namespace {

// A CLI11 check that runs one of our parsers and reports its error text.
CLI::Validator SourceValidator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        if (value.rfind("pattern", 0) != 0) {
          return "unknown source '" + value + "' (supported: pattern[:WxH][@FPS])";
        }
        auto spec = capture::ParsePatternSpec(value);
        return spec ? std::string() : spec.error().message;
      },
      "SOURCE");
}

CLI::Validator BindValidator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        auto bind = http::ValidateBind(value);
        return bind ? std::string() : bind.error().message;
      },
      "ADDR");
}

void AddRunOptions(CLI::App& run, RunOptions& options) {
  run.add_option("--source", options.source, "Video source: pattern[:WxH][@FPS]")
      ->check(SourceValidator())
      ->capture_default_str();
  run.add_option("--detector", options.detector, "Detector: faces | none")
      ->check(CLI::IsMember({"faces", "none"}))
      ->capture_default_str();
  run.add_option("--cascade", options.cascade, "Haar cascade file for --detector faces");
  run.add_option("--overlay", options.overlay,
                 "latest: every frame drawn with the newest detections; inferred: only "
                 "frames the detector finished")
      ->check(CLI::IsMember({"latest", "inferred"}))
      ->capture_default_str();
  run.add_option("--quality", options.quality, "JPEG quality 1..100")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  run.add_option("--bind", options.bind, "Address to listen on")
      ->check(BindValidator())
      ->capture_default_str();
  run.add_option("--port", options.port, "TCP port (0 picks a free one and prints it)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  run.add_option("--threads", options.threads, "HTTP I/O threads (0: one per core)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  run.add_option("--detector-threads", options.detector_threads,
                 "OpenCV threads the detector may use")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
}

void AddProbeOptions(CLI::App& probe, ProbeCommandOptions& options) {
  probe.add_option("url", options.url, "Server URL, e.g. http://127.0.0.1:8080/")->required();
  probe.add_option("--seconds", options.seconds, "How long to measure")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  probe.add_option("--clients", options.clients, "Parallel connections")
      ->check(CLI::Range(1, 2000))
      ->capture_default_str();
  probe.add_flag("--json", options.json, "Print one JSON object instead of a table");
}

void SetUpLogging(const std::string& level) {
  // Logs go to stderr: stdout carries results (the URL line, probe output).
  auto logger = spdlog::stderr_color_mt("freshframe");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  spdlog::set_level(spdlog::level::from_str(level));
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"freshframe: low-latency live video with detection, to any number of browsers"};
  app.set_version_flag("--version", FRESHFRAME_VERSION);
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->capture_default_str();

  RunOptions run_options;
  CLI::App* run = app.add_subcommand("run", "Run the whole pipeline in one process");
  AddRunOptions(*run, run_options);
  run->add_option("--log-level", log_level, "trace|debug|info|warn|error|off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));

  ProbeCommandOptions probe_options;
  CLI::App* probe =
      app.add_subcommand("probe", "Measure a stream's fps and capture-to-received latency");
  AddProbeOptions(*probe, probe_options);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {
      return app.exit(e);  // --help, --version
    }
    std::string message = e.what();
    for (char& c : message) {
      if (c == '\n') c = ' ';
    }
    std::fprintf(stderr, "freshframe: error: %s (see --help)\n", message.c_str());
    return 2;
  }

  SetUpLogging(log_level);
  if (*run) return RunPipeline(run_options);
  if (*probe) return RunProbeCommand(probe_options);
  return 2;
}

}  // namespace freshframe::app
