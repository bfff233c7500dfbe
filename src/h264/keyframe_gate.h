// "Skip to the next keyframe": newest-only for inter-coded video, per viewer.
//
// JPEG's newest-only (http/newest_only.h) drops any frame a slow viewer
// cannot take. An H.264 P-frame is useless without every frame since the
// last IDR, so a viewer here
// - starts at an IDR (a new gate waits for one; its owner asks for one with
//   KeyReason::kJoin as it subscribes);
// - keeps at most kMaxQueued access units waiting behind the one in flight;
//   when the next one comes and there is no room (the connection is not
//   ready), it drops everything queued and that one, then waits for the next
//   IDR and asks for one (KeyReason::kGap);
// - treats a gap in the access units' sequence numbers (one it was never
//   offered) the same way;
// - never receives a P-frame whose reference it did not receive.
// No GOP cache: a late viewer never gets old frames replayed; the encoder
// makes an IDR for it instead.
//
// Thread-safety: none; one gate belongs to one viewer's strand or thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <utility>

#include "encode/encode.h"
#include "h264/h264.h"

namespace freshframe::h264 {

// `Ptr` is the viewer's handle on an access unit (a shared pointer);
// `kFrameOf` gives the access unit it holds.
template <typename Ptr, const encode::EncodedFrame& (*kFrameOf)(const Ptr&)>
class KeyframeGate {
 public:
  // Access units waiting behind the one in flight: about 70 ms at 30 fps.
  static constexpr size_t kMaxQueued = 2;

  // Offers the next access unit of the stream. Returns the reason to ask the
  // encoder for an IDR (the first time this wait needs one), or nothing.
  std::optional<KeyReason> Offer(Ptr unit) {
    const encode::EncodedFrame& frame = kFrameOf(unit);
    const bool gap = last_sequence_ != 0 && frame.sequence != last_sequence_ + 1;
    last_sequence_ = frame.sequence;
    if (!waiting_ && (gap || queue_.size() >= kMaxQueued)) {
      // Dropping any access unit breaks every P-frame after it, so the
      // viewer drops all it has and restarts at an IDR.
      dropped_ += queue_.size();
      queue_.clear();
      waiting_ = true;
      asked_ = false;
      ++skips_to_key_;
    }
    if (waiting_) {
      if (!frame.keyframe) {
        ++dropped_;
        if (asked_) return std::nullopt;
        asked_ = true;
        return skips_to_key_ == 0 ? KeyReason::kJoin : KeyReason::kGap;
      }
      waiting_ = false;
    }
    queue_.push_back(std::move(unit));
    return std::nullopt;
  }

  // The owner asked for an IDR itself (as it subscribed): Offer will not ask
  // again for this wait.
  void MarkAsked() { asked_ = true; }

  // The next access unit to send, if any (it leaves the queue).
  std::optional<Ptr> Next() {
    if (queue_.empty()) return std::nullopt;
    Ptr unit = std::move(queue_.front());
    queue_.pop_front();
    return unit;
  }
  void Clear() { queue_.clear(); }

  bool waiting_for_key() const { return waiting_; }
  size_t queued() const { return queue_.size(); }
  // Times the viewer fell behind (or missed one) and skipped to an IDR.
  uint64_t skips_to_key() const { return skips_to_key_; }
  // Access units dropped: queued ones given up, and P-frames while waiting.
  uint64_t dropped() const { return dropped_; }

 private:
  std::deque<Ptr> queue_;
  uint64_t last_sequence_ = 0;
  bool waiting_ = true;  // a new viewer starts at an IDR
  bool asked_ = false;
  uint64_t skips_to_key_ = 0;
  uint64_t dropped_ = 0;
};

}  // namespace freshframe::h264
