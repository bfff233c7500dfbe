// Internal to src/http: the server's limits on connections and streaming
// clients, and counts of what they (and authentication) turned away.
//
// Every accepted connection takes a Lease: one of its remote address' places
// (--max-connections-per-address). A connection that becomes a stream (MJPEG,
// SSE, WebSocket) also takes one of the streaming places (--max-clients)
// through its lease. The session that owns the connection holds the lease,
// and hands it on with the connection; both places are given back when the
// last holder lets go, i.e. when the connection's session ends.
//
// Thread-safety: every member may be called from any thread. The Admission
// must outlive every Lease (sessions end before the server's Impl goes).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace freshframe::http {

class Admission;

class Lease {
 public:
  Lease(Admission& admission, std::string address);
  ~Lease();
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  // Takes one of the streaming places (once; true again after that); false,
  // taking nothing, when all of them are in use.
  bool TryStream();
  // The remote IP address (no port) the connection came from.
  const std::string& address() const { return address_; }

 private:
  Admission& admission_;
  const std::string address_;
  bool streaming_ = false;  // only the owning session's strand touches it
};
using LeasePtr = std::shared_ptr<Lease>;

// What was turned away; each has a counter in /api/stats "rejected".
enum class Rejection {
  kAuth,
  kMaxClients,
  kPerAddress,
  kUriTooLong,
  kHost,         // Host not allowed (DNS rebinding; origin_policy.h)
  kOrigin,       // a foreign Origin (origin_policy.h)
  kMaxVariants,  // a new pixel variant beyond --max-variants
  kCount,        // the number of kinds
};

class Admission {
 public:
  // 0 for either limit: no limit.
  Admission(size_t max_clients, size_t max_per_address);

  // A lease for a connection from `address` (an IP address, no port), or
  // nullptr if that address already has max_per_address connections.
  LeasePtr Connect(const std::string& address);

  void Count(Rejection why);
  // Whether a refusal of a request from `address` should be logged now: at
  // most once per address per kRefusalLogInterval, so that a client (or a
  // page) retrying a refused request cannot flood the log. Counting is
  // Count's; this only decides about the line.
  bool ShouldLogRefusal(const std::string& address, int64_t now_us);
  static constexpr int64_t kRefusalLogInterval = 60'000'000;  // microseconds
  // {"auth": n, "max_clients": n, "per_address": n, "uri_too_long": n,
  //  "host": n, "origin": n, "max_variants": n}
  nlohmann::json RejectedJson() const;
  uint64_t rejected(Rejection why) const;
  size_t streaming() const { return streaming_.load(std::memory_order_relaxed); }

 private:
  friend class Lease;
  bool TakeStream();
  void Release(const std::string& address, bool streaming);

  const size_t max_clients_;
  const size_t max_per_address_;
  // Relaxed: the compare-exchange in TakeStream is the only decision made on
  // it, and it orders nothing else.
  std::atomic<size_t> streaming_{0};
  mutable std::mutex mutex_;
  std::map<std::string, size_t> per_address_;  // only addresses with connections
  // By Rejection; relaxed statistics.
  std::array<std::atomic<uint64_t>, static_cast<size_t>(Rejection::kCount)> rejected_{};
  // When a refusal from each address was last logged; bounded (see
  // ShouldLogRefusal), guarded by mutex_.
  std::map<std::string, int64_t> refusal_logged_;
};

}  // namespace freshframe::http
