// `freshframe probe`: an independent latency meter for a freshframe server.
// It opens K plain HTTP/1.1 connections to an MJPEG endpoint
// (multipart/x-mixed-replace), decodes only the timecode strip at the top of
// every JPEG it receives (see core/timecode.h), and reports the received frame
// rate and the capture-to-received latency, now_monotonic_us - t, which is
// valid when the probe runs on the same host as the capture. It trusts none
// of the server's own numbers (X-Frame-Timestamp headers are ignored).
//
// Thread-safety and ownership: RunProbe may be called from any thread, also
// concurrently; each call starts its own K client threads and joins them all
// before it returns, so nothing it started outlives it. It reads `*stop`
// (which the caller owns and must keep alive during the call) from those
// threads, so another thread or a signal handler may set it. Everything
// returned is a plain value that the caller owns. CheckOptions, FormatText
// and ToJson are pure and safe from any thread. The URL is parsed by
// httpclient::ParseUrl (httpclient/url.h).
//
// Errors are values: RunProbe does not throw for a bad URL, an unreachable
// server, a non-200 or non-multipart answer, or a stream that breaks; the
// affected clients have `error` set and count in `failed_clients`.
#pragma once

#include <atomic>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/metrics.h"

namespace freshframe::probe {

inline constexpr int kMaxClients = 1000;
inline constexpr double kMaxSeconds = 24 * 3600.0;

struct ProbeOptions {
  std::string url;
  double seconds = 5.0;  // (0, kMaxSeconds]
  int clients = 1;       // [1, kMaxClients]
};

// Empty if RunProbe can run `options`, otherwise what is wrong (for a CLI to
// report and exit 2 before starting anything).
std::string CheckOptions(const ProbeOptions& options);

struct ClientReport {
  uint64_t frames = 0;    // complete parts received
  uint64_t no_strip = 0;  // of those, parts without a readable strip
  // frames / (end - start): start is when the TCP connection was established
  // (the request is sent right after), end is when the client stopped
  // receiving (the run's deadline, the stop flag, or the error that ended it).
  // 0 if the client never connected.
  double fps = 0;
  std::string error;  // empty if the client ran to the end without trouble
};

struct ProbeReport {
  std::string url;
  double seconds = 0;     // as requested
  int clients = 0;        // as requested
  uint64_t frames = 0;    // sum over all clients, failed ones included
  uint64_t no_strip = 0;  // sum over all clients, failed ones included
  // Over the clients without an error; 0 if every client failed. The median
  // of an even count is the mean of the middle two.
  double fps_min = 0, fps_median = 0, fps_max = 0;
  // Latency in ms of every frame with a readable strip, all clients pooled,
  // nearest-rank percentiles. Exact up to ~4M samples in all; beyond that
  // p50/p90/p99 come from a uniform sample (count, max, mean stay exact).
  Percentiles latency_ms;
  std::vector<ClientReport> per_client;  // one per requested client
  int failed_clients = 0;                // clients whose error is set
};

// Runs options.clients clients for options.seconds, or until *stop becomes
// true (stop may be null), then returns. All clients share one deadline,
// measured from the call; the call returns within ~0.2 s of it, or of *stop.
// A client that cannot connect (2 s timeout per address), gets no response
// head within 2 s, gets a non-200 or non-multipart answer, or whose stream
// breaks or ends before the deadline has its error set. A stream that merely
// stalls is not an error: its fps shows it. The host name is resolved once,
// before the clients start; that lookup is not bounded by the deadline (a
// literal address or a name in /etc/hosts resolves at once). If
// CheckOptions(options) is not empty, no connection is made and every client
// (at least one) has that error.
ProbeReport RunProbe(const ProbeOptions& options, const std::atomic<bool>* stop);

// A short human-readable table: totals, fps, latency, and per-client rows
// (all of them for up to 10 clients, else only the failed ones, grouped).
std::string FormatText(const ProbeReport& report);

// {"url", "seconds", "clients", "frames", "no_strip", "failed_clients",
//  "fps": {"min", "median", "max"},
//  "latency_ms": {"count", "p50", "p90", "p99", "max", "mean"},
//  "per_client": [{"frames", "fps", "no_strip", "error"}]}
// Milliseconds and fps are rounded to 3 decimals.
nlohmann::json ToJson(const ProbeReport& report);

}  // namespace freshframe::probe
