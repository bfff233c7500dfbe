// Pipeline: every stage of `freshframe run` wired together in one process:
//   grabber -> [raw] -> detector -> [detections] -> annotator -> [annotated]
//   -> encoder -> [jpeg] -> HTTP server
// where [x] is a LatestSlot (newest-only hand-over).
//
// Thread-safety: Create/Stop/url are called from one thread. The pipeline
// owns every stage, slot and the server; Stop (or the destructor) stops the
// server first, then the stages, and joins all their threads.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "app/app.h"
#include "core/expected.h"

namespace freshframe::app {

class Pipeline {
 public:
  // Opens the source, loads the detector, binds the server and starts every
  // stage. Errors name what failed (source, cascade paths, address in use).
  static Expected<std::unique_ptr<Pipeline>> Create(const RunOptions& options);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

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
