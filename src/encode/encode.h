// JPEG encoding (TurboJPEG) and the encoder stage.
//
// JpegEncoder wraps one TurboJPEG handle: use it from one thread at a time.
// EncoderStage owns a thread that takes the newest annotated frame, encodes
// it once, and publishes the result as a shared, immutable EncodedFrame that
// every client sends as is (one encode per frame, however many viewers).
// It encodes only while Demand says someone watches.
//
// Thread-safety: EncodedFrame is immutable once published. EncoderStage's
// members are called from the owning thread; it reads `annotated` and writes
// `encoded`, both thread-safe slots.
#pragma once

#include <cstdint>
#include <memory>
#include <stop_token>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "core/demand.h"
#include "core/expected.h"
#include "core/frame.h"
#include "core/latest_slot.h"
#include "core/stage_thread.h"
#include "core/metrics.h"

namespace freshframe::encode {

struct EncodedFrame {
  FrameMeta meta;                 // stamps.encode_us set
  std::vector<unsigned char> jpeg;
};
using EncodedFramePtr = std::shared_ptr<const EncodedFrame>;

class JpegEncoder {
 public:
  explicit JpegEncoder(int quality);  // quality 1..100
  ~JpegEncoder();
  JpegEncoder(const JpegEncoder&) = delete;
  JpegEncoder& operator=(const JpegEncoder&) = delete;

  // Encodes an 8-bit BGR or gray image (4:2:0 chroma for colour).
  Expected<std::vector<unsigned char>> Encode(const cv::Mat& image);
  int quality() const { return quality_; }

 private:
  void* handle_;  // tjhandle
  int quality_;
};

// Decodes a JPEG into BGR (used by snapshots in tests and by tools).
Expected<cv::Mat> DecodeJpeg(const unsigned char* data, size_t size);

class EncoderStage {
 public:
  EncoderStage(int quality, LatestSlot<FramePtr>& annotated, LatestSlot<EncodedFramePtr>& encoded,
               const Demand& demand, Metrics& metrics);
  EncoderStage(const EncoderStage&) = delete;
  EncoderStage& operator=(const EncoderStage&) = delete;

  void Start();
  void Stop();

 private:
  void Run(std::stop_token stop);

  JpegEncoder encoder_;
  LatestSlot<FramePtr>& annotated_;
  LatestSlot<EncodedFramePtr>& encoded_;
  const Demand& demand_;
  StageMetrics& metrics_;
  StageThread thread_;  // last: joined before the members it uses go
};

}  // namespace freshframe::encode
