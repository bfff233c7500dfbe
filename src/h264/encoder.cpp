// H264Encoder over libavcodec: libx264 set for zero added delay, or any
// other libavcodec H.264 encoder through the same generic fields.
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <string>

#include <opencv2/core.hpp>

#include "core/timecode.h"
#include "h264/h264.h"

namespace freshframe::h264 {
namespace {

std::string AvError(int code) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, text, sizeof text);
  return text;
}

bool IsH264Encoder(const AVCodec* codec) {
  return codec->id == AV_CODEC_ID_H264 && av_codec_is_encoder(codec) != 0;
}

// The reference frame area for max_kbps (the VBV cap with crf): 1280x720.
constexpr double kReferenceArea = 1280.0 * 720.0;

// The VBV buffer, in frames at the cap. One frame (the least x264 takes)
// starves IDRs at low rates: at 300 kbit/s, 640x480, an IDR gets ~1.2 KB,
// the whole picture at QP 51 and the timecode strip unreadable on 9-40% of
// frames even with its rows protected; two frames (67 ms at 30 fps) keep
// it readable on every frame. Measured by encoder_test.cpp
// (TimecodeSurvives*); docs/architecture.md, "H.264 encoder".
constexpr double kBufferFrames = 2.0;

// The strip's QP offset, as a fraction of libx264's QP range (51): -0.7 is
// about -35 QP on the strip's one or two macroblock rows (3-7% of a frame's
// macroblocks). Measured with kBufferFrames (same test): -0.12 and -0.25
// lost a frame or two in some runs, and -0.4 one frame in 1 run of 6 at
// 300 kbit/s (4 of 180 under TSan); -0.7 read every frame in 20 of 20.
constexpr AVRational kStripQOffset{-70, 100};

struct CodecContextDeleter {
  void operator()(AVCodecContext* context) const { avcodec_free_context(&context); }
};
struct FrameDeleter {
  void operator()(AVFrame* frame) const { av_frame_free(&frame); }
};
struct PacketDeleter {
  void operator()(AVPacket* packet) const { av_packet_free(&packet); }
};
struct SwsDeleter {
  void operator()(SwsContext* context) const { sws_freeContext(context); }
};

// The encoder's input format: YUV 4:2:0 planar where it takes it (libx264
// does), else NV12 (most hardware encoders), else its first one.
AVPixelFormat InputFormat(const AVCodec* codec) {
  if (codec->pix_fmts == nullptr) return AV_PIX_FMT_YUV420P;
  for (const AVPixelFormat wanted : {AV_PIX_FMT_YUV420P, AV_PIX_FMT_NV12}) {
    for (const AVPixelFormat* format = codec->pix_fmts; *format != AV_PIX_FMT_NONE; ++format) {
      if (*format == wanted) return wanted;
    }
  }
  return codec->pix_fmts[0];
}

// The pixel format of an 8-bit OpenCV image (BGR, gray or BGRA).
AVPixelFormat SourceFormat(const cv::Mat& image) {
  if (image.depth() != CV_8U) return AV_PIX_FMT_NONE;
  switch (image.channels()) {
    case 1:
      return AV_PIX_FMT_GRAY8;
    case 3:
      return AV_PIX_FMT_BGR24;
    case 4:
      return AV_PIX_FMT_BGRA;
    default:
      return AV_PIX_FMT_NONE;
  }
}

}  // namespace

std::vector<std::string> AvailableEncoders() {
  std::vector<std::string> names;
  void* state = nullptr;
  while (const AVCodec* codec = av_codec_iterate(&state)) {
    if (IsH264Encoder(codec)) names.emplace_back(codec->name);
  }
  return names;
}

Expected<bool> CheckEncoder(std::string_view name) {
  const std::vector<std::string> names = AvailableEncoders();
  if (std::find(names.begin(), names.end(), name) != names.end()) return true;
  std::string list;
  for (const std::string& available : names) list += (list.empty() ? "" : ", ") + available;
  return Error{"H.264 encoder '" + std::string(name) +
               "' is not available; this machine has: " + (list.empty() ? "none" : list)};
}

struct H264Encoder::Impl {
  std::unique_ptr<AVCodecContext, CodecContextDeleter> context;
  std::unique_ptr<AVFrame, FrameDeleter> frame;
  std::unique_ptr<AVPacket, PacketDeleter> packet;
  std::unique_ptr<SwsContext, SwsDeleter> sws;  // remade if the input's format changes
  AVPixelFormat sws_source = AV_PIX_FMT_NONE;
  int64_t pts = 0;
};

H264Encoder::H264Encoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
H264Encoder::~H264Encoder() = default;

int H264Encoder::width() const { return impl_->context->width; }
int H264Encoder::height() const { return impl_->context->height; }

Expected<std::unique_ptr<H264Encoder>> H264Encoder::Create(const EncoderOptions& options, int width,
                                                           int height, double fps) {
  if (auto known = CheckEncoder(options.encoder); !known) return known.error();
  // H.264 in 4:2:0 needs even sizes; odd frames lose their last column/row.
  width &= ~1;
  height &= ~1;
  if (width < 2 || height < 2) {
    return Error{"H.264 encoder: frame too small (" + std::to_string(width) + "x" +
                 std::to_string(height) + ")"};
  }
  const AVCodec* codec = avcodec_find_encoder_by_name(options.encoder.c_str());
  if (codec == nullptr) return Error{"H.264 encoder '" + options.encoder + "' not found"};
  const bool x264 = options.encoder == "libx264";
  if (!(fps > 0 && fps <= 1000)) fps = 30;

  auto impl = std::make_unique<Impl>();
  impl->context.reset(avcodec_alloc_context3(codec));
  impl->frame.reset(av_frame_alloc());
  impl->packet.reset(av_packet_alloc());
  if (!impl->context || !impl->frame || !impl->packet) return Error{"H.264 encoder: out of memory"};
  AVCodecContext& c = *impl->context;
  c.width = width;
  c.height = height;
  c.pix_fmt = InputFormat(codec);
  c.framerate = av_d2q(fps, 1001000);
  c.time_base = av_inv_q(c.framerate);  // one tick per frame: pts = frame index
  c.sample_aspect_ratio = AVRational{1, 1};
  // Zero added delay: no B-frames (a frame would wait for a later one), no
  // GOP structure of the encoder's own (the stage makes IDRs by time and on
  // request), slice threads only (frame threads hold frames back).
  c.max_b_frames = 0;
  c.gop_size = x264 ? -1 : 1 << 30;  // libx264: keyint set below
  c.thread_count = std::max(1, options.threads);
  c.thread_type = FF_THREAD_SLICE;
  c.flags |= AV_CODEC_FLAG_LOW_DELAY;
  // Annex B with SPS/PPS before every IDR: never AV_CODEC_FLAG_GLOBAL_HEADER
  // (which moves them out of band).

  // Rate control. A VBV buffer of kBufferFrames frames at the cap: no frame
  // may be much bigger than the link carries in that time, so a big IDR
  // cannot queue the frames after it for long.
  const double area_scale = static_cast<double>(width) * height / kReferenceArea;
  const int64_t cap_bps =
      options.bitrate_kbps > 0
          ? int64_t{options.bitrate_kbps} * 1000
          : std::max<int64_t>(100'000, std::llround(options.max_kbps * 1000.0 * area_scale));
  const double buffer_bits =
      std::min(static_cast<double>(cap_bps) / fps * kBufferFrames, double{INT32_MAX});
  // Encoders without crf (all but libx264) aim at the cap itself.
  if (options.bitrate_kbps > 0 || !x264) c.bit_rate = cap_bps;
  c.rc_max_rate = cap_bps;
  c.rc_buffer_size = static_cast<int>(buffer_bits);

  if (x264) {
    void* priv = c.priv_data;
    const auto set = [&](const char* key, const std::string& value) -> Expected<bool> {
      const int rc = av_opt_set(priv, key, value.c_str(), 0);
      if (rc < 0) {
        return Error{"libx264: cannot set " + std::string(key) + "=" + value + ": " + AvError(rc)};
      }
      return true;
    };
    // tune zerolatency: no lookahead, no mb-tree, no frame threads, no
    // B-frames; scenecut=0: no IDR of the encoder's own on a scene change;
    // forced-idr: a frame given as I becomes an IDR (a join point); log=1:
    // warnings and errors only (not x264's banner and statistics).
    for (const auto& [key, value] :
         {std::pair<const char*, std::string>{"preset", options.preset},
          {"tune", "zerolatency"},
          {"profile", "main"},
          {"forced-idr", "1"},
          {"x264-params",
           std::string("scenecut=0:keyint=infinite:repeat-headers=1:annexb=1:log=1")}}) {
      if (auto ok = set(key, value); !ok) return ok.error();
    }
    if (options.bitrate_kbps <= 0) {
      if (auto ok = set("crf", std::to_string(std::clamp(options.crf, 0, 51))); !ok) {
        return ok.error();
      }
    }
  }

  if (const int rc = avcodec_open2(&c, codec, nullptr); rc < 0) {
    return Error{"cannot open H.264 encoder '" + options.encoder + "' for " +
                 std::to_string(width) + "x" + std::to_string(height) + ": " + AvError(rc)};
  }

  AVFrame& frame = *impl->frame;
  frame.format = c.pix_fmt;
  frame.width = width;
  frame.height = height;
  if (const int rc = av_frame_get_buffer(&frame, 0); rc < 0) {
    return Error{"H.264 encoder: cannot allocate a frame: " + AvError(rc)};
  }
  // Keep the timecode strip readable at low bitrates: its macroblock rows
  // get a lower QP. libx264 applies it only with adaptive quantisation,
  // which its ultrafast preset turns off (it would warn and skip it).
  const int strip_rows = timecode::StripRows(width);
  if (options.protect_timecode && strip_rows > 0 && !(x264 && options.preset == "ultrafast")) {
    AVFrameSideData* side = av_frame_new_side_data(&frame, AV_FRAME_DATA_REGIONS_OF_INTEREST,
                                                   sizeof(AVRegionOfInterest));
    if (side == nullptr) return Error{"H.264 encoder: out of memory"};
    auto* roi = reinterpret_cast<AVRegionOfInterest*>(side->data);
    roi->self_size = sizeof(AVRegionOfInterest);
    roi->top = 0;
    roi->bottom = std::min(strip_rows, height);
    roi->left = 0;
    roi->right = width;
    roi->qoffset = kStripQOffset;
  }
  return std::unique_ptr<H264Encoder>(new H264Encoder(std::move(impl)));
}

Expected<AccessUnit> H264Encoder::Encode(const cv::Mat& image, bool idr) {
  Impl& impl = *impl_;
  AVCodecContext& c = *impl.context;
  AVFrame& frame = *impl.frame;
  const AVPixelFormat source = SourceFormat(image);
  if (source == AV_PIX_FMT_NONE) {
    return Error{"H.264 encoder needs an 8-bit BGR, BGRA or gray image"};
  }
  // Odd sizes were cropped by one at Create: anything else is another size.
  if ((image.cols & ~1) != c.width || (image.rows & ~1) != c.height) {
    return Error{"H.264 encoder opened for " + std::to_string(c.width) + "x" +
                 std::to_string(c.height) + ", given " + std::to_string(image.cols) + "x" +
                 std::to_string(image.rows)};
  }
  if (!impl.sws || impl.sws_source != source) {
    impl.sws.reset(sws_getContext(c.width, c.height, source, c.width, c.height, c.pix_fmt,
                                  SWS_POINT, nullptr, nullptr, nullptr));
    impl.sws_source = source;
    if (!impl.sws) {
      return Error{std::string("H.264 encoder: no conversion from ") + av_get_pix_fmt_name(source) +
                   " to " + av_get_pix_fmt_name(c.pix_fmt)};
    }
  }
  // The encoder may still hold a reference to the last picture's buffers.
  if (const int rc = av_frame_make_writable(&frame); rc < 0) {
    return Error{"H.264 encoder: " + AvError(rc)};
  }
  const uint8_t* const planes[1] = {image.data};
  const int strides[1] = {static_cast<int>(image.step[0])};
  sws_scale(impl.sws.get(), planes, strides, 0, c.height, frame.data, frame.linesize);
  frame.pts = impl.pts++;
  frame.pict_type = idr ? AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
  // Hardware/generic encoders: a key_frame hint as well (libx264 reads
  // pict_type with forced-idr).
  frame.key_frame = idr ? 1 : 0;

  if (const int rc = avcodec_send_frame(&c, &frame); rc < 0) {
    return Error{"H.264 encode failed: " + AvError(rc)};
  }
  AVPacket& packet = *impl.packet;
  const int rc = avcodec_receive_packet(&c, &packet);
  if (rc == AVERROR(EAGAIN)) {
    return Error{"H.264 encoder '" + std::string(c.codec->name) +
                 "' held a frame back (it would add delay)"};
  }
  if (rc < 0) return Error{"H.264 encode failed: " + AvError(rc)};
  AccessUnit unit;
  unit.bytes.assign(packet.data, packet.data + packet.size);
  unit.keyframe = (packet.flags & AV_PKT_FLAG_KEY) != 0;
  av_packet_unref(&packet);
  return unit;
}

}  // namespace freshframe::h264
