#include "bus/text_bus.h"

#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

namespace freshframe::bus {
namespace {

using namespace std::chrono_literals;

TEST(TextBusTest, FrameRoundTripsTextsOfEveryLength) {
  for (size_t length : {size_t{0}, size_t{1}, kTextPadBytes - 1, kTextPadBytes, kTextPadBytes + 1,
                        3 * kTextPadBytes + 17}) {
    std::string text(length, 'x');
    for (size_t i = 0; i < length; ++i) text[i] = static_cast<char>('a' + i % 26);
    const Frame frame = TextToFrame(text, 7);
    EXPECT_EQ(frame.image.rows, 1);
    EXPECT_EQ(frame.image.type(), CV_8UC1);
    // Padded to whole pads, so the bus keeps its size while texts vary.
    EXPECT_EQ(static_cast<size_t>(frame.image.cols) % kTextPadBytes, 0u);
    EXPECT_GT(static_cast<size_t>(frame.image.cols), length);
    EXPECT_EQ(frame.meta.sequence, 7u);
    EXPECT_EQ(frame.meta.format, PixelFormat::kGray8);
    auto back = TextFromFrame(frame);
    ASSERT_TRUE(back.has_value()) << length;
    EXPECT_EQ(*back, text) << length;
  }
}

TEST(TextBusTest, PaddingIsJsonWhitespace) {
  // A reader in another language may parse the padded bytes as they are.
  const Frame frame = TextToFrame(R"({"a":1})", 1);
  const std::string raw(reinterpret_cast<const char*>(frame.image.data),
                        static_cast<size_t>(frame.image.cols));
  EXPECT_EQ(raw.substr(0, 7), R"({"a":1})");
  EXPECT_EQ(raw.find_first_not_of(' ', 7), std::string::npos);
}

TEST(TextBusTest, RefusesFramesThatAreNotTexts) {
  Frame picture;
  picture.image = cv::Mat(4, 4, CV_8UC3, cv::Scalar::all(32));
  EXPECT_FALSE(TextFromFrame(picture).has_value());
  Frame tall;
  tall.image = cv::Mat(2, 8, CV_8UC1, cv::Scalar::all(32));
  EXPECT_FALSE(TextFromFrame(tall).has_value());
}

// The stages over a real bus: what infer writes is what serve reads, newest
// first, with the reader started before the writer (as serve may be).
TEST(TextBusTest, StagesCarryTextsFromWriterToReader) {
  const std::string name = "test.text." + std::to_string(getpid());
  BusWriter::Unlink(name);
  {
    LatestSlot<TextPtr> in;
    LatestSlot<TextPtr> out;
    auto reader = BusReader::Open(name, BusOptions{});
    ASSERT_TRUE(reader) << reader.error().message;
    TextSubscriberStage subscriber(std::move(reader).value(), name, out);
    subscriber.Start();
    auto writer = BusWriter::Open(name, BusOptions{});
    ASSERT_TRUE(writer) << writer.error().message;
    TextPublisherStage publisher(in, std::move(writer).value(), name);
    publisher.Start();

    uint64_t seen = 0;
    const std::vector<std::string> texts = {
        R"({"n":1})", R"({"n":2,"long":")" + std::string(2 * kTextPadBytes, 'z') + "\"}",
        R"({"n":3})"};
    for (const std::string& text : texts) {
      in.Publish(std::make_shared<const std::string>(text));
      // Newest-only: wait until this text (not an older one) arrives.
      bool arrived = false;
      for (int i = 0; i < 50 && !arrived; ++i) {
        auto got = out.WaitNewer(seen, 100ms);
        if (!got) continue;
        seen = got->version;
        arrived = *got->value == text;
      }
      EXPECT_TRUE(arrived) << text.substr(0, 20);
    }
    EXPECT_GE(subscriber.received(), 1u);
    publisher.Stop();
    subscriber.Stop();
  }
  BusWriter::Unlink(name);
}

}  // namespace
}  // namespace freshframe::bus
