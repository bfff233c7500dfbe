// The pusher's thread: connect, wait for an IDR, write FLV packets until an
// error, then back off and connect again. Every libavformat call that may
// block is bounded by Impl::Interrupted (Stop, or the I/O deadline).
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/dict.h>
#include <libavutil/error.h>
#include <libavutil/mem.h>
}

#include "core/clock.h"
#include "rtmp/annexb.h"
#include "rtmp/rtmp.h"

namespace freshframe::rtmp {
namespace {

using namespace std::chrono_literals;
using State = egress::OutputStatus::State;

std::string AvError(int code) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(code, text, sizeof(text));
  return text;
}

// A connection that lasted this long was a success: the next failure
// waits the initial backoff again.
constexpr std::chrono::seconds kLasting{5};
// How long a graceful close (unpublish) may take when stopping.
constexpr std::chrono::milliseconds kCloseTimeout{500};

}  // namespace

struct RtmpPusher::Impl {
  Impl(RtmpOptions opts, egress::SubscribeFn subscribe, Demand& demand,
       h264::KeyframeRequests& keyframes)
      : options(std::move(opts)),
        redacted(RedactUrl(options.url)),
        feed(std::move(subscribe), demand, keyframes),
        status("rtmp", redacted) {}

  // One publish session: an FLV muxer writing into an rtmp:// AVIOContext.
  class Session;

  void Run();
  Expected<std::unique_ptr<Session>> Connect();
  encode::EncodedFramePtr WaitForKeyframe();
  // Waits `wait` unless stopped first; false if stopped.
  bool Sleep(std::chrono::milliseconds wait);
  bool stopping() const {
    // Relaxed: a flag polled by the thread; nothing else is published by it.
    return abort.load(std::memory_order_relaxed);
  }
  // Bounds the next blocking libavformat call(s) to `timeout` from now.
  void SetDeadline(std::chrono::milliseconds timeout) {
    // Relaxed: read by Interrupted on this same thread (libavformat polls it
    // from inside the call).
    deadline_us.store(MonotonicMicros() + timeout.count() * 1000, std::memory_order_relaxed);
  }
  std::string WhyAborted(int code) const;
  static int Interrupted(void* opaque);

  const RtmpOptions options;
  const std::string redacted;
  egress::Feed feed;
  egress::OutputStatus status;

  std::mutex mutex;
  std::condition_variable wake;  // Sleep, woken by Stop
  std::atomic<bool> abort = false;
  // A graceful close while stopping: `abort` no longer interrupts, only
  // the deadline does.
  std::atomic<bool> closing = false;
  std::atomic<int64_t> deadline_us = 0;
  std::atomic<uint64_t> attempts = 0;
  std::thread thread;
};

int RtmpPusher::Impl::Interrupted(void* opaque) {
  const auto* impl = static_cast<const Impl*>(opaque);
  // Relaxed loads: flags polled every ~100 ms by libavformat; they order
  // nothing else.
  if (impl->abort.load(std::memory_order_relaxed) &&
      !impl->closing.load(std::memory_order_relaxed)) {
    return 1;
  }
  return MonotonicMicros() > impl->deadline_us.load(std::memory_order_relaxed) ? 1 : 0;
}

std::string RtmpPusher::Impl::WhyAborted(int code) const {
  if (code != AVERROR_EXIT) return AvError(code);
  if (stopping()) return "stopped";
  return "no progress for " + std::to_string(options.io_timeout.count()) +
         " ms (the engine is not reading)";
}

class RtmpPusher::Impl::Session {
 public:
  explicit Session(Impl& impl) : impl_(impl) {}
  ~Session() { Close(/*graceful=*/false); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Connects (TCP, the RTMP handshake, connect and publish).
  Expected<bool> Open() {
    int code = avformat_alloc_output_context2(&context_, nullptr, "flv", impl_.options.url.c_str());
    if (code < 0 || context_ == nullptr) return Error{"flv muxer: " + AvError(code)};
    context_->interrupt_callback = {&Impl::Interrupted, &impl_};
    AVDictionary* io_options = nullptr;
    // libavformat's own bound on each read/write (microseconds), beside the
    // deadline of the interrupt callback.
    av_dict_set_int(&io_options, "rw_timeout", impl_.options.io_timeout.count() * 1000, 0);
    impl_.SetDeadline(impl_.options.io_timeout);
    code = avio_open2(&context_->pb, impl_.options.url.c_str(), AVIO_FLAG_WRITE,
                      &context_->interrupt_callback, &io_options);
    av_dict_free(&io_options);
    if (code == AVERROR(EIO)) {
      // What libavformat reports when the server hangs up during connect or
      // publish: nginx-rtmp does so for a refused publisher.
      return Error{
          "cannot connect: the server closed the connection (publishing refused? check "
          "the application and the key)"};
    }
    if (code < 0) return Error{"cannot connect: " + impl_.WhyAborted(code)};
    return true;
  }

  // The stream's header from the parameter sets of `idr`, then `idr`.
  Expected<bool> Begin(const encode::EncodedFrame& idr) {
    parameter_sets_ = ParameterSets(idr.bytes);
    if (parameter_sets_.empty()) return Error{"the first IDR carries no SPS/PPS"};
    AVStream* stream = avformat_new_stream(context_, nullptr);
    if (stream == nullptr) return Error{"flv muxer: no memory"};
    AVCodecParameters* par = stream->codecpar;
    par->codec_type = AVMEDIA_TYPE_VIDEO;
    par->codec_id = AV_CODEC_ID_H264;
    // The encoder crops odd sizes by one pixel (h264.h).
    par->width = idr.meta.width & ~1;
    par->height = idr.meta.height & ~1;
    // Annex B extradata: the FLV muxer turns it into the avcC record of the
    // sequence header (ff_isom_write_avcc) and each packet into
    // length-prefixed NAL units.
    par->extradata =
        static_cast<uint8_t*>(av_mallocz(parameter_sets_.size() + AV_INPUT_BUFFER_PADDING_SIZE));
    if (par->extradata == nullptr) return Error{"flv muxer: no memory"};
    std::memcpy(par->extradata, parameter_sets_.data(), parameter_sets_.size());
    par->extradata_size = static_cast<int>(parameter_sets_.size());
    stream->time_base = {1, 1000};
    if (impl_.options.fps > 0) stream->avg_frame_rate = av_d2q(impl_.options.fps, 1000);
    // Each packet goes out at once (latency), not when 32 kB gathered.
    context_->flush_packets = 1;
    AVDictionary* muxer_options = nullptr;
    // RTMP is not seekable: no duration/filesize to patch at the end.
    av_dict_set(&muxer_options, "flvflags", "no_duration_filesize", 0);
    impl_.SetDeadline(impl_.options.io_timeout);
    int code = avformat_write_header(context_, &muxer_options);
    av_dict_free(&muxer_options);
    if (code < 0) return Error{"stream header: " + impl_.WhyAborted(code)};
    header_written_ = true;
    time_base_ = stream->time_base;
    return Write(idr);
  }

  Expected<bool> Write(const encode::EncodedFrame& unit) {
    const int64_t capture_us = unit.meta.stamps.capture_us;
    if (!first_capture_us_) first_capture_us_ = capture_us;
    // Milliseconds (FLV's unit) since the session's first frame; never back
    // and never equal (a stamp repeated or stepped back moves on by 1 ms).
    int64_t ms = (capture_us - *first_capture_us_) / 1000;
    if (last_ms_ && ms <= *last_ms_) ms = *last_ms_ + 1;
    last_ms_ = ms;
    AVPacket* packet = av_packet_alloc();
    if (packet == nullptr || av_new_packet(packet, static_cast<int>(unit.bytes.size())) < 0) {
      av_packet_free(&packet);
      return Error{"no memory for a packet"};
    }
    std::memcpy(packet->data, unit.bytes.data(), unit.bytes.size());
    packet->pts = packet->dts = av_rescale_q(ms, {1, 1000}, time_base_);
    packet->stream_index = 0;
    if (unit.keyframe) packet->flags |= AV_PKT_FLAG_KEY;
    impl_.SetDeadline(impl_.options.io_timeout);
    int code = av_write_frame(context_, packet);
    av_packet_free(&packet);
    if (code >= 0 && context_->pb->error < 0) code = context_->pb->error;
    if (code < 0) {
      failed_ = true;
      return Error{"write: " + impl_.WhyAborted(code)};
    }
    return true;
  }

  // Whether `idr` starts with other parameter sets (a new size): FLV
  // cannot change them within a stream.
  bool NewParameterSets(const encode::EncodedFrame& idr) const {
    std::vector<unsigned char> sets = ParameterSets(idr.bytes);
    return !sets.empty() && sets != parameter_sets_;
  }

  // Graceful: the trailer and the unpublish go out (bounded by the
  // deadline); otherwise everything is dropped at once.
  void Close(bool graceful) {
    if (context_ == nullptr) return;
    if (graceful && !failed_) {
      impl_.closing.store(true, std::memory_order_relaxed);  // relaxed: see Interrupted
      impl_.SetDeadline(
          std::min(impl_.options.io_timeout,
                   std::chrono::duration_cast<std::chrono::milliseconds>(kCloseTimeout)));
      if (header_written_) av_write_trailer(context_);
    } else {
      // An expired deadline: rtmp's close (deleteStream) gives up at once.
      impl_.deadline_us.store(0, std::memory_order_relaxed);
    }
    avio_closep(&context_->pb);
    avformat_free_context(context_);
    context_ = nullptr;
    impl_.closing.store(false, std::memory_order_relaxed);
  }

 private:
  Impl& impl_;
  AVFormatContext* context_ = nullptr;
  std::vector<unsigned char> parameter_sets_;
  AVRational time_base_{1, 1000};
  std::optional<int64_t> first_capture_us_;
  std::optional<int64_t> last_ms_;
  bool header_written_ = false;
  bool failed_ = false;
};

bool RtmpPusher::Impl::Sleep(std::chrono::milliseconds wait) {
  std::unique_lock lock(mutex);
  return !wake.wait_for(lock, wait, [&] { return stopping(); });
}

encode::EncodedFramePtr RtmpPusher::Impl::WaitForKeyframe() {
  while (!stopping()) {
    // The feed gives an IDR first after Start/Restart; the check is a guard.
    encode::EncodedFramePtr unit = feed.Next(200ms);
    if (unit && unit->keyframe) return unit;
  }
  return nullptr;
}

Expected<std::unique_ptr<RtmpPusher::Impl::Session>> RtmpPusher::Impl::Connect() {
  attempts.fetch_add(1, std::memory_order_relaxed);  // relaxed: a counter for stats
  auto session = std::make_unique<Session>(*this);
  Expected<bool> opened = session->Open();
  if (!opened) return opened.error();
  return session;
}

void RtmpPusher::Impl::Run() {
  egress::Backoff backoff;
  encode::EncodedFramePtr pending;  // an IDR with new parameter sets, for the next session
  std::string warned;  // the error last logged as a warning, in this streak of failures
  while (!stopping()) {
    status.Set(State::kConnecting);
    std::string error;
    int64_t connected_us = 0;
    bool new_parameters = false;  // the session ended for a new size, not an error
    {
      Expected<std::unique_ptr<Session>> session = Connect();
      if (session) {
        // What queued while connecting is stale: start at a fresh IDR
        // (unless the one that made us reconnect is at hand).
        if (!pending) feed.Restart(h264::KeyReason::kJoin);
        encode::EncodedFramePtr unit = pending ? std::move(pending) : WaitForKeyframe();
        if (unit == nullptr) break;  // stopped
        Expected<bool> written = (*session)->Begin(*unit);
        if (written) {
          status.CountSent(unit->bytes.size(), true);
          status.Set(State::kConnected);
          connected_us = MonotonicMicros();
          spdlog::info("rtmp: pushing to {} ({}x{})", redacted, unit->meta.width & ~1,
                       unit->meta.height & ~1);
          warned.clear();
          while (!stopping()) {
            unit = feed.Next(200ms);
            if (unit == nullptr) continue;
            if (unit->keyframe && (*session)->NewParameterSets(*unit)) {
              pending = std::move(unit);
              new_parameters = true;
              break;
            }
            written = (*session)->Write(*unit);
            if (!written) break;
            status.CountSent(unit->bytes.size(), unit->keyframe);
          }
        }
        if (!written) error = written.error().message;
        (*session)->Close(/*graceful=*/written.ok());
      } else {
        error = session.error().message;
        // Stale after the backoff: the next session starts at a fresh IDR.
        pending = nullptr;
      }
    }
    if (stopping()) break;
    if (new_parameters) {
      spdlog::info("rtmp: {}: new stream parameters (size), reconnecting", redacted);
      continue;
    }
    if (connected_us != 0 && MonotonicMicros() - connected_us >= kLasting.count() * 1'000'000) {
      backoff.Reset();
    }
    const std::chrono::milliseconds wait = backoff.Next();
    status.Set(State::kRetrying, error);
    // A new error is a warning; the same one again, while retrying, is not.
    if (error != warned) {
      spdlog::warn("rtmp: {}: {}; retrying in {} ms", redacted, error, wait.count());
      warned = error;
    } else {
      spdlog::debug("rtmp: {}: {}; retrying in {} ms", redacted, error, wait.count());
    }
    if (!Sleep(wait)) break;
  }
}

RtmpPusher::RtmpPusher(RtmpOptions options, egress::SubscribeFn subscribe, Demand& demand,
                       h264::KeyframeRequests& keyframes)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(subscribe), demand, keyframes)) {}

RtmpPusher::~RtmpPusher() { Stop(); }

void RtmpPusher::Start() {
  if (impl_->thread.joinable()) return;
  impl_->abort.store(false, std::memory_order_relaxed);  // relaxed: the thread starts after
  impl_->feed.Start();
  impl_->thread = std::thread([impl = impl_.get()] { impl->Run(); });
}

void RtmpPusher::Stop() {
  if (!impl_->thread.joinable()) return;
  {
    // Under the mutex so that a Sleep checking the flag cannot miss it.
    std::lock_guard lock(impl_->mutex);
    impl_->abort.store(true, std::memory_order_relaxed);
  }
  impl_->wake.notify_all();
  impl_->feed.Interrupt();
  impl_->thread.join();
  impl_->feed.Stop();
  impl_->status.Set(State::kStopped);
}

nlohmann::json RtmpPusher::Stats() const {
  nlohmann::json extra = {
      {"attempts", impl_->attempts.load(std::memory_order_relaxed)},  // relaxed: a counter
      {"io_timeout_ms", impl_->options.io_timeout.count()}};
  impl_->status.SetExtra(std::move(extra));
  return impl_->status.Json(&impl_->feed);
}

}  // namespace freshframe::rtmp
