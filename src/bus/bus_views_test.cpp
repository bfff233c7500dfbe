// A reader that holds several views at once (BusReader::Open(..., views)),
// as the Python package's Subscriber does.
#include <chrono>
#include <vector>

#include <gtest/gtest.h>

#include "bus/bus.h"
#include "bus/bus_test_util.h"

namespace freshframe::bus {
namespace {

using namespace std::chrono_literals;
using testing::MakeFrame;
using testing::TestBus;
using testing::WithSlots;

TEST(BusViewsTest, EveryHeldViewStaysUnchangedWhileTheWriterGoesOn) {
  TestBus bus("views");
  auto writer = BusWriter::Open(bus.name(), WithSlots(6));
  auto reader = BusReader::Open(bus.name(), {}, 3);
  ASSERT_TRUE(writer.ok() && reader.ok());
  std::vector<Frame> sent;
  std::vector<BusReader::View> views;
  for (uint64_t i = 1; i <= 3; ++i) {
    sent.push_back(MakeFrame(64, 48, i));
    ASSERT_EQ(*(*writer)->Publish(sent.back()), BusWriter::Result::kPublished);
    views.push_back((*reader)->ReadView(1s));
    ASSERT_TRUE(views.back());
  }
  // Three pins and the newest leave two slots of six: never a drop.
  for (uint64_t i = 4; i < 40; ++i) {
    EXPECT_EQ(*(*writer)->Publish(MakeFrame(64, 48, i)), BusWriter::Result::kPublished);
  }
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(views[i].info().meta.sequence, i + 1);
    EXPECT_EQ(cv::norm(views[i].image(), sent[i].image, cv::NORM_INF), 0.0) << "view " << i;
  }
}

TEST(BusViewsTest, ANewViewBeyondTheLimitTakesTheOldestsPin) {
  TestBus bus("views-limit");
  auto writer = BusWriter::Open(bus.name(), WithSlots(4));
  auto reader = BusReader::Open(bus.name(), {}, 2);
  ASSERT_TRUE(writer.ok() && reader.ok());
  (*writer)->Publish(MakeFrame(16, 16, 1));
  auto first = (*reader)->ReadView(1s);
  (*writer)->Publish(MakeFrame(16, 16, 2));
  auto second = (*reader)->ReadView(1s);
  ASSERT_TRUE(first && second);
  // Pins on the slots of 1 and 2, newest 2: slots 3 and 4 free.
  const Frame frame3 = MakeFrame(16, 16, 3);
  (*writer)->Publish(frame3);
  auto third = (*reader)->ReadView(1s);  // takes the pin of frame 1
  ASSERT_TRUE(third);
  EXPECT_EQ(third.info().meta.sequence, 3U);
  // Releasing the stale first view must not drop the pin its entry now
  // holds for the third: the writer would then overwrite frame 3.
  first.Release();
  // Pins on 2 and 3: the writer always finds a slot (4 of them, two
  // pinned, one newest), so two pins never make it drop.
  for (uint64_t i = 4; i < 20; ++i) {
    EXPECT_EQ(*(*writer)->Publish(MakeFrame(16, 16, i)), BusWriter::Result::kPublished);
  }
  EXPECT_EQ(cv::norm(third.image(), frame3.image, cv::NORM_INF), 0.0);
}

TEST(BusViewsTest, ReleasedViewsFreeTheirSlotsAndEntries) {
  TestBus bus("views-release");
  auto writer = BusWriter::Open(bus.name(), WithSlots(3));
  auto reader = BusReader::Open(bus.name(), {}, 2);
  ASSERT_TRUE(writer.ok() && reader.ok());
  (*writer)->Publish(MakeFrame(16, 16, 1));
  auto a = (*reader)->ReadView(1s);
  (*writer)->Publish(MakeFrame(16, 16, 2));
  auto b = (*reader)->ReadView(1s);
  ASSERT_TRUE(a && b);
  // Two pins, and the newest is one of them: one slot left, then none.
  EXPECT_EQ(*(*writer)->Publish(MakeFrame(16, 16, 3)), BusWriter::Result::kPublished);
  EXPECT_EQ(*(*writer)->Publish(MakeFrame(16, 16, 4)), BusWriter::Result::kDropped);
  a.Release();
  b.Release();
  EXPECT_EQ(*(*writer)->Publish(MakeFrame(16, 16, 5)), BusWriter::Result::kPublished);
  EXPECT_EQ(*(*writer)->Publish(MakeFrame(16, 16, 6)), BusWriter::Result::kPublished);
}

TEST(BusViewsTest, AReaderTakesOneEntryPerViewAndGivesThemBack) {
  TestBus bus("views-entries");
  auto writer = BusWriter::Open(bus.name(), WithSlots(4));
  ASSERT_TRUE(writer.ok());
  EXPECT_FALSE(BusReader::Open(bus.name(), {}, 0).ok());
  EXPECT_FALSE(BusReader::Open(bus.name(), {}, kMaxViewsPerReader + 1).ok());
  std::vector<std::unique_ptr<BusReader>> readers;
  for (int i = 0; i < kMaxReaders / kMaxViewsPerReader; ++i) {
    auto reader = BusReader::Open(bus.name(), {}, kMaxViewsPerReader);
    ASSERT_TRUE(reader.ok()) << reader.error().message;
    readers.push_back(std::move(reader).value());
  }
  auto full = BusReader::Open(bus.name(), {}, 1);
  ASSERT_FALSE(full.ok());
  EXPECT_NE(full.error().message.find("no room"), std::string::npos) << full.error().message;
  readers.pop_back();
  EXPECT_TRUE(BusReader::Open(bus.name(), {}, kMaxViewsPerReader).ok());
}

TEST(BusViewsTest, ViewsSurviveTheWriterMovingToABiggerBus) {
  TestBus bus("views-resize");
  auto writer = BusWriter::Open(bus.name(), WithSlots(4));
  auto reader = BusReader::Open(bus.name(), {}, 2);
  ASSERT_TRUE(writer.ok() && reader.ok());
  Frame small = MakeFrame(16, 16, 1);
  (*writer)->Publish(small);
  auto old_view = (*reader)->ReadView(1s);
  ASSERT_TRUE(old_view);
  const Frame big = MakeFrame(320, 240, 2);
  (*writer)->Publish(big);  // replaces the object
  auto new_view = (*reader)->ReadView(1s);
  ASSERT_TRUE(new_view);
  EXPECT_EQ(new_view.info().meta.width, 320);
  EXPECT_EQ(cv::norm(old_view.image(), small.image, cv::NORM_INF), 0.0);
  old_view.Release();  // a view of the old object: must not unpin the new one
  for (uint64_t i = 3; i < 12; ++i) (*writer)->Publish(MakeFrame(320, 240, i));
  EXPECT_EQ(cv::norm(new_view.image(), big.image, cv::NORM_INF), 0.0);
}

}  // namespace
}  // namespace freshframe::bus
