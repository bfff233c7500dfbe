// A bus never trusts its shared memory: what another process (another user,
// a crashed or hostile writer) can do to the object must end in a clear
// error, never in a crash, an out-of-bounds read or a spinning reader.
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bus/bus.h"
#include "bus/bus_stages.h"
#include "bus/bus_test_util.h"
#include "bus/shm_object.h"
#include "core/latest_slot.h"
#include "core/metrics.h"

namespace freshframe::bus {
namespace {

using namespace std::chrono_literals;
using testing::MakeFrame;
using testing::ObjectImage;
using testing::TestBus;
using testing::Watchdog;
using testing::WithSlots;

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(BusSafetyTest, GeometryMathsIsOverflowChecked) {
  auto empty = GeometryFor(8, 0);
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(empty->slots_offset, 8192U);
  EXPECT_EQ(empty->slot_stride, 4096U);
  EXPECT_EQ(empty->total_bytes, 40960U);
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  EXPECT_FALSE(GeometryFor(2, kMax).has_value());
  EXPECT_FALSE(GeometryFor(2, kMax - 127).has_value());    // 128 + capacity wraps to 1
  EXPECT_FALSE(GeometryFor(2, kMax - 4096).has_value());   // the page rounding wraps
  EXPECT_FALSE(GeometryFor(255, kMax / 200).has_value());  // stride * slots wraps
}

// An object whose header claims a capacity so large that the unchecked
// maths wrapped to the right stride and size: the reader then copied
// "pixel_bytes" of up to 2^64 bytes out of a 16 KiB object.
TEST(BusSafetyTest, ACapacityThatWrapsTheGeometryIsRefused) {
  TestBus bus("wrap");
  {
    const int fd = shm_open(("/freshframe." + bus.name()).c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    ASSERT_GE(fd, 0);
    constexpr size_t kSize = 8192 + 2 * 4096;
    ASSERT_EQ(ftruncate(fd, kSize), 0);
    void* base = mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    ASSERT_NE(base, MAP_FAILED);
    auto& h = *static_cast<layout::Header*>(base);
    h.version = layout::kVersion;
    h.header_bytes = sizeof(layout::Header);
    h.slot_count = 2;
    h.slot_header_bytes = sizeof(layout::SlotHeader);
    h.slot_capacity = std::numeric_limits<uint64_t>::max() - 126;  // 128 + it == 1 (mod 2^64)
    h.slot_stride = 4096;
    h.slots_offset = 8192;
    h.total_bytes = kSize;
    h.state.store(layout::kStateActive);
    // A frame of 1 GiB "in" slot 0 of this 16 KiB object.
    auto& slot = *reinterpret_cast<layout::SlotHeader*>(static_cast<unsigned char*>(base) + 8192);
    slot.width = 32768;
    slot.height = 32768;
    slot.channels = 1;
    slot.row_bytes = 32768;
    slot.pixel_bytes = uint64_t{32768} * 32768;
    slot.seq.store(2);
    h.newest.store(layout::Pack(1, 0));
    h.magic = layout::kMagic;
    munmap(base, kSize);
  }
  auto reader = BusReader::Open(bus.name());
  ASSERT_FALSE(reader.ok()) << "a wrapped geometry was accepted";
  EXPECT_TRUE(Contains(reader.error().message, "inconsistent header")) << reader.error().message;
  EXPECT_TRUE(Contains(reader.error().message, "slot_capacity")) << reader.error().message;
  EXPECT_TRUE(Contains(reader.error().message, "freshframe." + bus.name()))
      << reader.error().message;
}

// The header's geometry is shared memory: rewriting it after both ends
// validated it must change nothing for them (they used to re-read it on
// every access, and went wherever it pointed).
TEST(BusSafetyTest, ReaderAndWriterKeepTheGeometryTheyValidated) {
  TestBus bus("geometry");
  auto writer = BusWriter::Open(bus.name(), WithSlots(3));
  ASSERT_TRUE(writer.ok()) << writer.error().message;
  ASSERT_TRUE((*writer)->Publish(MakeFrame(64, 48, 1)).ok());  // grows: a new object
  auto reader = BusReader::Open(bus.name());
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  ASSERT_TRUE((*reader)->ReadCopy(1s).has_value());

  ObjectImage image(bus.path());
  ASSERT_TRUE(image.ok());
  layout::Header& h = image.header();
  h.slot_count = 255;
  h.slot_capacity = std::numeric_limits<uint64_t>::max();
  h.slot_stride = uint64_t{1} << 40;
  h.slots_offset = uint64_t{1} << 41;
  h.total_bytes = std::numeric_limits<uint64_t>::max();

  const Frame second = MakeFrame(64, 48, 2);
  auto published = (*writer)->Publish(second);
  ASSERT_TRUE(published.ok());
  EXPECT_EQ(*published, BusWriter::Result::kPublished);
  auto copy = (*reader)->ReadCopy(1s);
  ASSERT_TRUE(copy.has_value());
  EXPECT_EQ(copy->meta.sequence, 2U);
  EXPECT_EQ(cv::norm(copy->image, second.image, cv::NORM_INF), 0.0);

  const Frame third = MakeFrame(64, 48, 3);
  ASSERT_TRUE((*writer)->Publish(third).ok());
  auto view = (*reader)->ReadView(1s);
  ASSERT_TRUE(view);
  EXPECT_EQ(view.info().meta.sequence, 3U);
  EXPECT_EQ(cv::norm(view.image(), third.image, cv::NORM_INF), 0.0);
}

TEST(BusSafetyTest, ObjectsOfAnotherUserAreRefusedUnlessAllowed) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give an object to another user";
  TestBus bus("owner");
  {
    auto writer = BusWriter::Open(bus.name());
    ASSERT_TRUE(writer.ok()) << writer.error().message;
    ASSERT_TRUE((*writer)->Publish(MakeFrame(32, 32, 1)).ok());
  }
  constexpr uid_t kNobody = 65534;
  ASSERT_EQ(chown(bus.path().c_str(), kNobody, kNobody), 0);

  auto refused = BusReader::Open(bus.name());
  ASSERT_FALSE(refused.ok()) << "a reader used another user's bus";
  const std::string& message = refused.error().message;
  EXPECT_TRUE(Contains(message, bus.path())) << message;
  EXPECT_TRUE(Contains(message, "owned by uid 65534")) << message;
  EXPECT_TRUE(Contains(message, "--bus-allow-owner 65534")) << message;
  auto writer_refused = BusWriter::Open(bus.name());
  ASSERT_FALSE(writer_refused.ok()) << "a writer used another user's bus";
  EXPECT_TRUE(Contains(writer_refused.error().message, "owned by uid 65534"));

  BusOptions someone_else;
  someone_else.allow_owner = 12345;
  EXPECT_FALSE(BusReader::Open(bus.name(), someone_else).ok());

  BusOptions that_owner;
  that_owner.allow_owner = kNobody;
  auto allowed = BusReader::Open(bus.name(), that_owner);
  ASSERT_TRUE(allowed.ok()) << allowed.error().message;
  auto frame = (*allowed)->ReadCopy(1s);
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->meta.sequence, 1U);

  BusOptions anyone;
  anyone.allow_any_owner = true;
  EXPECT_TRUE(BusReader::Open(bus.name(), anyone).ok());
}

TEST(BusSafetyTest, WorldWritableAndSpecialModesAreRefused) {
  for (uint32_t mode : {0600U, 0660U, 0640U, 0700U}) {
    EXPECT_TRUE(CheckBusMode(mode).ok()) << std::oct << mode;
  }
  for (uint32_t mode : {0666U, 0602U, 0622U, 04600U, 02660U, 01600U, 0400U, 0200U, 010600U}) {
    EXPECT_FALSE(CheckBusMode(mode).ok()) << std::oct << mode;
  }

  TestBus bus("mode");
  BusOptions world;
  world.mode = 0666;
  auto refused = BusWriter::Open(bus.name(), world);
  ASSERT_FALSE(refused.ok()) << "a world-writable bus was created";
  EXPECT_TRUE(Contains(refused.error().message, "world-writable")) << refused.error().message;
  EXPECT_NE(access(bus.path().c_str(), F_OK), 0) << "the refused bus was created anyway";
  BusOptions setuid;
  setuid.mode = 04600;
  refused = BusWriter::Open(bus.name(), setuid);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(Contains(refused.error().message, "setuid")) << refused.error().message;

  // An existing object with such a mode is refused as well.
  ASSERT_TRUE(BusWriter::Open(bus.name()).ok());
  ASSERT_EQ(chmod(bus.path().c_str(), 0666), 0);
  auto reader = BusReader::Open(bus.name());
  ASSERT_FALSE(reader.ok()) << "a world-writable bus was used";
  EXPECT_TRUE(Contains(reader.error().message, "world-writable")) << reader.error().message;
  EXPECT_TRUE(Contains(reader.error().message, bus.path())) << reader.error().message;
  ASSERT_EQ(chmod(bus.path().c_str(), 02660), 0);
  reader = BusReader::Open(bus.name());
  ASSERT_FALSE(reader.ok());
  EXPECT_TRUE(Contains(reader.error().message, "setgid")) << reader.error().message;
  ASSERT_EQ(chmod(bus.path().c_str(), 0660), 0);
  EXPECT_TRUE(BusReader::Open(bus.name()).ok());
}

TEST(BusSafetyTest, AnObjectThatIsNoFileIsRefused) {
  TestBus bus("fifo");
  ASSERT_EQ(mkfifo(bus.path().c_str(), 0600), 0);
  auto reader = BusReader::Open(bus.name());
  ASSERT_FALSE(reader.ok());
  EXPECT_TRUE(Contains(reader.error().message, "not a regular file")) << reader.error().message;
}

// A bus with one published frame, and a second mapping to corrupt it with.
class CorruptedBus {
 public:
  explicit CorruptedBus(const std::string& tag) : bus_(tag) {
    auto writer = BusWriter::Open(bus_.name(), WithSlots(4));
    if (!writer) return;
    writer_ = std::move(writer).value();
    if (!writer_->Publish(MakeFrame(64, 48, 1)).ok()) return;
    auto reader = BusReader::Open(bus_.name());
    if (!reader) return;
    reader_ = std::move(reader).value();
    image_ = std::make_unique<ObjectImage>(bus_.path());
  }
  bool ok() const { return reader_ && image_ && image_->ok(); }
  const std::string& name() const { return bus_.name(); }
  BusWriter& writer() { return *writer_; }
  std::unique_ptr<BusReader>& reader() { return reader_; }
  ObjectImage& image() { return *image_; }
  layout::SlotHeader& newest_slot() { return image_->slot(image_->newest_slot()); }

 private:
  TestBus bus_;
  std::unique_ptr<BusWriter> writer_;
  std::unique_ptr<BusReader> reader_;
  std::unique_ptr<ObjectImage> image_;
};

// Corrupts `bus` with `corrupt`, then reads with a copy or a view: the read
// must give up by its deadline with an error naming the problem. A read that
// spins instead is ended by a watchdog running `repair` (the old reader then
// returned the repaired frame), and the test fails on that.
void ExpectRefusedWithoutSpinning(CorruptedBus& bus, bool view, const std::string& why,
                                  const std::function<void()>& corrupt,
                                  const std::function<void()>& repair) {
  corrupt();
  Watchdog watchdog(5s, repair);
  bool got_frame = false;
  if (view) {
    got_frame = static_cast<bool>(bus.reader()->ReadView(300ms));
  } else {
    got_frame = bus.reader()->ReadCopy(300ms).has_value();
  }
  watchdog.Disarm();
  EXPECT_FALSE(watchdog.fired()) << "the read spun until the watchdog repaired the bus";
  EXPECT_FALSE(got_frame);
  const auto& error = bus.reader()->error();
  ASSERT_TRUE(error.has_value()) << "no error for a corrupt slot";
  EXPECT_TRUE(Contains(error->message, "freshframe." + bus.name())) << error->message;
  EXPECT_TRUE(Contains(error->message, "corrupt")) << error->message;
  EXPECT_TRUE(Contains(error->message, why)) << error->message;
  // The next read waits without spinning, and still refuses the slot.
  EXPECT_FALSE(bus.reader()->ReadCopy(50ms).has_value());
  // The writer's next frame is read, and clears the error.
  if (!watchdog.fired()) repair();
  ASSERT_TRUE(bus.writer().Publish(MakeFrame(64, 48, 2)).ok());
  auto frame = bus.reader()->ReadCopy(1s);
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->meta.sequence, 2U);
  EXPECT_FALSE(bus.reader()->error().has_value());
}

TEST(BusSafetyTest, ASlotWithAnImpossibleHeaderIsAnErrorNotASpin) {
  for (bool view : {false, true}) {
    CorruptedBus bus(view ? "badview" : "badcopy");
    ASSERT_TRUE(bus.ok());
    layout::SlotHeader& slot = bus.newest_slot();
    ExpectRefusedWithoutSpinning(
        bus, view, "width or height not positive", [&] { slot.width = -5; },
        [&] { slot.width = 64; });
  }
}

TEST(BusSafetyTest, ASlotThatNeverHoldsTheNewestFrameIsAnErrorNotASpin) {
  for (bool view : {false, true}) {
    CorruptedBus bus(view ? "seqview" : "seqcopy");
    ASSERT_TRUE(bus.ok());
    layout::SlotHeader& slot = bus.newest_slot();
    const uint64_t good = slot.seq.load();
    ExpectRefusedWithoutSpinning(
        bus, view, "never holds the frame", [&] { slot.seq.store(0); },
        [&] { slot.seq.store(good); });
  }
}

TEST(BusSafetyTest, NewestNamingASlotPastTheTableIsAnError) {
  for (bool view : {false, true}) {
    CorruptedBus bus(view ? "farview" : "farcopy");
    ASSERT_TRUE(bus.ok());
    auto& newest = bus.image().header().newest;
    const uint64_t good = newest.load();
    ExpectRefusedWithoutSpinning(
        bus, view, "newest names slot 200 of 4",
        [&] { newest.store(layout::Pack(layout::IndexOf(good) + 1, 200)); },
        [&] { newest.store(good); });
  }
}

// A header that says "replaced" while the name still leads to it: the
// reader followed the name to the same object again and again, at once (on
// a bus without a frame), or returned a frame it had read already (as if it
// came from a new object).
TEST(BusSafetyTest, AReplacedStateThatLeadsNowhereNeitherSpinsNorRepeats) {
  for (bool with_frame : {false, true}) {
    TestBus bus(with_frame ? "replacedframe" : "replacedempty");
    auto reader = BusReader::Open(bus.name());
    ASSERT_TRUE(reader.ok()) << reader.error().message;
    std::unique_ptr<BusWriter> writer;
    if (with_frame) {
      auto opened = BusWriter::Open(bus.name());
      ASSERT_TRUE(opened.ok()) << opened.error().message;
      writer = std::move(opened).value();
      ASSERT_TRUE(writer->Publish(MakeFrame(64, 48, 1)).ok());
      ASSERT_TRUE((*reader)->ReadCopy(1s).has_value());  // nothing newer after this
    }
    ObjectImage image(bus.path());
    ASSERT_TRUE(image.ok());
    auto& state = image.header().state;
    state.store(layout::kStateReplaced);
    Watchdog watchdog(5s, [&] { state.store(layout::kStateActive); });
    EXPECT_FALSE((*reader)->ReadCopy(300ms).has_value()) << "a frame read twice";
    watchdog.Disarm();
    EXPECT_FALSE(watchdog.fired()) << "the read spun until the watchdog repaired the bus";
  }
}

TEST(BusSafetyTest, SubscriberStageReportsACorruptBusAndStops) {
  CorruptedBus bus("stage");
  ASSERT_TRUE(bus.ok());
  layout::SlotHeader& slot = bus.newest_slot();
  slot.channels = 7;
  Watchdog watchdog(10s, [&] { slot.channels = 3; });
  Metrics metrics;
  LatestSlot<FramePtr> out;
  BusSubscriberStage stage(std::move(bus.reader()), bus.name(), out, metrics);
  stage.Start();
  nlohmann::json state;
  for (int i = 0; i < 1000; ++i) {  // up to ~10 s on a loaded machine
    state = stage.State();
    if (state["error"].is_string()) break;
    std::this_thread::sleep_for(10ms);
  }
  stage.Stop();
  watchdog.Disarm();
  EXPECT_FALSE(watchdog.fired()) << "the stage spun until the watchdog repaired the bus";
  ASSERT_TRUE(state["error"].is_string()) << state.dump();
  EXPECT_TRUE(Contains(state["error"].get<std::string>(), "channels not 1 or 3")) << state.dump();
  EXPECT_FALSE(out.Latest().has_value()) << "a corrupt frame was passed on";
}

}  // namespace
}  // namespace freshframe::bus
