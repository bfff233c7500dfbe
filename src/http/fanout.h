// Internal to src/http: turns each encoded frame into one immutable stream
// part and hands it to every subscribed client; keeps per-client figures.
// A PartStream does the wrapping and handing out; Fanout is the default
// stream, fed by its own thread from the [jpeg] slot, and each pixel variant
// in use has a PartStream of its own (variant_streams.h).
//
// Thread-safety: PartStream's and Fanout's members may be called from any
// thread, except Deliver (one thread at a time) and Start/Stop (owning
// thread). OnPart is called on the delivering thread and must not block
// (clients post to their own strand). Parts are immutable and shared by every
// client that sends them.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/latest_slot.h"
#include "core/stage_thread.h"
#include "encode/encode.h"

namespace freshframe::http {

inline constexpr std::string_view kBoundary = "freshframe-boundary";

// A CLOCK_MONOTONIC stamp as seconds with 6 decimals ("1234.000567"), the
// form of the X-Frame-Timestamp header.
std::string FormatStampSeconds(int64_t us);

// How a transport frames a part: multipart/x-mixed-replace (stream.mjpg) or
// a WebSocket binary message (ws/stream).
enum class Framing { kMultipart, kWebSocket };
inline constexpr size_t kFramings = 2;

// What a slow client's session does with parts it could not send in time,
// by codec. kNewestOnly (JPEG, where every frame stands alone): at most one
// part in flight and only the newest waiting; the ones in between are
// skipped (newest_only.h). kSkipToKeyframe (H.264, whose frames refer to
// earlier ones): a few access units may wait; one that finds no room drops
// them all, and the client waits for the next IDR (h264/keyframe_gate.h).
enum class SlowConsumerPolicy { kNewestOnly, kSkipToKeyframe };
constexpr SlowConsumerPolicy PolicyFor(encode::Codec codec) {
  switch (codec) {
    case encode::Codec::kJpeg:
      return SlowConsumerPolicy::kNewestOnly;
    case encode::Codec::kH264:
      return SlowConsumerPolicy::kSkipToKeyframe;
  }
  return SlowConsumerPolicy::kNewestOnly;
}

// One encoded frame as the fan-out hands it to every client: codec-neutral
// (the frame's codec, bytes, keyframe flag and stamps), numbered in publish
// order. Each transport's framing is formatted once per part, by the first
// session that sends it (Framed), and shared by all the others.
struct StreamPart {
  uint64_t index = 0;  // 1, 2, ... in publish order (gaps = skipped frames)
  encode::EncodedFramePtr frame;

  using Formatter = std::string (*)(const encode::EncodedFrame& frame);
  // `framing`'s bytes for this part, made by `format` on first use (any
  // thread; every call for one framing must pass the same formatter).
  const std::string& Framed(Framing framing, Formatter format) const {
    const auto i = static_cast<size_t>(framing);
    std::call_once(formatted_[i], [&] { framing_[i] = format(*frame); });
    return framing_[i];
  }

 private:
  mutable std::array<std::once_flag, kFramings> formatted_;
  mutable std::array<std::string, kFramings> framing_;
};
using StreamPartPtr = std::shared_ptr<const StreamPart>;

class PartSubscriber {
 public:
  virtual ~PartSubscriber() = default;
  // A new part is available. Return false to be unsubscribed (one-shot).
  virtual bool OnPart(const StreamPartPtr& part) = 0;
  // The stream is gone (PartStream::Close): no part will come. Called on the
  // closing thread; must not block.
  virtual void OnClosed() {}
};

class PartStream {
 public:
  // Wraps `frame` into the next part (index + 1), keeps it as the latest and
  // offers it to every subscriber. Called by one thread at a time.
  void Deliver(encode::EncodedFramePtr frame);
  // Waits for a delivery in progress, then drops every subscriber, telling
  // each (OnClosed); later deliveries do nothing and later subscribers are
  // told at once. For a stream fed by a thread the server does not own:
  // after Close, no part is posted to a session any more.
  void Close();

  // Subscribers that are gone are dropped at the next delivery, or by a
  // later Subscribe, so the list stays within twice the live ones however
  // long no frame comes. Once closed, tells the subscriber at once.
  void Subscribe(std::weak_ptr<PartSubscriber> subscriber);
  // The newest part, or nullptr.
  StreamPartPtr Latest() const;
  // Entries in the subscriber list, dead ones not yet dropped included.
  size_t subscriber_count() const;

 private:
  static constexpr size_t kMinPruneAt = 64;
  std::mutex delivering_;  // held throughout Deliver, so that Close can wait for it
  mutable std::mutex mutex_;
  std::vector<std::weak_ptr<PartSubscriber>> subscribers_;
  StreamPartPtr latest_;
  uint64_t next_index_ = 1;
  size_t prune_at_ = kMinPruneAt;  // Subscribe drops dead entries at this size
  bool closed_ = false;
};

// The default stream: its thread delivers each new frame of the [jpeg] slot.
class Fanout : public PartStream {
 public:
  explicit Fanout(LatestSlot<encode::EncodedFramePtr>& frames);

  void Start();
  void Stop();

 private:
  void Run(std::stop_token stop);

  LatestSlot<encode::EncodedFramePtr>& frames_;
  StageThread thread_;  // last: joined before the members it uses go
};

// Per-client figures for /api/stats. Written on the client's strand, read
// by the stats handler on any thread.
class ClientStats {
 public:
  // `bytes_total` (the registry's) outlives the client: sessions end before
  // the server's ClientRegistry goes.
  ClientStats(uint64_t id, std::string peer, std::string path, int64_t connected_us,
              std::atomic<uint64_t>& bytes_total);

  // One part or event of `bytes` bytes sent, after `skipped` newer-only skips.
  void CountSent(int64_t now_us, uint64_t skipped, uint64_t bytes);
  // An H.264 client's "skip to the next keyframe" figures so far (the JSON
  // then has "skips_to_key" and "dropped").
  void SetKeyframeSkips(uint64_t skips_to_key, uint64_t dropped);
  nlohmann::json ToJson(int64_t now_us) const;
  const std::string& path() const { return path_; }

 private:
  static constexpr size_t kRing = 32;
  const uint64_t id_;
  const std::string peer_;
  const std::string path_;
  const int64_t connected_us_;
  // Relaxed everywhere: independent statistics; a reader may see a count and
  // a ring a frame apart, which only blurs the reported fps.
  std::atomic<uint64_t> sent_{0};
  std::atomic<uint64_t> skipped_{0};
  std::atomic<uint64_t> bytes_{0};
  std::atomic<bool> inter_coded_{false};
  std::atomic<uint64_t> skips_to_key_{0};
  std::atomic<uint64_t> dropped_{0};
  std::array<std::atomic<int64_t>, kRing> send_times_{};
  std::atomic<uint64_t>& bytes_total_;
};

class ClientRegistry {
 public:
  std::shared_ptr<ClientStats> Add(std::string peer, std::string path);
  nlohmann::json ToJson(int64_t now_us) const;
  size_t Count() const;
  // Current clients by the path they asked for (as given to Add).
  std::map<std::string, size_t> CountByPath() const;
  // Bytes sent to all clients since start, including those gone.
  uint64_t bytes_sent() const { return bytes_sent_.load(std::memory_order_relaxed); }

 private:
  mutable std::mutex mutex_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::weak_ptr<ClientStats>> clients_;
  std::atomic<uint64_t> bytes_sent_{0};  // relaxed: a statistic, like ClientStats'
};

}  // namespace freshframe::http
