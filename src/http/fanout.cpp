#include "http/fanout.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "core/clock.h"

namespace freshframe::http {
std::string FormatStampSeconds(int64_t us) {
  char text[32];
  const int n =
      std::snprintf(text, sizeof text, "%lld.%06lld", static_cast<long long>(us / 1'000'000),
                    static_cast<long long>(us % 1'000'000));
  return std::string(text, static_cast<size_t>(n));
}

Fanout::Fanout(LatestSlot<encode::EncodedFramePtr>& frames) : frames_(frames) {}

void Fanout::Start() {
  thread_.Start([this](std::stop_token stop) { Run(stop); });
}

void Fanout::Stop() { thread_.Stop(); }

void PartStream::Subscribe(std::weak_ptr<PartSubscriber> subscriber) {
  std::unique_lock lock(mutex_);
  if (closed_) {
    lock.unlock();
    if (auto strong = subscriber.lock()) strong->OnClosed();
    return;
  }
  // Deliver drops the dead, but while no frame comes (an outage) nothing
  // delivers: snapshot requests that time out would pile up here. Pruning
  // whenever the list has doubled since the last prune keeps it within
  // twice the live subscribers, at amortised O(1) per call.
  if (subscribers_.size() >= prune_at_) {
    std::erase_if(subscribers_, [](const auto& weak) { return weak.expired(); });
    prune_at_ = std::max(kMinPruneAt, 2 * subscribers_.size());
  }
  subscribers_.push_back(std::move(subscriber));
}

size_t PartStream::subscriber_count() const {
  std::lock_guard lock(mutex_);
  return subscribers_.size();
}

StreamPartPtr PartStream::Latest() const {
  std::lock_guard lock(mutex_);
  return latest_;
}

void PartStream::Close() {
  std::lock_guard delivering(delivering_);
  std::vector<std::weak_ptr<PartSubscriber>> told;
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    told.swap(subscribers_);
  }
  for (const auto& weak : told) {
    if (auto strong = weak.lock()) strong->OnClosed();
  }
}

void PartStream::Deliver(encode::EncodedFramePtr frame) {
  std::lock_guard delivering(delivering_);
  auto part = std::make_shared<StreamPart>();
  part->frame = std::move(frame);
  StreamPartPtr shared = part;

  std::vector<std::shared_ptr<PartSubscriber>> live;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    part->index = next_index_++;
    latest_ = shared;
    // Take strong references and drop the dead, so callbacks run unlocked.
    std::erase_if(subscribers_, [&](const std::weak_ptr<PartSubscriber>& weak) {
      auto strong = weak.lock();
      if (!strong) return true;
      live.push_back(std::move(strong));
      return false;
    });
  }
  std::vector<PartSubscriber*> done;
  for (const auto& subscriber : live) {
    if (!subscriber->OnPart(shared)) done.push_back(subscriber.get());
  }
  if (!done.empty()) {
    std::lock_guard lock(mutex_);
    std::erase_if(subscribers_, [&](const std::weak_ptr<PartSubscriber>& weak) {
      auto strong = weak.lock();
      return !strong || std::find(done.begin(), done.end(), strong.get()) != done.end();
    });
  }
}

void Fanout::Run(std::stop_token stop) {
  using namespace std::chrono_literals;
  uint64_t last_version = 0;
  while (!stop.stop_requested()) {
    auto next = frames_.WaitNewer(last_version, 100ms);
    if (!next) continue;
    last_version = next->version;
    Deliver(next->value);
  }
}

ClientStats::ClientStats(uint64_t id, std::string peer, std::string path, int64_t connected_us,
                         std::atomic<uint64_t>& bytes_total)
    : id_(id),
      peer_(std::move(peer)),
      path_(std::move(path)),
      connected_us_(connected_us),
      bytes_total_(bytes_total) {}

void ClientStats::CountSent(int64_t now_us, uint64_t skipped, uint64_t bytes) {
  const uint64_t n = sent_.fetch_add(1, std::memory_order_relaxed);
  send_times_[n % kRing].store(now_us, std::memory_order_relaxed);
  if (skipped > 0) skipped_.fetch_add(skipped, std::memory_order_relaxed);
  bytes_.fetch_add(bytes, std::memory_order_relaxed);
  bytes_total_.fetch_add(bytes, std::memory_order_relaxed);
}

void ClientStats::SetKeyframeSkips(uint64_t skips_to_key, uint64_t dropped) {
  inter_coded_.store(true, std::memory_order_relaxed);
  skips_to_key_.store(skips_to_key, std::memory_order_relaxed);
  dropped_.store(dropped, std::memory_order_relaxed);
}

nlohmann::json ClientStats::ToJson(int64_t now_us) const {
  const uint64_t sent = sent_.load(std::memory_order_relaxed);
  // fps from the times of the last (up to) kRing parts, counted until now so
  // that a stalled client's rate drops instead of freezing.
  double fps = 0;
  const uint64_t n = std::min<uint64_t>(sent, kRing);
  if (n >= 2) {
    int64_t oldest = now_us;
    for (uint64_t i = 0; i < n; ++i) {
      oldest = std::min(oldest, send_times_[i].load(std::memory_order_relaxed));
    }
    const double span_s = static_cast<double>(now_us - oldest) / 1e6;
    if (span_s > 0) fps = static_cast<double>(n - 1) / span_s;
  }
  nlohmann::json out = {
      {"id", id_},
      {"peer", peer_},
      {"path", path_},
      {"sent", sent},
      {"skipped", skipped_.load(std::memory_order_relaxed)},
      {"bytes", bytes_.load(std::memory_order_relaxed)},
      {"fps", std::round(fps * 100) / 100},
      {"connected_s", std::round(static_cast<double>(now_us - connected_us_) / 1e4) / 100}};
  if (inter_coded_.load(std::memory_order_relaxed)) {
    out["skips_to_key"] = skips_to_key_.load(std::memory_order_relaxed);
    out["dropped"] = dropped_.load(std::memory_order_relaxed);
  }
  return out;
}

std::shared_ptr<ClientStats> ClientRegistry::Add(std::string peer, std::string path) {
  std::lock_guard lock(mutex_);
  const uint64_t id = next_id_++;
  auto stats = std::make_shared<ClientStats>(id, std::move(peer), std::move(path),
                                             MonotonicMicros(), bytes_sent_);
  clients_[id] = stats;
  std::erase_if(clients_, [](const auto& entry) { return entry.second.expired(); });
  return stats;
}

nlohmann::json ClientRegistry::ToJson(int64_t now_us) const {
  nlohmann::json out = nlohmann::json::array();
  std::lock_guard lock(mutex_);
  for (const auto& [id, weak] : clients_) {
    if (auto stats = weak.lock()) out.push_back(stats->ToJson(now_us));
  }
  return out;
}

std::map<std::string, size_t> ClientRegistry::CountByPath() const {
  std::map<std::string, size_t> out;
  std::lock_guard lock(mutex_);
  for (const auto& [id, weak] : clients_) {
    if (auto stats = weak.lock()) ++out[stats->path()];
  }
  return out;
}

size_t ClientRegistry::Count() const {
  std::lock_guard lock(mutex_);
  size_t n = 0;
  for (const auto& [id, weak] : clients_)
    if (!weak.expired()) ++n;
  return n;
}

}  // namespace freshframe::http
