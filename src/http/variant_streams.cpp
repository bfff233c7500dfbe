#include "http/variant_streams.h"

#include <atomic>

#include <nlohmann/json.hpp>

namespace freshframe::http {

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

std::shared_ptr<PartStream> VariantStreams::Open(const encode::VariantKey& key) {
  if (key.is_default()) {
    // The pointer shares the hold's lifetime and points at the Fanout.
    return std::shared_ptr<PartStream>(std::make_shared<Demand::Hold>(demand_), &default_stream_);
  }
  if (encoders_ == nullptr) return nullptr;
  std::shared_ptr<Variant> variant;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return nullptr;
    std::erase_if(variants_, [](const auto& entry) { return entry.second.expired(); });
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
