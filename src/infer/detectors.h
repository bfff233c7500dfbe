// The detectors behind `--detector`: OpenCV cascades (Haar/LBP), any ONNX
// model through OpenCV DNN (YOLOv5, YOLOv8/v11, SSD-style outputs), motion
// (MOG2 background subtraction) and motion-gated detection, built from one
// spec string by MakeDetector.
//
// Errors are values: a spec that names a missing file, a model OpenCV cannot
// load or an output layout that is not recognised returns an Error whose
// message says what was tried or found; nothing throws out of this module.
//
// Thread-safety: a Detector object is used by one thread at a time (its
// DetectorStage's). Factories may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/expected.h"
#include "infer/infer.h"

namespace freshframe::infer {

// Options of every detector kind; each kind reads its own fields.
struct DetectorOptions {
  // Cascades (faces, cascade:NAME|PATH).
  double scale_factor = 1.1;
  int min_neighbours = 3;
  int min_size = 30;    // smallest object, px (in the frame as given)
  int max_width = 640;  // cascades/motion: frames wider are scaled down first
  // dnn:MODEL.onnx
  std::string labels_path;  // one class name per line; empty: "class<N>"
  int input_width = 640;    // network input (letterboxed into)
  int input_height = 640;
  float confidence = 0.25F;  // minimum score kept
  float nms = 0.45F;         // IoU threshold of per-class non-maximum suppression
  // motion
  int min_area = 500;             // smallest moving region reported, px^2 of the frame
  int warmup_frames = 30;         // frames MOG2 learns from before reporting
  double motion_gate_pad = 0.25;  // motion+X: crop around motion grows by this share
};

// Turns a spec into a detector:
//   faces | cascade:<name or path> | dnn:<model.onnx> | motion | motion+<spec> | none
// `none` returns a null pointer (no detection stage).
Expected<std::unique_ptr<Detector>> MakeDetector(std::string_view spec,
                                                 const DetectorOptions& options);

// Cascade by Debian opencv-data name ("upperbody", "frontalface_default",
// "haarcascade_eye", "lbpcascade_frontalface", ...) or by path. The label is
// the cascade's short name ("face" for the frontal-face cascades).
Expected<std::unique_ptr<Detector>> MakeCascadeDetector(const std::string& name_or_path,
                                                        const DetectorOptions& options);
// Every cascade name the search directories hold (for --help and tests).
std::vector<std::string> ListCascadeNames();

// OpenCV DNN on an ONNX model; the output layout is recognised from the
// output tensor's shape (YOLOv5 [1,N,5+C], YOLOv8/v11 [1,4+C,N], SSD-style
// [1,1,N,7]).
Expected<std::unique_ptr<Detector>> MakeDnnDetector(const std::string& model_path,
                                                    const DetectorOptions& options);

// MOG2 background subtraction: one Detection ("motion") per moving region.
std::unique_ptr<Detector> MakeMotionDetector(const DetectorOptions& options);

// Runs `inner` only on frames with motion, on crops around the moving
// regions (boxes mapped back to frame coordinates).
std::unique_ptr<Detector> MakeMotionGatedDetector(std::unique_ptr<Detector> inner,
                                                  const DetectorOptions& options);

}  // namespace freshframe::infer
