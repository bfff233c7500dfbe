// ExternalDetectionsStage over a real text bus, written in-process as another
// process would (BusWriter + TextToFrame): sets matched to their raw frames,
// scaled and drawn; bad texts counted and ignored; max age; a writer that
// goes and comes back; the detector switch.
#include "infer/bus_detections.h"

#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "bus/text_bus.h"
#include "core/clock.h"

namespace freshframe::infer {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

constexpr int kWidth = 320;
constexpr int kHeight = 240;

FramePtr MakeRaw(uint64_t sequence, int64_t capture_us = 0) {
  auto frame = std::make_shared<Frame>();
  frame->meta.sequence = sequence;
  frame->meta.width = kWidth;
  frame->meta.height = kHeight;
  frame->meta.stamps.capture_us = capture_us != 0 ? capture_us : MonotonicMicros();
  frame->image = cv::Mat(kHeight, kWidth, CV_8UC3, cv::Scalar::all(90));
  return frame;
}

// What a model publishes for `frame`, seen at model_width x model_height.
Json SetFor(const Frame& frame, std::vector<std::array<int, 4>> boxes, int model_width = kWidth,
            int model_height = kHeight) {
  Json detections = Json::array();
  for (const auto& b : boxes) {
    detections.push_back({{"label", "face"}, {"score", 0.8}, {"box", {b[0], b[1], b[2], b[3]}}});
  }
  const int64_t now = MonotonicMicros();
  return {{"sequence", frame.meta.sequence},
          {"capture_us", frame.meta.stamps.capture_us},
          {"infer_start_us", now - 2000},
          {"infer_end_us", now},
          {"width", model_width},
          {"height", model_height},
          {"detector", "python:test"},
          {"detector_running", true},
          {"detections", std::move(detections)}};
}

// True once `done` holds, polling up to `timeout` (generous: a loaded
// machine; nothing here measures speed).
bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout = 5000ms) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

class BusDetectionsTest : public ::testing::Test {
 protected:
  BusDetectionsTest()
      : name_("test.busdet." + std::to_string(getpid()) + "." +
              ::testing::UnitTest::GetInstance()->current_test_info()->name()) {
    bus::BusWriter::Unlink(name_);
  }
  ~BusDetectionsTest() override {
    if (stage_) stage_->Stop();
    writer_.reset();
    bus::BusWriter::Unlink(name_);
  }

  void Start(std::chrono::milliseconds max_age = 60s) {
    auto reader = bus::BusReader::Open(name_);
    ASSERT_TRUE(reader) << reader.error().message;
    ExternalDetectionsOptions options;
    options.bus_name = name_;
    options.max_age = max_age;
    stage_.emplace(std::move(reader).value(), options, raw_, sets_, metrics_, &json_, &settings_);
    stage_->Start();
    OpenWriter();
  }

  void OpenWriter() {
    auto writer = bus::BusWriter::Open(name_);
    ASSERT_TRUE(writer) << writer.error().message;
    writer_ = std::move(writer).value();
  }

  // A raw frame the stage is known to hold (waits for its watcher).
  FramePtr Raw(uint64_t sequence, int64_t capture_us = 0) {
    FramePtr frame = MakeRaw(sequence, capture_us);
    const size_t before = stage_->held_frames();
    raw_.Publish(frame);
    EXPECT_TRUE(WaitUntil([&] { return stage_->held_frames() > before; }));
    return frame;
  }

  void Send(const std::string& text) {
    auto published = writer_->Publish(bus::TextToFrame(text, ++texts_));
    ASSERT_TRUE(published) << published.error().message;
  }

  // The next set after the last one taken, or null.
  DetectionSetPtr NextSet(std::chrono::milliseconds timeout = 5000ms) {
    auto next = sets_.WaitNewer(sets_seen_, timeout);
    if (!next) return nullptr;
    sets_seen_ = next->version;
    return next->value;
  }

  uint64_t Count(const char* key) const { return stage_->State()[key].get<uint64_t>(); }

  // Sends `text` and waits until the stage has counted it as `key`.
  void SendAndWaitCounted(const std::string& text, const char* key) {
    const uint64_t before = Count(key);
    Send(text);
    EXPECT_TRUE(WaitUntil([&] { return Count(key) > before; })) << key << ": " << text;
  }

  std::string name_;
  LatestSlot<FramePtr> raw_;
  LatestSlot<DetectionSetPtr> sets_;
  LatestSlot<JsonTextPtr> json_;
  Metrics metrics_;
  LiveSettings settings_;
  std::unique_ptr<bus::BusWriter> writer_;
  std::optional<ExternalDetectionsStage> stage_;
  uint64_t texts_ = 0;
  uint64_t sets_seen_ = 0;
};

TEST_F(BusDetectionsTest, ASetFromTheBusIsPublishedWithItsFrameAndDrawn) {
  Start();
  LatestSlot<FramePtr> annotated;
  AnnotatorStage annotator(Overlay::kLatest, raw_, &sets_, annotated, metrics_, false, &settings_);
  annotator.Start();
  const FramePtr first = Raw(1);
  Raw(2);
  Send(SetFor(*first, {{40, 60, 50, 50}}).dump());

  const DetectionSetPtr set = NextSet();
  ASSERT_TRUE(set);
  EXPECT_TRUE(set->detector_running);
  EXPECT_EQ(set->frame, first);  // the frame the model ran on, not the newest
  ASSERT_EQ(set->detections.size(), 1U);
  EXPECT_EQ(set->detections[0].box, cv::Rect(40, 60, 50, 50));
  EXPECT_EQ(set->detections[0].label, "face");
  EXPECT_GT(set->infer_end_us, set->infer_start_us);

  auto json = json_.Latest();
  ASSERT_TRUE(json);
  const Json sent = Json::parse(*json->value);
  EXPECT_EQ(sent["detector"], "python:test");
  EXPECT_EQ(sent["sequence"], 1);
  EXPECT_EQ(sent["detections"][0]["box"], Json({40, 60, 50, 50}));

  // The next raw frame goes out with the box drawn on it.
  uint64_t seen = annotated.version();
  const FramePtr third = Raw(3);
  FramePtr out;
  ASSERT_TRUE(WaitUntil([&] {
    auto next = annotated.WaitNewer(seen, 100ms);
    if (next) seen = next->version;
    if (next && next->value->meta.sequence == 3) out = next->value;
    return out != nullptr;
  }));
  EXPECT_EQ(out->meta.detections_sequence, 1U);
  EXPECT_GT(cv::norm(out->image(cv::Rect(40, 60, 51, 51)), third->image(cv::Rect(40, 60, 51, 51)),
                     cv::NORM_L1),
            0);
  annotator.Stop();

  // Figures like any detector's: rate, work and capture -> arrival latency.
  const StageMetrics& infer = metrics_.Stage("infer");
  EXPECT_EQ(infer.frames(), 1U);
  EXPECT_EQ(infer.Work(MonotonicMicros()).count, 1U);
  EXPECT_EQ(infer.Latency(MonotonicMicros()).count, 1U);
  const Json state = stage_->State();
  EXPECT_EQ(state["sets"], 1);
  EXPECT_EQ(state["model"], "python:test");
  EXPECT_TRUE(WaitUntil([&] { return stage_->alive(); }));
}

TEST_F(BusDetectionsTest, BoxesAreScaledFromTheModelsSmallerImage) {
  Start();
  const FramePtr frame = Raw(1);
  Send(SetFor(*frame, {{10, 15, 20, 25}}, kWidth / 4, kHeight / 4).dump());
  const DetectionSetPtr set = NextSet();
  ASSERT_TRUE(set);
  ASSERT_EQ(set->detections.size(), 1U);
  EXPECT_EQ(set->detections[0].box, cv::Rect(40, 60, 80, 100));
  // The JSON carries frame coordinates and the frame's size.
  const Json sent = Json::parse(*json_.Latest()->value);
  EXPECT_EQ(sent["width"], kWidth);
  EXPECT_EQ(sent["detections"][0]["box"], Json({40, 60, 80, 100}));
}

TEST_F(BusDetectionsTest, BadTextsAreCountedAndIgnoredAndTheNextGoodSetIsUsed) {
  Start();
  const FramePtr frame = Raw(1);
  Json nan_box = SetFor(*frame, {{1, 2, 3, 4}});
  std::string nan_text = nan_box.dump();
  nan_text.replace(nan_text.find("[1,2,3,4]"), 9, "[1,2,NaN,4]");
  Json oversize = SetFor(*frame, {});
  for (int i = 0; i < 1001; ++i)
    oversize["detections"].push_back(SetFor(*frame, {{1, 1, 1, 1}})["detections"][0]);
  SendAndWaitCounted("this is not JSON", "rejected");
  SendAndWaitCounted(nan_text, "rejected");
  SendAndWaitCounted(oversize.dump(), "rejected");
  SendAndWaitCounted(R"({"width": 0, "height": 240, "detections": []})", "rejected");
  EXPECT_EQ(Count("rejected"), 4U);
  EXPECT_EQ(Count("sets"), 0U);
  EXPECT_NE(stage_->State()["last_error"].get<std::string>().find("width"), std::string::npos);
  EXPECT_FALSE(sets_.Latest());  // nothing published for any of them

  Send(SetFor(*frame, {{5, 6, 7, 8}}).dump());
  const DetectionSetPtr set = NextSet();
  ASSERT_TRUE(set);
  EXPECT_EQ(set->detections.at(0).box, cv::Rect(5, 6, 7, 8));
  EXPECT_EQ(Count("sets"), 1U);
}

TEST_F(BusDetectionsTest, AFrameThatIsNotATextIsRefused) {
  Start();
  Frame picture;
  picture.image = cv::Mat(8, 8, CV_8UC3, cv::Scalar::all(1));
  picture.meta.sequence = 1;
  const uint64_t before = Count("rejected");
  ASSERT_TRUE(writer_->Publish(picture));
  EXPECT_TRUE(WaitUntil([&] { return Count("rejected") > before; }));
  EXPECT_NE(stage_->State()["last_error"].get<std::string>().find("8x8"), std::string::npos);
}

TEST_F(BusDetectionsTest, NoSetForMaxAgeMeansOneOffSetAndNothingDrawn) {
  Start(300ms);
  const FramePtr frame = Raw(1);
  Send(SetFor(*frame, {{5, 6, 7, 8}}).dump());
  const DetectionSetPtr running = NextSet();
  ASSERT_TRUE(running);
  EXPECT_TRUE(running->detector_running);

  const DetectionSetPtr off = NextSet();  // after max age, nothing sent since
  ASSERT_TRUE(off);
  EXPECT_FALSE(off->detector_running);
  EXPECT_TRUE(off->detections.empty());
  EXPECT_FALSE(stage_->alive());
  EXPECT_EQ(Json::parse(*json_.Latest()->value)["detector_running"], false);
  // Exactly one: nothing more while the model stays silent.
  EXPECT_FALSE(NextSet(1000ms));
}

TEST_F(BusDetectionsTest, ASetComputedOnAFrameOlderThanMaxAgeIsNotDrawn) {
  Start(300ms);
  const FramePtr old = Raw(1, MonotonicMicros() - 10'000'000);
  SendAndWaitCounted(SetFor(*old, {{5, 6, 7, 8}}).dump(), "stale");
  EXPECT_FALSE(sets_.Latest());
  const FramePtr fresh = Raw(2);
  Send(SetFor(*fresh, {{5, 6, 7, 8}}).dump());
  const DetectionSetPtr set = NextSet();
  ASSERT_TRUE(set);
  EXPECT_EQ(set->frame, fresh);
}

TEST_F(BusDetectionsTest, AWriterThatGoesIsOffAtOnceAndANewOneIsPickedUp) {
  Start(60s);  // longer than the test: only the writer's death can switch it off
  const FramePtr frame = Raw(1);
  Send(SetFor(*frame, {{5, 6, 7, 8}}).dump());
  ASSERT_TRUE(NextSet());
  ASSERT_TRUE(WaitUntil([&] { return stage_->alive(); }));

  writer_.reset();  // the model's process is gone
  const DetectionSetPtr off = NextSet();
  ASSERT_TRUE(off);
  EXPECT_FALSE(off->detector_running);
  EXPECT_FALSE(stage_->alive());
  EXPECT_EQ(stage_->State()["writer_alive"], false);

  OpenWriter();  // the model restarted; nothing else is
  const FramePtr next = Raw(2);
  Send(SetFor(*next, {{9, 9, 9, 9}}).dump());
  const DetectionSetPtr back = NextSet();
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->detector_running);
  EXPECT_EQ(back->frame, next);
  EXPECT_TRUE(WaitUntil([&] { return stage_->alive(); }));
}

TEST_F(BusDetectionsTest, SetsAreMatchedToTheirFrameBySequenceAndCaptureStamp) {
  Start();
  FramePtr frames[6];
  for (uint64_t i = 1; i <= 5; ++i) frames[i] = Raw(i);
  Send(SetFor(*frames[3], {{1, 1, 5, 5}}).dump());
  DetectionSetPtr set = NextSet();
  ASSERT_TRUE(set);
  EXPECT_EQ(set->frame, frames[3]);
  EXPECT_EQ(Count("unmatched"), 0U);

  // A sequence no longer (or never) held: the newest frame, counted.
  Json unknown = SetFor(*frames[3], {{1, 1, 5, 5}});
  unknown["sequence"] = 99;
  Send(unknown.dump());
  set = NextSet();
  ASSERT_TRUE(set);
  EXPECT_EQ(set->frame, frames[5]);
  EXPECT_EQ(Count("unmatched"), 1U);

  // The right sequence from another source run (another capture stamp).
  Json other_run = SetFor(*frames[2], {{1, 1, 5, 5}});
  other_run["capture_us"] = frames[2]->meta.stamps.capture_us - 1;
  Send(other_run.dump());
  set = NextSet();
  ASSERT_TRUE(set);
  EXPECT_EQ(set->frame, frames[5]);
  EXPECT_EQ(Count("unmatched"), 2U);
}

TEST(RecentFramesTest, IsBoundedInFramesAndBytesAndKeepsTheNewest) {
  const size_t frame_bytes = size_t{kWidth} * kHeight * 3;
  RecentFrames by_count(4, 100 * frame_bytes);
  for (uint64_t i = 1; i <= 6; ++i) by_count.Push(MakeRaw(i));
  EXPECT_EQ(by_count.size(), 4U);
  EXPECT_FALSE(by_count.Find(2, 0));
  EXPECT_TRUE(by_count.Find(3, 0));
  EXPECT_EQ(by_count.Newest()->meta.sequence, 6U);

  RecentFrames by_bytes(64, 3 * frame_bytes);
  for (uint64_t i = 1; i <= 6; ++i) by_bytes.Push(MakeRaw(i));
  EXPECT_EQ(by_bytes.size(), 3U);
  EXPECT_FALSE(by_bytes.Find(3, 0));

  RecentFrames tiny(64, 1);  // smaller than one frame: the newest stays
  tiny.Push(MakeRaw(1));
  tiny.Push(MakeRaw(2));
  EXPECT_EQ(tiny.size(), 1U);
  EXPECT_EQ(tiny.Newest()->meta.sequence, 2U);
}

TEST(RecentFramesTest, FindsBySequenceAndCaptureStamp) {
  RecentFrames frames(8, size_t{1} << 30);
  frames.Push(MakeRaw(1, 1000));
  frames.Push(MakeRaw(2, 2000));
  frames.Push(MakeRaw(1, 5000));  // a restarted source: sequence 1 again
  EXPECT_EQ(frames.Find(1, 1000)->meta.stamps.capture_us, 1000);
  EXPECT_EQ(frames.Find(1, 5000)->meta.stamps.capture_us, 5000);
  EXPECT_EQ(frames.Find(1, 0)->meta.stamps.capture_us, 5000);  // the newest
  EXPECT_FALSE(frames.Find(2, 2001));
  EXPECT_FALSE(frames.Find(3, 0));
}

TEST_F(BusDetectionsTest, SwitchedOffItPublishesOneOffSetAndNothingUntilOn) {
  Start();
  const FramePtr frame = Raw(1);
  Send(SetFor(*frame, {{5, 6, 7, 8}}).dump());
  ASSERT_TRUE(NextSet());

  SettingsChange off;
  off.detector = false;
  settings_.Apply(off);
  const DetectionSetPtr marker = NextSet();
  ASSERT_TRUE(marker);
  EXPECT_FALSE(marker->detector_running);
  SendAndWaitCounted(SetFor(*frame, {{5, 6, 7, 8}}).dump(), "sets");  // received, not drawn
  EXPECT_FALSE(NextSet(300ms));
  EXPECT_TRUE(stage_->alive());  // the model itself is fine

  SettingsChange on;
  on.detector = true;
  settings_.Apply(on);
  const FramePtr later = Raw(2);
  Send(SetFor(*later, {{5, 6, 7, 8}}).dump());
  const DetectionSetPtr back = NextSet();
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->detector_running);
}

}  // namespace
}  // namespace freshframe::infer
