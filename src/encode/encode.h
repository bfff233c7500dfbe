// JPEG encoding (TurboJPEG) and the encoder stage. Decoding is jpeg/jpeg.h.
//
// JpegEncoder wraps one TurboJPEG handle: use it from one thread at a time.
// EncoderStage owns a thread that takes the newest annotated frame, encodes
// it once, and publishes the result as a shared, immutable EncodedFrame that
// every client sends as is (one encode per frame, however many viewers).
// It encodes only while Demand says someone watches.
// VariantEncoders does the same for pixel variants of the stream (mirrored
// and/or scaled down): one encode per frame for each variant in use, on one
// thread of its own, never one per viewer. Given a LiveSettings, both take
// the JPEG quality from it for every frame, so a change applies from the
// next frame.
//
// Thread-safety: EncodedFrame is immutable once published. EncoderStage's
// and VariantEncoders' Start/Stop are called from the owning thread; they read
// `annotated` and write `encoded` (or call sinks), all thread-safe, and read
// the LiveSettings given (which must outlive them).
// VariantEncoders::Add and VariantEncoder's getters may be called from any
// thread.
#pragma once

#include <atomic>
#include <compare>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "core/demand.h"
#include "core/expected.h"
#include "core/frame.h"
#include "core/latest_slot.h"
#include "core/live_settings.h"
#include "core/metrics.h"
#include "core/stage_thread.h"

namespace freshframe::encode {

// How the bytes of an EncodedFrame are coded. Every JPEG stands alone; an
// H.264 access unit that is not an IDR refers to earlier ones (keyframe
// false), so it is useless to a viewer who missed any since the last IDR.
enum class Codec { kJpeg, kH264 };

// One encoded picture, shared by everyone who sends it (immutable once
// published). Transports add their own framing around `bytes` (http/fanout.h).
struct EncodedFrame {
  FrameMeta meta;                    // stamps.encode_us set
  std::vector<unsigned char> bytes;  // a whole JPEG, or one H.264 access unit (Annex B)
  Codec codec = Codec::kJpeg;
  bool keyframe = true;  // decodable without any earlier frame (an IDR for H.264)
  // H.264: the access unit's number in its encoder's output, consecutive from
  // 1 across encoder restarts (a restart begins with an IDR). A viewer that
  // sees a gap has missed a reference. 0 for JPEG.
  uint64_t sequence = 0;
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
  // For the next Encode; clamped to 1..100.
  void set_quality(int quality);

 private:
  void* handle_;  // tjhandle
  int quality_;
};

class EncoderStage {
 public:
  // `settings` (optional): its quality() replaces `quality` from the first
  // frame on.
  EncoderStage(int quality, LatestSlot<FramePtr>& annotated, LatestSlot<EncodedFramePtr>& encoded,
               const Demand& demand, Metrics& metrics, const LiveSettings* settings = nullptr);
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
  const LiveSettings* settings_;
  StageMetrics& metrics_;
  StageThread thread_;  // last: joined before the members it uses go
};

// A pixel variant of the stream.
struct VariantKey {
  bool mirror = false;  // flipped horizontally (a selfie view)
  int width = 0;        // scaled down to this width, aspect kept; 0: the frame's own

  bool is_default() const { return !mirror && width == 0; }
  auto operator<=>(const VariantKey&) const = default;
};

// `image` as variant `key`: scaled first, then mirrored. A width of 0 or >=
// the image's keeps its size. If the image carries a timecode strip and is
// scaled, the strip is drawn again at the new width (timecode::Write), so it
// stays readable down to timecode::kMinWidth; narrower frames lose it.
// Mirroring mirrors the strip (timecode::Read reports that; a scaled mirrored
// strip is drawn again mirrored).
// Returns `image` itself when there is nothing to do (read it only), else
// `buffer`, written with the variant. `buffer` is the caller's own, reused
// between calls: it must share pixels with nothing else. `image` is never
// written, and `buffer` never made to share its pixels.
const cv::Mat& MakeVariant(const cv::Mat& image, const VariantKey& key, cv::Mat& buffer);

// Receives each frame of one variant on the VariantEncoders thread. Must not
// block: it hands the frame on (http wraps it into a stream part).
using VariantSink = std::function<void(const EncodedFramePtr&)>;

// One variant in use. Shared by whoever asked for it; encoding stops once
// the last shared_ptr is gone.
class VariantEncoder {
 public:
  VariantEncoder(VariantKey key, VariantSink sink) : key_(key), sink_(std::move(sink)) {}
  VariantEncoder(const VariantEncoder&) = delete;
  VariantEncoder& operator=(const VariantEncoder&) = delete;

  const VariantKey& key() const { return key_; }
  // Frames encoded so far, and the size of the last one (0 before).
  uint64_t encoded_frames() const { return encoded_.load(std::memory_order_relaxed); }
  int width() const { return width_.load(std::memory_order_relaxed); }
  int height() const { return height_.load(std::memory_order_relaxed); }

 private:
  friend class VariantEncoders;
  const VariantKey key_;
  const VariantSink sink_;
  // Relaxed: statistics, read independently of anything else.
  std::atomic<uint64_t> encoded_{0};
  std::atomic<int> width_{0};
  std::atomic<int> height_{0};
  // Only the VariantEncoders thread touches these.
  uint64_t last_version_ = 0;  // newest annotated frame encoded
  cv::Mat pixels_;             // MakeVariant's buffer: this variant's alone
};

// The encoders of every variant in use: one thread that takes the newest
// annotated frame (newest-only, like EncoderStage) and encodes it once per
// variant added, in turn. It records into the stage "encode_variants".
class VariantEncoders {
 public:
  // `settings` (optional): as for EncoderStage.
  VariantEncoders(int quality, LatestSlot<FramePtr>& annotated, Metrics& metrics,
                  const LiveSettings* settings = nullptr);
  VariantEncoders(const VariantEncoders&) = delete;
  VariantEncoders& operator=(const VariantEncoders&) = delete;

  void Start();
  void Stop();

  // Starts encoding variant `key` of every annotated frame from the next one
  // (or the current one, if no new frame comes), handing each to `sink`,
  // until the returned pointer and its copies are gone. Every call adds an
  // encoder: callers keep one per key (http does). The sink may still be
  // called once while the last pointer is being released.
  std::shared_ptr<VariantEncoder> Add(VariantKey key, VariantSink sink);
  // Variants being encoded.
  size_t active() const;

 private:
  void Run(std::stop_token stop);
  // The live encoders (dropping released ones).
  std::vector<std::shared_ptr<VariantEncoder>> Live();
  void Encode(VariantEncoder& variant, const Frame& frame, uint64_t version);

  JpegEncoder encoder_;
  LatestSlot<FramePtr>& annotated_;
  StageMetrics& metrics_;
  const LiveSettings* settings_;
  mutable std::mutex mutex_;
  std::vector<std::weak_ptr<VariantEncoder>> variants_;
  StageThread thread_;  // last: joined before the members it uses go
};

}  // namespace freshframe::encode
