#include <nlohmann/json.hpp>

#include "rtmp/rtmp.h"

namespace freshframe::rtmp {

struct RtmpPusher::Impl {
  Impl(RtmpOptions opts, egress::SubscribeFn subscribe, Demand& demand,
       h264::KeyframeRequests& keyframes)
      : options(std::move(opts)),
        feed(std::move(subscribe), demand, keyframes),
        status("rtmp", RedactUrl(options.url)) {}
  RtmpOptions options;
  egress::Feed feed;
  egress::OutputStatus status;
};

RtmpPusher::RtmpPusher(RtmpOptions options, egress::SubscribeFn subscribe, Demand& demand,
                       h264::KeyframeRequests& keyframes)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(subscribe), demand, keyframes)) {}
RtmpPusher::~RtmpPusher() { Stop(); }
void RtmpPusher::Start() {}
void RtmpPusher::Stop() {}
nlohmann::json RtmpPusher::Stats() const { return impl_->status.Json(&impl_->feed); }

}  // namespace freshframe::rtmp
