// The PTS of each access unit pushed into a path's media (internal to
// src/rtsp): the running time at which its picture was captured, so that
// RTP timestamps follow the capture's spacing, not the encoder's jitter.
//
// Capture stamps can step (a source's clock corrected, e.g. a remote
// capture host's): a step back would give PTS that go back, a step forward
// PTS ahead of the clock (which the media's sinks would wait for). So a
// shift is kept: after a step the spacing goes on from where it was, PTS
// never go back and never pass the running time.
//
// Thread-safety: one per path, used by its pusher thread only.
#pragma once

#include <cstdint>

namespace freshframe::rtsp {

class PtsClock {
 public:
  // `running_ns`: the media's running time now; `age_ns`: how long ago the
  // picture was captured. Nanoseconds.
  uint64_t Next(uint64_t running_ns, uint64_t age_ns) {
    const int64_t captured = static_cast<int64_t>(running_ns) - static_cast<int64_t>(age_ns);
    int64_t pts = captured + shift_;
    if (pts > static_cast<int64_t>(running_ns)) pts = static_cast<int64_t>(running_ns);
    if (has_last_ && pts <= last_) pts = last_ + 1;
    if (pts < 0) pts = 0;
    shift_ = pts - captured;
    last_ = pts;
    has_last_ = true;
    return static_cast<uint64_t>(pts);
  }
  // A new media: its running time starts anew.
  void Reset() { *this = PtsClock(); }

 private:
  int64_t shift_ = 0;
  int64_t last_ = 0;
  bool has_last_ = false;
};

}  // namespace freshframe::rtsp
