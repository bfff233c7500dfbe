// Monotonic time in microseconds.
//
// Thread-safety: every function here is safe to call from any thread.
// All freshframe timestamps are CLOCK_MONOTONIC microseconds, which every
// process on one host shares, so stamps taken in different processes compare.
#pragma once

#include <cstdint>
#include <ctime>

namespace freshframe {

// CLOCK_MONOTONIC now, in microseconds.
inline int64_t MonotonicMicros() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1'000;
}

}  // namespace freshframe
