#include "http/variant_streams.h"

#include <atomic>
#include <set>

#include <nlohmann/json.hpp>

namespace freshframe::http {
namespace {

// The query that asks for `key`, as a client would write it.
std::string QueryOf(const encode::VariantKey& key) {
  std::string out = key.mirror ? "mirror=1" : "";
  if (key.width != 0) out += (out.empty() ? "width=" : "&width=") + std::to_string(key.width);
  return out;
}

}  // namespace

// One variant in use: its part stream, and its encoder, which delivers into
// the part stream (and keeps it alive while it may still deliver).
struct VariantStreams::Variant {
  std::shared_ptr<PartStream> parts = std::make_shared<PartStream>();
  std::shared_ptr<encode::VariantEncoder> encoder;
  // Relaxed: a count for /api/stats; the Variant's life is the shared_ptrs'.
  std::atomic<int> clients{0};
};

// One client's hold on its variant.
struct VariantStreams::Feed {
  explicit Feed(std::shared_ptr<Variant> held) : variant(std::move(held)) {
    variant->clients.fetch_add(1, std::memory_order_relaxed);
  }
  ~Feed() { variant->clients.fetch_sub(1, std::memory_order_relaxed); }
  Feed(const Feed&) = delete;
  Feed& operator=(const Feed&) = delete;

  std::shared_ptr<Variant> variant;
};

VariantStreams::VariantStreams(encode::VariantEncoders* encoders, PartStream& default_stream,
                               Demand& demand)
    : encoders_(encoders), default_stream_(default_stream), demand_(demand) {}

void VariantStreams::Prune(int64_t now_us) {
  std::erase_if(variants_, [](const auto& entry) { return entry.second.expired(); });
  std::erase_if(reserved_, [&](const auto& entry) { return entry.second.deadline_us <= now_us; });
}

Expected<bool> VariantStreams::HasPlace(const encode::VariantKey& key, size_t max_variants) const {
  if (encoders_ == nullptr) return Error{"mirror and width are not available on this server"};
  if (closed_) return Error{"the server is stopping"};
  if (variants_.contains(key) || reserved_.contains(key)) return true;
  std::set<encode::VariantKey> taken;
  for (const auto& entry : variants_) taken.insert(entry.first);
  for (const auto& entry : reserved_) taken.insert(entry.first);
  if (max_variants == 0 || taken.size() < max_variants) return true;
  std::string in_use;
  for (const auto& taken_key : taken) in_use += (in_use.empty() ? "" : ", ") + QueryOf(taken_key);
  return Error{"all " + std::to_string(max_variants) +
               " pixel variants this server encodes at a time (--max-variants) are in use (" +
               in_use + "); ask for one of those, or try again later"};
}

Expected<bool> VariantStreams::Reserve(const encode::VariantKey& key, size_t max_variants,
                                       int64_t now_us) {
  if (key.is_default()) return true;
  std::lock_guard lock(mutex_);
  Prune(now_us);
  auto place = HasPlace(key, max_variants);
  if (!place) return place;
  Reservation& reservation = reserved_[key];
  ++reservation.clients;
  reservation.deadline_us =
      now_us + std::chrono::duration_cast<std::chrono::microseconds>(kReservationTimeout).count();
  return true;
}

Expected<std::shared_ptr<PartStream>> VariantStreams::Open(const encode::VariantKey& key,
                                                           size_t max_variants, int64_t now_us) {
  if (key.is_default()) {
    // The pointer shares the hold's lifetime and points at the Fanout.
    return std::shared_ptr<PartStream>(std::make_shared<Demand::Hold>(demand_), &default_stream_);
  }
  std::shared_ptr<Variant> variant;
  {
    std::lock_guard lock(mutex_);
    Prune(now_us);
    auto place = HasPlace(key, max_variants);
    if (!place) return place.error();
    if (auto reservation = reserved_.find(key); reservation != reserved_.end()) {
      if (--reservation->second.clients == 0) reserved_.erase(reservation);
    }
    std::weak_ptr<Variant>& slot = variants_[key];
    variant = slot.lock();
    if (!variant) {
      variant = std::make_shared<Variant>();
      variant->encoder =
          encoders_->Add(key, [parts = variant->parts](const encode::EncodedFramePtr& frame) {
            parts->Deliver(frame);
          });
      slot = variant;
    }
  }
  auto feed = std::make_shared<Feed>(std::move(variant));
  PartStream* parts = feed->variant->parts.get();
  return std::shared_ptr<PartStream>(std::move(feed), parts);
}

void VariantStreams::Close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  for (const auto& [key, weak] : variants_) {
    if (auto variant = weak.lock()) variant->parts->Close();
  }
}

nlohmann::json VariantStreams::ToJson() const {
  nlohmann::json out = nlohmann::json::array();
  std::lock_guard lock(mutex_);
  for (const auto& [key, weak] : variants_) {
    auto variant = weak.lock();
    if (!variant) continue;
    out.push_back(
        {{"mirror", key.mirror},
         {"width", variant->encoder->width() != 0 ? variant->encoder->width() : key.width},
         {"height", variant->encoder->height()},
         {"clients", variant->clients.load(std::memory_order_relaxed)},
         {"encoded_frames", variant->encoder->encoded_frames()}});
  }
  return out;
}

}  // namespace freshframe::http
