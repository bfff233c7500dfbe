// Internal to src/http: turns each encoded frame into one immutable stream
// part and hands it to every subscribed client; keeps per-client figures.
//
// Thread-safety: Fanout's members may be called from any thread. OnPart is
// called on the fan-out thread and must not block (clients post to their own
// strand). Parts are immutable and shared by every client that sends them.
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

// One multipart part: "--boundary" line and headers, then the JPEG, then CRLF.
struct StreamPart {
  uint64_t index = 0;  // 1, 2, ... in publish order (gaps = skipped frames)
  encode::EncodedFramePtr frame;
  std::string header;
};
using StreamPartPtr = std::shared_ptr<const StreamPart>;

class PartSubscriber {
 public:
  virtual ~PartSubscriber() = default;
  // A new part is available. Return false to be unsubscribed (one-shot).
  virtual bool OnPart(const StreamPartPtr& part) = 0;
};

class Fanout {
 public:
  explicit Fanout(LatestSlot<encode::EncodedFramePtr>& frames);

  void Start();
  void Stop();

  void Subscribe(std::weak_ptr<PartSubscriber> subscriber);
  // The newest part, or nullptr.
  StreamPartPtr Latest() const;

 private:
  void Run(std::stop_token stop);

  LatestSlot<encode::EncodedFramePtr>& frames_;
  mutable std::mutex mutex_;
  std::vector<std::weak_ptr<PartSubscriber>> subscribers_;
  StreamPartPtr latest_;
  uint64_t next_index_ = 1;
  StageThread thread_;  // last: joined before the members it uses go
};

// Per-client figures for /api/stats. Written on the client's strand, read
// by the stats handler on any thread.
class ClientStats {
 public:
  ClientStats(uint64_t id, std::string peer, std::string path, int64_t connected_us);

  void CountSent(int64_t now_us, uint64_t skipped);
  nlohmann::json ToJson(int64_t now_us) const;

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
  std::array<std::atomic<int64_t>, kRing> send_times_{};
};

class ClientRegistry {
 public:
  std::shared_ptr<ClientStats> Add(std::string peer, std::string path);
  nlohmann::json ToJson(int64_t now_us) const;
  size_t Count() const;

 private:
  mutable std::mutex mutex_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::weak_ptr<ClientStats>> clients_;
};

}  // namespace freshframe::http
