#include "capture/remote_clock.h"

#include <cstdlib>

namespace freshframe::capture {

std::optional<int64_t> ParseStampSeconds(std::string_view text) {
  const size_t dot = text.find('.');
  const std::string_view whole = text.substr(0, dot);
  const std::string_view fraction =
      dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
  if (whole.empty() || whole.size() > 12) return std::nullopt;
  if (dot != std::string_view::npos && (fraction.empty() || fraction.size() > 6)) {
    return std::nullopt;
  }
  int64_t seconds = 0;
  for (const char c : whole) {
    if (c < '0' || c > '9') return std::nullopt;
    seconds = seconds * 10 + (c - '0');
  }
  int64_t micros = 0;
  int64_t scale = 100'000;
  for (const char c : fraction) {
    if (c < '0' || c > '9') return std::nullopt;
    micros += (c - '0') * scale;
    scale /= 10;
  }
  return seconds * 1'000'000 + micros;
}

void RemoteClock::Sample(int64_t local_received_us, int64_t remote_sent_us) {
  const int64_t sample = local_received_us - remote_sent_us;
  // A newer sample no larger than older ones makes them useless as minima.
  while (!samples_.empty() && samples_.back().second >= sample) samples_.pop_back();
  samples_.emplace_back(local_received_us, sample);
  while (samples_.front().first < local_received_us - window_us_) samples_.pop_front();
}

std::optional<int64_t> RemoteClock::offset() const {
  if (samples_.empty()) return std::nullopt;
  const int64_t minimum = samples_.front().second;
  return std::llabs(minimum) < same_host_us_ ? 0 : minimum;
}

}  // namespace freshframe::capture
