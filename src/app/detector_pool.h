// DetectorPool: the loaded detectors of a process, one per model, shared by
// every stream that names the same model with the same options (one loaded
// cascade or network, one thread, the streams' newest frames in turn: see
// infer/shared_detector.h).
//
// Thread-safety: Bind/Unbind are called from the pipeline's owning thread
// (start-up and config reloads). A Binding must be released (destroyed)
// before the pool; the pool stops a detector when its last binding goes.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "core/expected.h"
#include "infer/detectors.h"
#include "infer/shared_detector.h"

namespace freshframe::app {

class DetectorPool {
 public:
  // One stream's use of a shared detector: removed from it when destroyed.
  class Binding {
   public:
    Binding(std::shared_ptr<infer::SharedDetector> detector, uint64_t id)
        : detector_(std::move(detector)), id_(id) {}
    ~Binding() { detector_->Remove(id_); }
    Binding(const Binding&) = delete;
    Binding& operator=(const Binding&) = delete;
    const infer::SharedDetector& detector() const { return *detector_; }

   private:
    std::shared_ptr<infer::SharedDetector> detector_;
    uint64_t id_;
  };

  // Binds `binding` to the detector for `spec` and `options`, loading it on
  // first use; an Error if it cannot be loaded (names the paths tried). A
  // null result for spec "none".
  Expected<std::unique_ptr<Binding>> Bind(const std::string& spec,
                                          const infer::DetectorOptions& options,
                                          infer::DetectorBinding binding);
  // Detectors loaded now (for the log and tests).
  size_t loaded() const;

 private:
  // By spec and options; weak: a detector lives as long as its bindings.
  std::map<std::string, std::weak_ptr<infer::SharedDetector>> detectors_;
};

// The key under which streams share a detector: the spec and every option
// that changes what it computes.
std::string DetectorKey(const std::string& spec, const infer::DetectorOptions& options);

}  // namespace freshframe::app
