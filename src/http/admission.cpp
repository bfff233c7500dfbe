#include "http/admission.h"

#include <nlohmann/json.hpp>

namespace freshframe::http {

Lease::Lease(Admission& admission, std::string address)
    : admission_(admission), address_(std::move(address)) {}

Lease::~Lease() { admission_.Release(address_, streaming_); }

bool Lease::TryStream() {
  if (!streaming_) streaming_ = admission_.TakeStream();
  return streaming_;
}

Admission::Admission(size_t max_clients, size_t max_per_address)
    : max_clients_(max_clients), max_per_address_(max_per_address) {}

LeasePtr Admission::Connect(const std::string& address) {
  {
    std::lock_guard lock(mutex_);
    size_t& count = per_address_[address];
    if (max_per_address_ != 0 && count >= max_per_address_) return nullptr;
    ++count;
  }
  return std::make_shared<Lease>(*this, address);
}

bool Admission::TakeStream() {
  size_t current = streaming_.load(std::memory_order_relaxed);
  do {
    if (max_clients_ != 0 && current >= max_clients_) return false;
  } while (!streaming_.compare_exchange_weak(current, current + 1, std::memory_order_relaxed));
  return true;
}

void Admission::Release(const std::string& address, bool streaming) {
  if (streaming) streaming_.fetch_sub(1, std::memory_order_relaxed);
  std::lock_guard lock(mutex_);
  const auto it = per_address_.find(address);
  if (it != per_address_.end() && --it->second == 0) per_address_.erase(it);
}

void Admission::Count(Rejection why) {
  rejected_[static_cast<size_t>(why)].fetch_add(1, std::memory_order_relaxed);
}

uint64_t Admission::rejected(Rejection why) const {
  return rejected_[static_cast<size_t>(why)].load(std::memory_order_relaxed);
}

nlohmann::json Admission::RejectedJson() const {
  return {{"auth", rejected(Rejection::kAuth)},
          {"max_clients", rejected(Rejection::kMaxClients)},
          {"per_address", rejected(Rejection::kPerAddress)},
          {"uri_too_long", rejected(Rejection::kUriTooLong)},
          {"host", rejected(Rejection::kHost)},
          {"origin", rejected(Rejection::kOrigin)},
          {"max_variants", rejected(Rejection::kMaxVariants)}};
}

bool Admission::ShouldLogRefusal(const std::string& address, int64_t now_us) {
  // Enough addresses for any real audience; beyond it, entries whose
  // interval is over are dropped first, and if all are recent (a flood from
  // many addresses) nothing more is logged until some expire.
  constexpr size_t kMaxTracked = 4096;
  std::lock_guard lock(mutex_);
  const auto it = refusal_logged_.find(address);
  if (it != refusal_logged_.end()) {
    if (now_us - it->second < kRefusalLogInterval) return false;
    it->second = now_us;
    return true;
  }
  if (refusal_logged_.size() >= kMaxTracked) {
    std::erase_if(refusal_logged_,
                  [&](const auto& entry) { return now_us - entry.second >= kRefusalLogInterval; });
    if (refusal_logged_.size() >= kMaxTracked) return false;
  }
  refusal_logged_.emplace(address, now_us);
  return true;
}

}  // namespace freshframe::http
