#include <cstdio>
#include <cstdlib>
#include <string>

#include <CLI/CLI.hpp>

#include "app/app.h"
#include "app/config.h"
#include "app/logging.h"
#include "app/run_flags.h"

namespace freshframe::app {
namespace {

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

// check-config FILE: the verdict of LoadConfig, nothing started.
int CheckConfig(const std::string& path) {
  auto config = LoadConfig(path);
  if (!config) {
    std::fprintf(stderr, "%s\n", config.error().message.c_str());
    return 2;
  }
  std::string names;
  for (const StreamConfig& stream : config->streams) {
    names += (names.empty() ? "" : ", ") + stream.name;
  }
  std::printf("%s: ok, %zu stream%s: %s\n", path.c_str(), config->streams.size(),
              config->streams.size() == 1 ? "" : "s", names.c_str());
  return 0;
}

// run --config FILE: the file says everything, so a flag beside it (which
// would silently win or lose) is refused with the key to write instead.
// Then the file is checked before anything starts.
int CheckRunConfig(const CLI::App& run, const std::string& path) {
  for (const CLI::Option* option : run.get_options()) {
    const std::string name = option->get_name();
    if (option->count() == 0 || name == "--config" || name == "--log-level") continue;
    PrintError(name + " cannot be given with --config: put " + ConfigKeyOfFlag(name) + " of " +
               path);
    return 2;
  }
  if (auto config = LoadConfig(path); !config) {
    PrintError(config.error().message);
    return 2;
  }
  return 0;
}

}  // namespace

int Main(int argc, char** argv) {
  BlockPipelineSignals(true);
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
  run->add_option("--config", run_options.config_file,
                  "Serve the streams of this TOML file (examples/freshframe.toml); reloaded on "
                  "SIGHUP. Every other setting goes in the file");

  RunOptions capture_options;
  capture_options.role = Role::kCapture;
  CLI::App* capture = app.add_subcommand("capture", "Capture a source into a bus");
  AddSourceOptions(*capture, capture_options);
  capture->add_option("--out", capture_options.out_bus, "Bus to publish raw frames on")
      ->required()
      ->check(BusNameValidator());
  AddBusOptions(*capture, capture_options);

  RunOptions infer_options;
  infer_options.role = Role::kInfer;
  CLI::App* infer = app.add_subcommand("infer", "Detect and annotate frames from bus to bus");
  infer->add_option("--in", infer_options.in_bus, "Bus to read raw frames from")
      ->required()
      ->check(BusNameValidator());
  infer->add_option("--out", infer_options.out_bus, "Bus to publish annotated frames on")
      ->required()
      ->check(BusNameValidator());
  AddDetectorOptions(*infer, infer_options);
  AddBusOptions(*infer, infer_options);

  RunOptions serve_options;
  serve_options.role = Role::kServe;
  CLI::App* serve = app.add_subcommand("serve", "Serve the frames of a bus over HTTP");
  serve->add_option("--in", serve_options.in_bus, "Bus to read annotated frames from")
      ->required()
      ->check(BusNameValidator());
  AddServerOptions(*serve, serve_options);
  AddBusOptions(*serve, serve_options);
  // serve draws nothing; say where a detector goes instead of "not expected".
  serve
      ->add_option_function<std::string>(
          "--detector", [](const std::string&) {},
          "Not here: serve draws nothing; run the detector in infer (or run)")
      ->check([](const std::string&) -> std::string {
        return "serve runs no detector and draws nothing: run it in freshframe infer --in BUS "
               "--out BUS.annotated --detector SPEC (or freshframe run) and serve that";
      });

  std::string config_to_check;
  CLI::App* check_config = app.add_subcommand(
      "check-config", "Check a run --config file and list its streams; starts nothing");
  check_config->add_option("file", config_to_check, "The TOML file")->required();

  for (CLI::App* sub : {run, capture, infer, serve}) {
    sub->add_option("--log-level", log_level, "trace|debug|info|warn|error|off")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  }

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
    PrintError(message + " (see --help)");
    return 2;
  }

  if (*check_config || *probe) BlockPipelineSignals(false);
  if (*check_config) return CheckConfig(config_to_check);
  if (*run && !run_options.config_file.empty()) {
    if (const int status = CheckRunConfig(*run, run_options.config_file); status != 0) {
      return status;
    }
  }
  SetUpLogging(log_level);
  if (*run) return RunPipeline(run_options);
  if (*capture) return RunPipeline(capture_options);
  if (*infer) return RunPipeline(infer_options);
  if (*serve) return RunPipeline(serve_options);
  if (*probe) return RunProbeCommand(probe_options);
  return 2;
}

}  // namespace freshframe::app
