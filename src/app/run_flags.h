// The flags of the pipeline subcommands (run, capture, infer, serve) and
// their validators, in one place for the command line (app/cli.cpp) and the
// config file (app/config.cpp): a value in a file is checked by exactly the
// code that checks the same flag.
//
// Thread-safety: each Add* call adds options to `app` that write into
// `options` while `app` parses, so both must outlive the parse and neither
// may be shared between threads during it. Nothing else is kept.
#pragma once

#include <CLI/CLI.hpp>

#include "app/app.h"

namespace freshframe::app {

// --source, --size, --fps, --fourcc, --loop, --rtsp-transport, --source-token(-file).
void AddSourceOptions(CLI::App& app, RunOptions& options);
// --detector and its options, --overlay, --no-hud, --mirror, --detector-threads, --detect-fps.
void AddDetectorOptions(CLI::App& app, RunOptions& options);
// --token(-file), --basic-auth, --allow-origin, --allow-host, --max-*.
void AddAccessOptions(CLI::App& app, RunOptions& options);
// --quality, --bind, --port, --threads and the access options.
void AddServerOptions(CLI::App& app, RunOptions& options);
// --bus-mode, --bus-allow-owner, --bus-slots.
void AddBusOptions(CLI::App& app, RunOptions& options);
// Every flag of `run` but --config and --log-level: source, detector,
// server, --publish, bus.
void AddRunOptions(CLI::App& run, RunOptions& options);

// A bus name (--in, --out, --publish): what bus::ShmName accepts.
CLI::Validator BusNameValidator();

}  // namespace freshframe::app
