// The freshframe command: subcommands, their options, and how each maps to
// the library. main() only calls Main().
//
// Thread-safety: Main and the Run* functions are called once, from the main
// thread. RunPipeline blocks SIGINT/SIGTERM in every thread it starts and
// waits for them itself.
#pragma once

#include <string>
#include <vector>

#include "infer/detectors.h"

namespace freshframe::app {

// Which stages a process runs: all of them (`run`), or one part of the
// pipeline joined to the others by named buses (`capture`, `infer`, `serve`).
enum class Role { kRun, kCapture, kInfer, kServe };

struct RunOptions {
  Role role = Role::kRun;
  // run --config FILE: the streams and server settings come from FILE
  // (app/config.h), reloaded on SIGHUP; the other run flags are not allowed.
  std::string config_file;
  std::string source = "pattern";
  int width = 0;  // --size WxH (cameras)
  int height = 0;
  double source_fps = 0;  // --fps (cameras)
  std::string fourcc;     // --fourcc (cameras)
  bool loop = false;      // --loop (files)
  std::string rtsp_transport = "tcp";
  // Credentials for an http:// source, sent as "Authorization: Bearer"
  // (--source-token, or the first line of --source-token-file); never shown.
  std::string source_token;
  std::string source_token_file;
  // faces | cascade:NAME|PATH | dnn:MODEL.onnx | motion | motion+SPEC |
  // bus:NAME (sets published by another process) | none
  std::string detector = "faces";
  // Detections this old (seconds) are not drawn: computed on a frame captured
  // that long before the frame at hand, or (bus:NAME) not replaced for that long.
  double detections_max_age = 1.0;
  std::string cascade;               // --cascade FILE: same as --detector cascade:FILE
  infer::DetectorOptions detection;  // the detectors' own options (infer/detectors.h)
  bool hud = true;                   // draw fps/latency figures on the stream
  std::string overlay = "latest";    // latest | inferred
  bool mirror = false;               // flip the annotated stream horizontally
  int quality = 85;
  // H.264 out (h264/h264.h): a libavcodec H.264 encoder, or "none" (no
  // /ws/h264, /stream.h264, /whep); its preset; kbit/s (0: constant quality
  // with a VBV cap); the periodic IDR in seconds (0: only on request); and
  // WebRTC viewers at most per stream.
  std::string h264_encoder = "libx264";
  std::string h264_preset = "superfast";
  int h264_bitrate = 0;
  double gop = 2.0;
  int max_webrtc_peers = 16;
  // Outputs to other engines from that same encode (egress/egress.h): RTP
  // to HOST:PORT, RTCP on PORT+1 (a Janus streaming mountpoint; repeatable,
  // one per Janus box); RTMP push to rtmp://HOST/APP/KEY (nginx-rtmp, which
  // writes HLS; repeatable); both per stream. And the process's RTSP server
  // port (0: none): rtsp://BIND:PORT/stream and /streams/NAME, with the
  // HTTP credentials.
  std::vector<std::string> rtp_out;
  std::vector<std::string> rtmp_out;
  int rtsp_port = 0;
  std::string bind = "127.0.0.1";
  int port = 8080;
  int threads = 0;  // HTTP I/O threads; 0: one per core
  // Access: the token (--token, or read from --token-file; sent as Bearer or
  // ?token=) and/or Basic "user:pass"; never logged. Limits: 0 is no limit.
  std::string token;
  std::string token_file;
  std::string basic_auth;
  int max_clients = 1000;  // streaming clients
  int max_variants = 4;    // distinct pixel variants (?mirror, ?width) at a time
  int max_connections_per_address = 64;
  // Browser-origin policy (http/origin_policy.h): pages of these origins may
  // use the server ("*": any); these Host names are answered besides IP
  // literals and localhost ("any": all).
  std::vector<std::string> allow_origins;
  std::vector<std::string> allow_hosts;

  int detector_threads = 1;  // OpenCV threads for the detector (process-wide: see Config)
  // --detect-fps: this stream's detections per second at most (0: as many as
  // the detector manages). Streams sharing one detector take turns (newest
  // frame of each, round robin), each capped by its own rate.
  double detect_fps = 0;
  std::string in_bus;        // infer, serve: read frames from this bus
  std::string out_bus;       // capture, infer: publish frames on this bus
  std::string publish;       // run: also publish NAME (annotated), NAME.raw
  uint32_t bus_mode = 0600;  // file mode of buses this process creates
  uint32_t bus_slots = 8;    // slots of buses this process creates
  // --bus-allow-owner UID|any: also use buses owned by this uid (or anyone).
  int64_t bus_allow_owner = -1;  // -1: only this user's buses
  bool bus_allow_any_owner = false;
};

struct ProbeCommandOptions {
  std::string url;
  double seconds = 5.0;
  int clients = 1;
  bool json = false;
};

// Exit status: 0 ok, 1 runtime failure (cannot open, cannot listen),
// 2 bad command line.
int Main(int argc, char** argv);

// Blocks (or unblocks) SIGINT, SIGTERM and SIGHUP in the calling thread, and
// so in every thread it starts later. Main blocks them first thing, before
// anything may start a thread (checking a config can), so that only the
// pipeline's watchdog receives them; commands that want their default
// action (probe, check-config) unblock them again.
void BlockPipelineSignals(bool block);

// Runs the stages of options.role until SIGINT/SIGTERM; SIGHUP reloads
// options.config_file.
int RunPipeline(const RunOptions& options);
int RunProbeCommand(const ProbeCommandOptions& options);

}  // namespace freshframe::app
