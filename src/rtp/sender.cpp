#include <nlohmann/json.hpp>

#include "rtp/rtp.h"

namespace freshframe::rtp {

// Placeholder while the sender is written: keeps the public header linkable.
struct RtpSender::Impl {
  Impl(RtpOptions options, egress::SubscribeFn subscribe, Demand& demand,
       h264::KeyframeRequests& keyframes)
      : status("rtp", ToString(options.target)), feed(std::move(subscribe), demand, keyframes) {}
  egress::OutputStatus status;
  egress::Feed feed;
};

RtpSender::RtpSender(RtpOptions options, egress::SubscribeFn subscribe, Demand& demand,
                     h264::KeyframeRequests& keyframes)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(subscribe), demand, keyframes)) {}
RtpSender::~RtpSender() { Stop(); }
void RtpSender::Start() {}
void RtpSender::Stop() {}
nlohmann::json RtpSender::Stats() const { return impl_->status.Json(&impl_->feed); }

}  // namespace freshframe::rtp
