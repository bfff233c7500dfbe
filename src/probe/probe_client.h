// One probe client: a blocking-style loop on one socket that connects, asks
// for the stream, and counts parts and latencies until a deadline. Internal
// to the probe module; RunProbe (probe.h) runs one per thread.
//
// Thread-safety and ownership: RunClient is meant to run on its own thread
// with its own ClientRun; it only reads the addresses and the URL, which the
// caller keeps alive (and unchanged) until it returns. It never blocks for
// more than kPollSliceUs without looking at the stop flag and the deadline.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "httpclient/url.h"
#include "probe/latency_samples.h"
#include "probe/probe.h"

namespace freshframe::probe {

inline constexpr int64_t kConnectTimeoutUs = 2'000'000;   // per address
inline constexpr int64_t kResponseTimeoutUs = 2'000'000;  // connect to end of head
inline constexpr int64_t kPollSliceUs = 100'000;          // how often stop is checked

struct Address {
  sockaddr_storage storage{};
  socklen_t length = 0;
  std::string text;  // "127.0.0.1:8080", "[::1]:8080", for messages
};

// Resolves url.host:url.port to stream-socket addresses, IPv4 and IPv6 in
// the resolver's order. Returns false and sets *error if there are none.
bool Resolve(const httpclient::Url& url, std::vector<Address>* addresses, std::string* error);

struct ClientRun {
  explicit ClientRun(size_t sample_capacity, uint32_t seed) : latency(sample_capacity, seed) {}

  ClientReport report;
  LatencySamples latency;  // ms, one per part with a readable strip
};

// Connects to the first address that accepts, sends GET url.target, and
// receives until `deadline_us` (MonotonicMicros) or *stop. Fills *run.
void RunClient(const httpclient::Url& url, const std::vector<Address>& addresses,
               int64_t deadline_us, const std::atomic<bool>* stop, ClientRun* run);

}  // namespace freshframe::probe
