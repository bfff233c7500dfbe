// RemoteClock: another host's CLOCK_MONOTONIC, as seen from this one.
//
// A capture stamp (the timecode strip, X-Frame-Timestamp) is the origin's
// CLOCK_MONOTONIC, which only processes of the same host share: two hosts'
// monotonic clocks differ by their boot times (seconds to months). An
// inference host that took the capture host's stamps as its own would think
// its frames seconds old, or from the future (issue 18). freshframe's MJPEG
// parts therefore also carry X-Server-Timestamp, the server's clock as the
// part went out, and for every part
//     sample = local receipt time - remote send time
//            = (local clock - remote clock) + one-way delay of that part.
// The smallest sample of the last `window_us` is the clock offset plus the
// smallest one-way delay (~0.1 ms on a LAN): tracked continuously, it
// follows a drifting clock, and a restarted origin (a new clock) replaces it
// within one window. A remote stamp t is then t + offset here. Translated
// stamps err early by that smallest delay (frames look that much fresher),
// the price of needing no round trip. An offset below `same_host_us` is
// taken for the same clock (no translation): on one host the samples are
// just the delay.
//
// Thread-safety: none; one source's thread owns it.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string_view>
#include <utility>

namespace freshframe::capture {

// "SECONDS[.FRACTION]" (X-Server-Timestamp, X-Frame-Timestamp: up to 12
// digits of seconds, up to 6 of fraction) in microseconds; nullopt for
// anything else (remote bytes: never trusted to be well formed).
std::optional<int64_t> ParseStampSeconds(std::string_view text);

class RemoteClock {
 public:
  static constexpr int64_t kWindowUs = 10'000'000;
  static constexpr int64_t kSameHostUs = 2'000;

  explicit RemoteClock(int64_t window_us = kWindowUs, int64_t same_host_us = kSameHostUs)
      : window_us_(window_us), same_host_us_(same_host_us) {}

  // A part sent at `remote_sent_us` (its clock) arrived at `local_received_us`.
  void Sample(int64_t local_received_us, int64_t remote_sent_us);
  // Forgets every sample (a new connection may reach another origin).
  void Reset() { samples_.clear(); }

  // local - remote, if there is a sample; 0 when the clocks look the same.
  std::optional<int64_t> offset() const;
  // A remote stamp in the local clock; nullopt without samples.
  std::optional<int64_t> ToLocal(int64_t remote_us) const {
    const std::optional<int64_t> d = offset();
    if (!d) return std::nullopt;
    return remote_us + *d;
  }

 private:
  // (receipt time, sample), receipt times increasing, samples increasing:
  // the front is the window's minimum (a monotonic queue).
  std::deque<std::pair<int64_t, int64_t>> samples_;
  int64_t window_us_;
  int64_t same_host_us_;
};

}  // namespace freshframe::capture
