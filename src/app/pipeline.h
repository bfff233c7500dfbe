// Pipeline: the streams of a process, the detectors they share and the HTTP
// server that serves them. `run` builds one Stream per configured camera
// (app/config.h; one named "default" from the command line); `capture`,
// `infer` and `serve` build the one stream of their part of the pipeline.
//
// Thread-safety: Create/Reload/Stop/url are called from one thread. The
// pipeline owns the server, the streams and the detector pool; Stop (or the
// destructor) stops the server first, then the streams, and joins all their
// threads.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "app/app.h"
#include "app/config.h"
#include "core/expected.h"

namespace freshframe::app {

class Pipeline {
 public:
  // Opens the sources, loads the detectors, binds the server and starts
  // every stage. Errors name what failed (source, cascade paths, address in
  // use). One stream (options.config_file empty): a source that cannot be
  // opened is an error; several: that stream starts reconnecting.
  static Expected<std::unique_ptr<Pipeline>> Create(const RunOptions& options);
  static Expected<std::unique_ptr<Pipeline>> Create(const Config& config);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Applies a reloaded config (SIGHUP): streams whose settings changed
  // restart, new ones start, removed ones stop; the others, and their
  // viewers, are not touched. Server settings cannot change while running:
  // a change is logged and left for a restart. Returns a one-line summary.
  std::string Reload(const Config& config);

  std::string url() const;
  // Stops everything and joins every thread. `on_stage`, if given, is called
  // with the name of each part ("server", "grabber", ...) before it is
  // stopped, so that a watchdog can say which one is stuck.
  void Stop(const std::function<void(const char* stage)>& on_stage = {});

  struct Parts;

 private:
  explicit Pipeline(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

}  // namespace freshframe::app
