// The configuration of a `freshframe run` process serving several streams:
// the server's settings and one entry per stream, read from a TOML file
// (`run --config FILE`, `check-config FILE`) or built from the command line
// (one stream named "default").
//
// File shape (examples/freshframe.toml):
//   [server]          bind, port, threads, token, token-file, basic-auth,
//                     allow-origin, allow-host (a string or an array of strings),
//                     max-clients, max-variants, max-connections-per-address,
//                     detector-threads, bus-mode ("0660" or 0o660), bus-slots,
//                     bus-allow-owner (a uid or "any"), rtsp-port
//   [defaults]        any stream key, merged under every [streams.NAME]
//   [streams.NAME]    the `run` flags without "--": source, size, fps, fourcc, loop,
//                     rtsp-transport, source-token, source-token-file, detector,
//                     cascade, detections-max-age, scale-factor, min-neighbours,
//                     min-size, labels, input-size, conf, nms, min-area, overlay,
//                     hud, mirror, quality, detect-fps, publish, h264-encoder,
//                     h264-preset, h264-bitrate, gop, max-webrtc-peers,
//                     rtp-out, rtmp-out (strings or arrays of strings)
// "_" may stand for "-". Each key is turned into its flag (mirror = true is
// --mirror, hud = false is --no-hud, an array repeats the flag, "" is "not
// given", cancelling a [defaults] value) and checked by the flag's own
// validators (app/run_flags.h); relative paths are relative to the working
// directory, as on the command line. Stream names are URL-safe
// ([A-Za-z0-9_-], 1..64 characters); streams keep the file's order. Every
// error reads "FILE:LINE:COL: streams.NAME.KEY: what is wrong" (server.KEY,
// defaults.KEY, or the table's own name for a table-level error).
//
// Thread-safety: plain values and pure functions; LoadConfig reads the file
// and touches nothing else.
#pragma once

#include <string>
#include <string_view>
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
// unknown table or key, a key in the wrong table, a value of the wrong type
// or one a validator refuses, a bad or duplicate stream name, no stream at
// all, two streams writing the same bus. An unreadable file is
// "FILE: cannot read the config file".
Expected<Config> LoadConfig(const std::string& path);

// The stream keys whose values differ between `a` and `b`, for the reload
// log ("detector, quality"); empty if the streams would run the same (names
// are not compared, nor the server keys).
std::string ChangedKeys(const StreamConfig& a, const StreamConfig& b);

// The same for the [server] keys of two configs' Config::server ("port, token").
std::string ChangedServerKeys(const RunOptions& a, const RunOptions& b);

// Where a `run` flag goes in a config file, for "--port cannot be given with
// --config" ("port in [server]", "hud = false in [streams.NAME] (or
// [defaults], ...)"); "" if the flag has no key.
std::string ConfigKeyOfFlag(std::string_view flag);

}  // namespace freshframe::app
