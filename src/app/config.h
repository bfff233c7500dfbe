// The configuration of a `freshframe run` process serving several streams:
// the server's settings and one entry per stream, read from a TOML file
// (`run --config FILE`, `check-config FILE`) or built from the command line
// (one stream named "default").
//
// File shape:
//   [server]          bind, port, threads, token, token-file, basic-auth,
//                     allow-origin (array), allow-host (array), max-clients,
//                     max-variants, max-connections-per-address, detector-threads,
//                     bus-mode, bus-slots, bus-allow-owner
//   [defaults]        any stream key, merged under every [streams.NAME]
//   [streams.NAME]    the `run` flags without "--" (source, size, fps, fourcc, loop,
//                     rtsp-transport, source-token(-file), detector, cascade,
//                     detections-max-age, scale-factor, min-neighbours, min-size,
//                     labels, input-size, conf, nms, min-area, overlay, hud, mirror,
//                     quality, detect-fps, publish); "_" may stand for "-".
// Values are checked by the same validators as the flags. Stream names are
// URL-safe ([A-Za-z0-9_-], 1..64 characters). Every error reads
// "FILE:LINE:COL: streams.NAME.KEY: what is wrong".
//
// Thread-safety: plain values and pure functions; LoadConfig reads the file
// and touches nothing else.
#pragma once

#include <string>
#include <vector>

#include "app/app.h"
#include "core/expected.h"

namespace freshframe::app {

struct StreamConfig {
  std::string name;    // URL-safe; the /streams/NAME/ of its endpoints
  RunOptions options;  // role kRun; the stream keys set, the server keys as in Config::server
  std::string where;   // "FILE:LINE:COL" of its table ("" from the command line)
};

struct Config {
  std::string path;   // the file, "" when built from the command line
  RunOptions server;  // the [server] keys (bind, port, access, limits, bus, detector-threads)
  std::vector<StreamConfig> streams;  // in file order, at least one; the first serves "/"
};

// The one-stream config the `run` flags describe: stream "default".
Config ConfigFromFlags(const RunOptions& options);

// Reads and checks `path`. An Error reads "FILE:LINE:COL: KEY: what is
// wrong" (KEY the dotted key, e.g. streams.cam1.quality): TOML syntax, an
// unknown table or key, a value a validator refuses, a bad or duplicate
// stream name, no stream at all, two streams writing the same bus.
Expected<Config> LoadConfig(const std::string& path);

// The keys of `a` and `b` that differ for one stream, for the reload log
// ("quality, detector"); empty if they would run the same.
std::string ChangedKeys(const StreamConfig& a, const StreamConfig& b);

}  // namespace freshframe::app
