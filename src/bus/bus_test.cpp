#include "bus/bus.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "bus/bus_test_util.h"
#include "bus/shm_object.h"

namespace freshframe::bus {
namespace {

using namespace std::chrono_literals;

using testing::Checksum;
using testing::HelperProcess;
using testing::MakeFrame;
using testing::ObjectImage;
using testing::ReportToParent;
using testing::TestBus;
using testing::WithSlots;

TEST(BusTest, NamesAreValidated) {
  EXPECT_TRUE(ShmName("cam0.annotated").ok());
  EXPECT_EQ(*ShmName("cam0"), "freshframe.cam0");
  for (const char* bad : {"", "a/b", "with space", "../x"}) {
    auto name = ShmName(bad);
    EXPECT_FALSE(name.ok()) << bad;
  }
  EXPECT_FALSE(BusWriter::Open("a/b").ok());
}

TEST(BusTest, CopyAndViewReturnTheFrameAndItsMetadata) {
  TestBus bus("copy");
  auto writer = BusWriter::Open(bus.name());
  ASSERT_TRUE(writer.ok()) << writer.error().message;
  auto reader = BusReader::Open(bus.name());
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  Frame frame = MakeFrame(64, 48, 7);
  frame.meta.stamps.grab_us = 11;
  frame.meta.stamps.infer_end_us = 22;
  ASSERT_TRUE((*writer)->Publish(frame, Checksum(frame.image)).ok());

  BusFrame info;
  auto copy = (*reader)->ReadCopy(1s, &info);
  ASSERT_TRUE(copy.has_value());
  EXPECT_EQ(copy->meta.sequence, 7U);
  EXPECT_EQ(copy->meta.stamps.capture_us, 1007);
  EXPECT_EQ(copy->meta.stamps.grab_us, 11);
  EXPECT_EQ(copy->meta.stamps.infer_end_us, 22);
  EXPECT_EQ(info.checksum, Checksum(frame.image));
  EXPECT_EQ(cv::norm(copy->image, frame.image, cv::NORM_INF), 0.0);
  // Nothing newer: the next read times out.
  EXPECT_FALSE((*reader)->ReadCopy(50ms).has_value());

  ASSERT_TRUE((*writer)->Publish(MakeFrame(64, 48, 8)).ok());
  auto view = (*reader)->ReadView(1s);
  ASSERT_TRUE(view);
  EXPECT_EQ(view.info().meta.sequence, 8U);
  EXPECT_EQ(view.image().cols, 64);
}

TEST(BusTest, ReaderGetsTheNewestFrameNotTheOldest) {
  TestBus bus("newest");
  auto writer = BusWriter::Open(bus.name());
  auto reader = BusReader::Open(bus.name());
  ASSERT_TRUE(writer.ok() && reader.ok());
  for (uint64_t i = 1; i <= 20; ++i) ASSERT_TRUE((*writer)->Publish(MakeFrame(32, 32, i)).ok());
  auto frame = (*reader)->ReadCopy(1s);
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->meta.sequence, 20U);
}

TEST(BusTest, ReaderMayStartBeforeTheWriter) {
  TestBus bus("early");
  auto reader = BusReader::Open(bus.name());
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  EXPECT_FALSE((*reader)->WriterAlive());
  std::thread late_writer([&] {
    std::this_thread::sleep_for(100ms);
    auto writer = BusWriter::Open(bus.name());
    ASSERT_TRUE(writer.ok());
    (*writer)->Publish(MakeFrame(320, 240, 1));
    std::this_thread::sleep_for(200ms);
  });
  auto frame = (*reader)->ReadCopy(5s);
  late_writer.join();
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->image.cols, 320);  // the bus grew from empty slots
}

TEST(BusTest, RestartedWriterIsPickedUpAndSizeChangesAreFollowed) {
  TestBus bus("restart");
  auto reader = BusReader::Open(bus.name());
  ASSERT_TRUE(reader.ok());
  uint64_t first_epoch = 0;
  {
    auto writer = BusWriter::Open(bus.name());
    ASSERT_TRUE(writer.ok());
    first_epoch = (*writer)->epoch();
    // A second live writer is refused.
    auto second = BusWriter::Open(bus.name());
    ASSERT_FALSE(second.ok());
    EXPECT_NE(second.error().message.find("already has a writer"), std::string::npos);
    (*writer)->Publish(MakeFrame(64, 48, 1));
    ASSERT_TRUE((*reader)->ReadCopy(1s).has_value());
  }
  auto writer = BusWriter::Open(bus.name());
  ASSERT_TRUE(writer.ok());
  EXPECT_GT((*writer)->epoch(), first_epoch);
  (*writer)->Publish(MakeFrame(640, 480, 1));  // larger: the bus is replaced
  BusFrame info;
  auto frame = (*reader)->ReadCopy(2s, &info);
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->image.cols, 640);
  EXPECT_EQ(info.writer_epoch, (*writer)->epoch());
  (*writer)->Publish(MakeFrame(100, 50, 2, 1));  // smaller and gray: same slots
  frame = (*reader)->ReadCopy(2s);
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->image.channels(), 1);
  EXPECT_EQ(frame->image.rows, 50);
}

// A writer that died between installing a resized object and marking the
// old one replaced: readers still find the new object by its name.
TEST(BusTest, ReadersFollowAReplacementThatWasNeverAnnounced) {
  TestBus bus("unannounced");
  auto reader = BusReader::Open(bus.name());
  ASSERT_TRUE(reader.ok());
  {
    auto writer = BusWriter::Open(bus.name());
    ASSERT_TRUE(writer.ok());
    (*writer)->Publish(MakeFrame(64, 48, 1));
    ASSERT_TRUE((*reader)->ReadCopy(1s).has_value());
  }
  auto replaced = Replace(*ShmName(bus.name()), 640 * 480 * 3, kDefaultSlots, 7, 0600);
  ASSERT_TRUE(replaced.ok()) << replaced.error().message;
  auto writer = BusWriter::Open(bus.name());
  ASSERT_TRUE(writer.ok()) << writer.error().message;
  (*writer)->Publish(MakeFrame(640, 480, 2));
  auto frame = (*reader)->ReadCopy(3s);
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->meta.sequence, 2U);
}

TEST(BusTest, ZombiesAreNotAlive) {
  const pid_t child = fork();  // the child only exits: nothing unsafe after fork
  ASSERT_GE(child, 0);
  if (child == 0) _exit(0);
  // Waits until the child has exited but leaves it unreaped: a zombie.
  siginfo_t info{};
  ASSERT_EQ(waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT), 0);
  EXPECT_FALSE(ProcessAlive(child));
  EXPECT_TRUE(ProcessAlive(getpid()));
  waitpid(child, nullptr, 0);
  EXPECT_FALSE(ProcessAlive(child));
}

TEST(BusTest, ForeignObjectsAreClearErrors) {
  const std::string junk = "freshframe.test.junk." + std::to_string(getpid());
  int fd = shm_open(("/" + junk).c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  std::vector<char> garbage(8192, 'x');
  ASSERT_EQ(write(fd, garbage.data(), garbage.size()), static_cast<ssize_t>(garbage.size()));
  auto reader = BusReader::Open("test.junk." + std::to_string(getpid()));
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(reader.error().message.find("not a freshframe bus"), std::string::npos);
  // The right magic but another layout version.
  const uint64_t magic = 0x3153554246524646ULL;
  const uint32_t version = 99;
  ASSERT_EQ(pwrite(fd, &magic, sizeof magic, 0), static_cast<ssize_t>(sizeof magic));
  ASSERT_EQ(pwrite(fd, &version, sizeof version, 8), static_cast<ssize_t>(sizeof version));
  reader = BusReader::Open("test.junk." + std::to_string(getpid()));
  ASSERT_FALSE(reader.ok());
  EXPECT_NE(reader.error().message.find("version 99"), std::string::npos);
  close(fd);
  shm_unlink(("/" + junk).c_str());
}

TEST(BusTest, ViewStaysValidWhileTheWriterGoesOn) {
  TestBus bus("view");
  auto writer = BusWriter::Open(bus.name(), WithSlots(4));
  auto reader = BusReader::Open(bus.name());
  ASSERT_TRUE(writer.ok() && reader.ok());
  Frame first = MakeFrame(64, 48, 1);
  (*writer)->Publish(first);
  auto view = (*reader)->ReadView(1s);
  ASSERT_TRUE(view);
  for (uint64_t i = 2; i < 50; ++i) {
    auto result = (*writer)->Publish(MakeFrame(64, 48, i));
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(*result, BusWriter::Result::kPublished);  // never blocked by the pin
  }
  EXPECT_EQ(view.info().meta.sequence, 1U);
  EXPECT_EQ(cv::norm(view.image(), first.image, cv::NORM_INF), 0.0);
  view.Release();
  auto newest = (*reader)->ReadView(1s);
  ASSERT_TRUE(newest);
  EXPECT_EQ(newest.info().meta.sequence, 49U);
}

TEST(BusTest, WriterDropsRatherThanWaitsWhenEverySlotIsPinned) {
  TestBus bus("pinned");
  EXPECT_FALSE(BusWriter::Open(bus.name() + ".one", WithSlots(1)).ok());
  auto writer = BusWriter::Open(bus.name(), WithSlots(2));
  ASSERT_TRUE(writer.ok());
  auto reader = BusReader::Open(bus.name());
  ASSERT_TRUE(reader.ok());
  (*writer)->Publish(MakeFrame(16, 16, 1));
  auto view = (*reader)->ReadView(1s);  // pins slot A (the newest)
  ASSERT_TRUE(view);
  (*writer)->Publish(MakeFrame(16, 16, 2));  // goes to slot B, now newest
  // A is pinned and B is the newest: nowhere to write.
  auto result = (*writer)->Publish(MakeFrame(16, 16, 3));
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(*result, BusWriter::Result::kDropped);
  EXPECT_EQ((*writer)->dropped(), 1U);
  view.Release();
  EXPECT_EQ(*(*writer)->Publish(MakeFrame(16, 16, 4)), BusWriter::Result::kPublished);
}

TEST(BusTest, ClaimedFramesAreInvisibleUntilCommitted) {
  TestBus bus("claim");
  auto writer = BusWriter::Open(bus.name(), WithSlots(3));
  auto reader = BusReader::Open(bus.name());
  ASSERT_TRUE(writer.ok() && reader.ok());
  ASSERT_TRUE((*writer)->Publish(MakeFrame(64, 48, 1)).ok());
  ASSERT_TRUE((*reader)->ReadCopy(1s).has_value());

  auto claim = (*writer)->ClaimSlot(64, 48, 3);
  ASSERT_TRUE(claim.ok()) << claim.error().message;
  ASSERT_TRUE(*claim);
  ASSERT_EQ(claim->image().size(), cv::Size(64, 48));
  ASSERT_EQ(claim->image().type(), CV_8UC3);
  cv::randu(claim->image(), cv::Scalar::all(0), cv::Scalar::all(256));
  const cv::Mat written = claim->image().clone();
  // Filled but not committed: readers have nothing new.
  EXPECT_FALSE((*reader)->ReadCopy(50ms).has_value());

  FrameMeta meta;
  meta.sequence = 2;
  meta.stamps.capture_us = 1234;
  auto result = (*writer)->Commit(*claim, meta, Checksum(written));
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(*result, BusWriter::Result::kPublished);
  EXPECT_FALSE(*claim);  // spent
  BusFrame info;
  auto frame = (*reader)->ReadCopy(1s, &info);
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->meta.sequence, 2U);
  EXPECT_EQ(frame->meta.width, 64);
  EXPECT_EQ(frame->meta.stamps.capture_us, 1234);
  EXPECT_EQ(info.checksum, Checksum(written));
  EXPECT_EQ(cv::norm(frame->image, written, cv::NORM_INF), 0.0);
  // A spent claim commits nothing.
  EXPECT_EQ(*(*writer)->Commit(*claim, meta), BusWriter::Result::kDropped);
  EXPECT_EQ((*writer)->published(), 2U);
}

TEST(BusTest, AbandonedClaimsPublishNothingAndGrowTheBus) {
  TestBus bus("abandon");
  auto writer = BusWriter::Open(bus.name(), WithSlots(2));
  auto reader = BusReader::Open(bus.name());
  ASSERT_TRUE(writer.ok() && reader.ok());
  ASSERT_TRUE((*writer)->Publish(MakeFrame(32, 32, 1)).ok());
  {
    auto dropped = (*writer)->ClaimSlot(32, 32, 3);
    ASSERT_TRUE(dropped.ok() && *dropped);
  }  // destroyed uncommitted: abandoned
  auto first = (*writer)->ClaimSlot(32, 32, 1);
  ASSERT_TRUE(first.ok() && *first);
  // Claiming again abandons the first claim: committing it does nothing.
  auto second = (*writer)->ClaimSlot(320, 240, 1);  // larger: the bus grows
  ASSERT_TRUE(second.ok()) << second.error().message;
  ASSERT_TRUE(*second);
  EXPECT_EQ(*(*writer)->Commit(*first, FrameMeta{}), BusWriter::Result::kDropped);
  second->image().setTo(cv::Scalar(77));
  FrameMeta meta;
  meta.sequence = 9;
  ASSERT_EQ(*(*writer)->Commit(*second, meta), BusWriter::Result::kPublished);
  auto frame = (*reader)->ReadCopy(1s);
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->meta.sequence, 9U);
  EXPECT_EQ(frame->image.type(), CV_8UC1);
  EXPECT_EQ(frame->image.size(), cv::Size(320, 240));
  EXPECT_EQ(cv::norm(frame->image, cv::NORM_INF), 77.0);
  EXPECT_FALSE((*writer)->ClaimSlot(0, 10, 3).ok());
  EXPECT_FALSE((*writer)->ClaimSlot(10, 10, 4).ok());
}

// The writer publishes as fast as it can; 8 readers (copy and view) check
// every frame's checksum. Bounded in time: this is a test, not the benchmark.
TEST(BusTest, StressReadersNeverSeeTornFrames) {
  TestBus bus("stress");
  auto writer = BusWriter::Open(bus.name());
  ASSERT_TRUE(writer.ok());
  std::atomic<bool> done{false};
  std::atomic<uint64_t> checked{0}, bad{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 8; ++r) {
    readers.emplace_back([&, r] {
      auto reader = BusReader::Open(bus.name());
      ASSERT_TRUE(reader.ok());
      while (!done.load()) {
        if (r % 2 == 0) {
          BusFrame info;
          auto frame = (*reader)->ReadCopy(100ms, &info);
          if (!frame) continue;
          if (Checksum(frame->image) != info.checksum) bad.fetch_add(1);
        } else {
          auto view = (*reader)->ReadView(100ms);
          if (!view) continue;
          if (Checksum(view.image()) != view.info().checksum) bad.fetch_add(1);
        }
        checked.fetch_add(1);
      }
    });
  }
  std::vector<Frame> frames;
  for (int i = 0; i < 8; ++i) frames.push_back(MakeFrame(160, 120, 0));
  const auto end = std::chrono::steady_clock::now() + 1500ms;
  uint64_t sequence = 0;
  while (std::chrono::steady_clock::now() < end) {
    Frame& frame = frames[sequence % frames.size()];
    frame.meta.sequence = ++sequence;
    const uint64_t checksum = Checksum(frame.image);
    if (sequence % 2 == 0) {
      ASSERT_TRUE((*writer)->Publish(frame, checksum).ok());
      continue;
    }
    // Every other frame written in place: the claim path must be as safe.
    auto claim = (*writer)->ClaimSlot(frame.image.cols, frame.image.rows, 3);
    ASSERT_TRUE(claim.ok());
    if (!*claim) continue;
    frame.image.copyTo(claim->image());
    ASSERT_TRUE((*writer)->Commit(*claim, frame.meta, checksum).ok());
  }
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0U);
  EXPECT_GT(checked.load(), 100U);
  EXPECT_GT(sequence, 1000U);
}

// The helper processes of KilledWritersAndReadersNeverCorruptTheBus: this
// binary started afresh (HelperProcess), never a fork of the threaded test
// process. Skipped unless started that way.
TEST(BusTestHelper, WriteUntilKilled) {
  const char* name = std::getenv("FRESHFRAME_BUS_TEST_WRITE");
  if (name == nullptr) GTEST_SKIP() << "helper process of KilledWritersAndReaders";
  auto writer = BusWriter::Open(name);
  if (!writer) _exit(3);
  Frame frame = MakeFrame(320, 240, 0);
  ReportToParent("writing");
  for (uint64_t i = 1;; ++i) {
    frame.image.at<cv::Vec3b>(static_cast<int>(i % 240), 5)[0] = static_cast<uint8_t>(i);
    frame.meta.sequence = i;
    (void)(*writer)->Publish(frame, Checksum(frame.image));
  }
}

TEST(BusTestHelper, PinUntilKilled) {
  const char* name = std::getenv("FRESHFRAME_BUS_TEST_PIN");
  if (name == nullptr) GTEST_SKIP() << "helper process of KilledWritersAndReaders";
  auto reader = BusReader::Open(name);
  if (!reader) _exit(3);
  auto view = (*reader)->ReadView(10s);
  if (!view) _exit(4);
  ReportToParent("pinned " + std::to_string(view.info().meta.sequence));
  for (;;) pause();  // hold the view until killed
}

// A helper process writes at full speed and is SIGKILLed at random moments,
// again and again; a reader here checks every frame and a new writer always
// takes over. Then readers are killed holding views, leaving dead pins on
// every slot but the newest: a writer that honoured them would drop every
// frame from then on.
TEST(BusTest, KilledWritersAndReadersNeverCorruptTheBus) {
  TestBus bus("crash");
  auto reader = BusReader::Open(bus.name());
  ASSERT_TRUE(reader.ok());
  std::mt19937 random(42);
  uint64_t checked = 0;
  for (int round = 0; round < 12; ++round) {
    HelperProcess child("BusTestHelper.WriteUntilKilled", "FRESHFRAME_BUS_TEST_WRITE", bus.name());
    ASSERT_GT(child.pid(), 0);
    ASSERT_EQ(child.ReadLine(30s), "writing") << "round " << round;
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(30 + random() % 120);
    while (std::chrono::steady_clock::now() < until) {
      BusFrame info;
      auto frame = (*reader)->ReadCopy(20ms, &info);
      if (!frame) continue;
      ASSERT_EQ(Checksum(frame->image), info.checksum) << "round " << round;
      ++checked;
    }
    const int status = child.Kill();
    ASSERT_TRUE(WIFSIGNALED(status)) << "writer helper exited early: " << status;
  }
  EXPECT_GT(checked, 12U);

  // A bus of its own, so that it has the 3 slots asked for.
  TestBus pins("pins");
  constexpr uint32_t kSlots = 3;
  auto writer = BusWriter::Open(pins.name(), WithSlots(kSlots));
  ASSERT_TRUE(writer.ok()) << writer.error().message;
  auto pins_reader = BusReader::Open(pins.name());
  ASSERT_TRUE(pins_reader.ok()) << pins_reader.error().message;
  // The first frame grows the bus (a new object): map that one.
  ASSERT_EQ(*(*writer)->Publish(MakeFrame(320, 240, 999)), BusWriter::Result::kPublished);
  ObjectImage image(pins.path());
  ASSERT_TRUE(image.ok());
  ASSERT_EQ(image.header().slot_count, kSlots);
  // Each helper pins the newest slot and stays alive until all have pinned:
  // a live reader's entry is not reused, so each pin stays in the table
  // (a reader that registers resets the pin of the dead entry it takes).
  std::set<uint32_t> dead_pins;
  std::vector<std::unique_ptr<HelperProcess>> pinners;
  for (uint64_t round = 0; round < kSlots - 1; ++round) {
    const uint64_t sequence = 1000 + round;
    ASSERT_EQ(*(*writer)->Publish(MakeFrame(320, 240, sequence)), BusWriter::Result::kPublished);
    const uint32_t slot = image.newest_slot();
    auto& child = *pinners.emplace_back(std::make_unique<HelperProcess>(
        "BusTestHelper.PinUntilKilled", "FRESHFRAME_BUS_TEST_PIN", pins.name()));
    ASSERT_GT(child.pid(), 0);
    ASSERT_EQ(child.ReadLine(30s), "pinned " + std::to_string(sequence));
    // The pin is really there, on the newest slot, under the helper's pid.
    bool pinned = false;
    for (const auto& entry : image.header().readers) {
      pinned = pinned || (entry.pid.load() == child.pid() &&
                          entry.pinned.load() == static_cast<int32_t>(slot));
    }
    ASSERT_TRUE(pinned) << "helper " << child.pid() << " holds no pin on slot " << slot;
    dead_pins.insert(slot);
  }
  for (auto& child : pinners) child->Kill();
  // Their pins stay behind, under dead pids.
  size_t left = 0;
  for (const auto& entry : image.header().readers) {
    left += dead_pins.count(static_cast<uint32_t>(entry.pinned.load())) != 0 ? 1U : 0U;
  }
  ASSERT_EQ(left, kSlots - 1);
  // One more frame: now the newest is the one slot without a dead pin.
  ASSERT_EQ(*(*writer)->Publish(MakeFrame(320, 240, 1999)), BusWriter::Result::kPublished);
  ASSERT_EQ(dead_pins.size(), kSlots - 1);
  ASSERT_EQ(dead_pins.count(image.newest_slot()), 0U);
  for (uint64_t i = 0; i < 10; ++i) {
    auto result = (*writer)->Publish(MakeFrame(320, 240, 2000 + i));
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(*result, BusWriter::Result::kPublished) << "frame " << i;
  }
  EXPECT_EQ((*writer)->dropped(), 0U);
  auto frame = (*pins_reader)->ReadCopy(1s);
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->meta.sequence, 2009U);
}

TEST(BusTest, SixteenReadersAtOnce) {
  TestBus bus("sixteen");
  auto writer = BusWriter::Open(bus.name());
  ASSERT_TRUE(writer.ok());
  std::vector<std::unique_ptr<BusReader>> readers;
  for (int i = 0; i < 16; ++i) {
    auto reader = BusReader::Open(bus.name());
    ASSERT_TRUE(reader.ok());
    readers.push_back(std::move(reader).value());
  }
  (*writer)->Publish(MakeFrame(64, 48, 5));
  for (auto& reader : readers) {
    auto frame = reader->ReadCopy(1s);
    ASSERT_TRUE(frame.has_value());
    EXPECT_EQ(frame->meta.sequence, 5U);
  }
}

}  // namespace
}  // namespace freshframe::bus
