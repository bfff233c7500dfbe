// The C ABI (bus/c_api.h) as the Python package uses it, in-process.
#include "bus/c_api.h"

#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "bus/bus_test_util.h"
#include "bus/text_bus.h"

namespace freshframe::bus {
namespace {

using namespace std::chrono_literals;
using testing::MakeFrame;
using testing::TestBus;

std::string LastError() { return ff_last_error(); }

TEST(CApiTest, FramesRoundTripAsViewsWithTheirStamps) {
  ASSERT_EQ(ff_abi_version(), FF_ABI_VERSION);
  TestBus bus("capi");
  ff_writer* writer = ff_writer_open(bus.name().c_str(), 4, FF_OWNER_SELF);
  ff_reader* reader = ff_reader_open(bus.name().c_str(), 2, FF_OWNER_SELF);
  ASSERT_NE(writer, nullptr) << LastError();
  ASSERT_NE(reader, nullptr) << LastError();
  const Frame frame = MakeFrame(64, 48, 7);
  ff_frame_meta meta{};
  meta.sequence = 7;
  meta.capture_us = 1234;
  meta.infer_end_us = 5678;
  meta.detections_sequence = 6;
  EXPECT_EQ(ff_writer_publish(writer, &meta, frame.image.data, 64, 48, 3, frame.image.step[0]), 1);
  EXPECT_EQ(ff_writer_published(writer), 1U);
  ff_frame out{};
  ASSERT_EQ(ff_reader_read(reader, 1000, &out), 1);
  EXPECT_EQ(out.meta.sequence, 7U);
  EXPECT_EQ(out.meta.capture_us, 1234);
  EXPECT_EQ(out.meta.infer_end_us, 5678);
  // publish_us 0: stamped when the frame became visible.
  EXPECT_GT(out.meta.publish_us, 0);
  EXPECT_LE(out.meta.publish_us, ff_now_us());
  EXPECT_EQ(out.meta.detections_sequence, 6U);
  EXPECT_EQ(out.meta.format, static_cast<uint32_t>(FF_FORMAT_BGR24));
  EXPECT_EQ(out.meta.width, 64);
  EXPECT_EQ(out.channels, 3U);
  EXPECT_EQ(out.row_bytes, 64U * 3);
  EXPECT_EQ(std::memcmp(out.pixels, frame.image.data, 64 * 48 * 3), 0);
  // Nothing newer: a timeout, not the same frame again.
  ff_frame again{};
  EXPECT_EQ(ff_reader_read(reader, 20, &again), 0);
  ff_reader_release(reader, out.view_id);
  ff_reader_release(reader, out.view_id);  // twice: ignored
  ff_reader_release(reader, 999);          // unknown: ignored
  EXPECT_EQ(ff_reader_writer_alive(reader), 1);
  ff_writer_close(writer);
  EXPECT_EQ(ff_reader_writer_alive(reader), 0);
  ff_reader_close(reader);
}

TEST(CApiTest, TextsArriveAsTextFrames) {
  TestBus bus("capi-text");
  ff_writer* writer = ff_writer_open(bus.name().c_str(), 0, FF_OWNER_SELF);
  ASSERT_NE(writer, nullptr) << LastError();
  auto reader = BusReader::Open(bus.name());
  ASSERT_TRUE(reader.ok());
  const std::string text = R"({"sequence":3,"detections":[]})";
  EXPECT_EQ(ff_writer_publish_text(writer, text.data(), text.size(), 3), 1);
  auto frame = (*reader)->ReadCopy(1s);
  ASSERT_TRUE(frame);
  EXPECT_EQ(TextFromFrame(*frame), text);
  EXPECT_EQ(frame->meta.sequence, 3U);
  ff_writer_close(writer);
}

TEST(CApiTest, BadArgumentsAreErrorsWithMessages) {
  EXPECT_EQ(ff_reader_open("no/slashes", 1, FF_OWNER_SELF), nullptr);
  EXPECT_NE(LastError().find("no/slashes"), std::string::npos) << LastError();
  EXPECT_EQ(ff_reader_open(nullptr, 1, FF_OWNER_SELF), nullptr);
  EXPECT_EQ(ff_writer_open("", 0, FF_OWNER_SELF), nullptr);
  TestBus bus("capi-bad");
  EXPECT_EQ(ff_reader_open(bus.name().c_str(), 0, FF_OWNER_SELF), nullptr);
  EXPECT_NE(LastError().find("views"), std::string::npos) << LastError();
  ff_writer* writer = ff_writer_open(bus.name().c_str(), 0, FF_OWNER_SELF);
  ASSERT_NE(writer, nullptr);
  EXPECT_EQ(ff_writer_open(bus.name().c_str(), 0, FF_OWNER_SELF), nullptr);  // a second writer
  EXPECT_NE(LastError().find("writer"), std::string::npos) << LastError();
  ff_frame_meta meta{};
  const uint8_t pixels[12] = {};
  EXPECT_EQ(ff_writer_publish(writer, &meta, pixels, 2, 2, 2, 4), -1);  // 2 channels
  EXPECT_EQ(ff_writer_publish(writer, &meta, pixels, 2, 2, 3, 5), -1);  // rows overlap
  EXPECT_EQ(ff_writer_publish(writer, &meta, nullptr, 2, 2, 3, 6), -1);
  EXPECT_EQ(ff_writer_publish(writer, &meta, pixels, 2, 2, 3, 6), 1);
  EXPECT_EQ(ff_reader_read(nullptr, 0, nullptr), -1);
  EXPECT_EQ(ff_reader_open(bus.name().c_str(), 1, -3), nullptr);
  EXPECT_NE(LastError().find("allow_owner"), std::string::npos) << LastError();
  ff_writer_close(writer);
  ff_writer_close(nullptr);
  ff_reader_close(nullptr);
}

TEST(CApiTest, AReaderHoldsAtMostItsViewsAndReleasesTheOldest) {
  TestBus bus("capi-views");
  ff_writer* writer = ff_writer_open(bus.name().c_str(), 5, FF_OWNER_SELF);
  ff_reader* reader = ff_reader_open(bus.name().c_str(), 2, FF_OWNER_SELF);
  ASSERT_NE(writer, nullptr);
  ASSERT_NE(reader, nullptr);
  ff_frame_meta meta{};
  std::vector<ff_frame> views;
  for (int i = 1; i <= 6; ++i) {
    const Frame frame = MakeFrame(8, 8, static_cast<uint64_t>(i));
    meta.sequence = static_cast<uint64_t>(i);
    // Never more than two pins plus the newest of five slots: no drop.
    EXPECT_EQ(ff_writer_publish(writer, &meta, frame.image.data, 8, 8, 3, 24), 1) << i;
    ff_frame out{};
    ASSERT_EQ(ff_reader_read(reader, 1000, &out), 1);
    views.push_back(out);
  }
  EXPECT_EQ(ff_writer_dropped(writer), 0U);
  ff_reader_close(reader);
  ff_writer_close(writer);
}

}  // namespace
}  // namespace freshframe::bus
