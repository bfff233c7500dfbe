#include "http/fanout.h"

#include <memory>
#include <vector>

#include <gtest/gtest.h>

namespace freshframe::http {
namespace {

class CountingSubscriber final : public PartSubscriber {
 public:
  bool OnPart(const StreamPartPtr&) override {
    ++parts;
    return true;
  }
  int parts = 0;
};

// A snapshot request that times out during an outage drops its subscriber
// while no frame is delivered: the list must not grow with every request.
TEST(PartStreamTest, SubscribersGoneWithoutADeliveryDoNotPileUp) {
  PartStream stream;
  auto steady = std::make_shared<CountingSubscriber>();
  stream.Subscribe(steady);
  for (int i = 0; i < 10'000; ++i) {
    auto waiter = std::make_shared<CountingSubscriber>();
    stream.Subscribe(waiter);
  }  // each waiter is gone at once, as a timed-out snapshot's is
  EXPECT_LE(stream.subscriber_count(), 130U);

  // The live one is still there and still served.
  std::vector<std::shared_ptr<CountingSubscriber>> live;
  for (int i = 0; i < 500; ++i) {
    live.push_back(std::make_shared<CountingSubscriber>());
    stream.Subscribe(live.back());
  }
  EXPECT_GE(stream.subscriber_count(), 501U);
  EXPECT_LE(stream.subscriber_count(), 2 * 501U + 1);
  auto frame = std::make_shared<encode::EncodedFrame>();
  stream.Deliver(frame);
  EXPECT_EQ(steady->parts, 1);
  for (const auto& subscriber : live) EXPECT_EQ(subscriber->parts, 1);
  EXPECT_EQ(stream.subscriber_count(), 501U);
}

TEST(PartStreamTest, SubscribeAfterCloseKeepsNothing) {
  PartStream stream;
  stream.Close();
  auto subscriber = std::make_shared<CountingSubscriber>();
  stream.Subscribe(subscriber);
  EXPECT_EQ(stream.subscriber_count(), 0U);
}

}  // namespace
}  // namespace freshframe::http
