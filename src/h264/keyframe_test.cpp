#include <algorithm>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "encode/encode.h"
#include "h264/h264.h"
#include "h264/keyframe_gate.h"

namespace freshframe::h264 {
namespace {

constexpr int64_t kFrameUs = 33'333;  // 30 fps
constexpr int64_t kStartUs = 1'000'000'000;

size_t Index(KeyReason reason) { return static_cast<size_t>(reason); }

TEST(KeyframeRequestsTest, CoalescesRequestsIntoOneIdrCountedByTheFirstReason) {
  KeyframeRequests requests;
  EXPECT_FALSE(requests.ShouldForce(kStartUs, 0));
  requests.Request(KeyReason::kJoin, kStartUs);
  requests.Request(KeyReason::kPli, kStartUs);
  requests.Request(KeyReason::kPli, kStartUs + 1);
  requests.Request(KeyReason::kGap, kStartUs + 2);
  EXPECT_TRUE(requests.ShouldForce(kStartUs + 10, 0));
  requests.OnKeyframe(kStartUs + 10, true);
  EXPECT_FALSE(requests.ShouldForce(kStartUs + 10 + kFrameUs, 0));  // served
  const KeyframeRequests::Counts counts = requests.counts();
  EXPECT_EQ(counts.requested[Index(KeyReason::kJoin)], 1u);
  EXPECT_EQ(counts.requested[Index(KeyReason::kPli)], 2u);
  EXPECT_EQ(counts.requested[Index(KeyReason::kGap)], 1u);
  EXPECT_EQ(counts.coalesced, 3u);
  EXPECT_EQ(counts.forced[Index(KeyReason::kJoin)], 1u);
  uint64_t forced = 0;
  for (const uint64_t n : counts.forced) forced += n;
  EXPECT_EQ(forced, 1u);
}

TEST(KeyframeRequestsTest, AFloodOverFiveSecondsForcesAtMostTwoIdrsASecond) {
  KeyframeRequests requests;
  std::vector<int64_t> forced_at;
  int64_t now = kStartUs;
  for (int frame = 0; frame < 150; ++frame, now += kFrameUs) {
    // Every frame, requests of every kind (a PLI storm, joins, key requests).
    for (const KeyReason reason : {KeyReason::kPli, KeyReason::kJoin, KeyReason::kClient}) {
      requests.Request(reason, now);
    }
    if (requests.ShouldForce(now, 0)) {
      requests.OnKeyframe(now, true);
      forced_at.push_back(now);
    }
  }
  // 5 s of requests: at most one IDR per kMinForcedIntervalUs (plus the
  // first), and they do come (the requests are served, not lost).
  EXPECT_LE(forced_at.size(), 11u);
  EXPECT_GE(forced_at.size(), 9u);
  for (size_t i = 1; i < forced_at.size(); ++i) {
    EXPECT_GE(forced_at[i] - forced_at[i - 1], KeyframeRequests::kMinForcedIntervalUs);
  }
  const KeyframeRequests::Counts counts = requests.counts();
  EXPECT_EQ(counts.requested[Index(KeyReason::kPli)], 150u);
  // Each request either started a wait (served by a forced IDR, or the one
  // still pending at the end) or joined one.
  EXPECT_EQ(counts.coalesced, 450u - forced_at.size() - 1);
}

TEST(KeyframeRequestsTest, NoForcedIdrWhenThePeriodicOneIsAboutToCome) {
  KeyframeRequests requests;
  requests.Request(KeyReason::kJoin, kStartUs);
  // The periodic IDR is 100 ms away (< 125 ms): wait for it.
  EXPECT_FALSE(requests.ShouldForce(kStartUs, kStartUs + 100'000));
  EXPECT_FALSE(requests.ShouldForce(kStartUs + kFrameUs, kStartUs + 100'000));
  requests.OnKeyframe(kStartUs + 100'000, false);  // the periodic one served it
  EXPECT_FALSE(requests.ShouldForce(kStartUs + 100'000 + kFrameUs, kStartUs + 2'100'000));
  uint64_t forced = 0;
  for (const uint64_t n : requests.counts().forced) forced += n;
  EXPECT_EQ(forced, 0u);
  // Far from the periodic one: forced at once.
  requests.Request(KeyReason::kClient, kStartUs + 200'000);
  EXPECT_TRUE(requests.ShouldForce(kStartUs + 200'000, kStartUs + 2'100'000));
}

// The gate over what the stage hands out.
const encode::EncodedFrame& FrameOf(const encode::EncodedFramePtr& unit) { return *unit; }
using Gate = KeyframeGate<encode::EncodedFramePtr, &FrameOf>;

encode::EncodedFramePtr Unit(uint64_t sequence, bool key) {
  auto unit = std::make_shared<encode::EncodedFrame>();
  unit->codec = encode::Codec::kH264;
  unit->sequence = sequence;
  unit->keyframe = key;
  return unit;
}

TEST(KeyframeGateTest, LateJoinerStartsAtAnIdrAndAsksForOneOnce) {
  Gate gate;
  EXPECT_TRUE(gate.waiting_for_key());
  EXPECT_EQ(gate.Offer(Unit(5, false)), KeyReason::kJoin);
  EXPECT_EQ(gate.Offer(Unit(6, false)), std::nullopt);  // asked already
  EXPECT_EQ(gate.queued(), 0u);
  EXPECT_EQ(gate.Offer(Unit(7, true)), std::nullopt);
  EXPECT_EQ(gate.Offer(Unit(8, false)), std::nullopt);
  EXPECT_FALSE(gate.waiting_for_key());
  auto first = gate.Next();
  ASSERT_TRUE(first);
  EXPECT_EQ((*first)->sequence, 7u);
  EXPECT_TRUE((*first)->keyframe);
  EXPECT_EQ((*gate.Next())->sequence, 8u);
  EXPECT_FALSE(gate.Next());
  EXPECT_EQ(gate.dropped(), 2u);
  EXPECT_EQ(gate.skips_to_key(), 0u);
}

TEST(KeyframeGateTest, OwnerThatAskedOnSubscribeIsNotAskedAgain) {
  Gate gate;
  gate.MarkAsked();
  EXPECT_EQ(gate.Offer(Unit(3, false)), std::nullopt);
  EXPECT_EQ(gate.Offer(Unit(4, true)), std::nullopt);
  EXPECT_EQ(gate.queued(), 1u);
}

TEST(KeyframeGateTest, SlowViewerDropsEverythingAsksOnceAndResumesAtTheNextIdr) {
  Gate gate;
  EXPECT_EQ(gate.Offer(Unit(1, true)), std::nullopt);
  EXPECT_EQ(gate.Offer(Unit(2, false)), std::nullopt);
  EXPECT_EQ(gate.queued(), Gate::kMaxQueued);
  // The viewer never takes anything: the next one overflows.
  EXPECT_EQ(gate.Offer(Unit(3, false)), KeyReason::kGap);
  EXPECT_EQ(gate.queued(), 0u);
  EXPECT_TRUE(gate.waiting_for_key());
  EXPECT_EQ(gate.skips_to_key(), 1u);
  for (uint64_t s = 4; s < 20; ++s) EXPECT_EQ(gate.Offer(Unit(s, false)), std::nullopt);
  EXPECT_EQ(gate.queued(), 0u);
  EXPECT_EQ(gate.Offer(Unit(20, true)), std::nullopt);
  EXPECT_EQ(gate.Offer(Unit(21, false)), std::nullopt);
  EXPECT_EQ((*gate.Next())->sequence, 20u);
  EXPECT_EQ((*gate.Next())->sequence, 21u);
  EXPECT_EQ(gate.dropped(), 2u + 17u);  // 1 and 2 queued, 3..19 offered while waiting
}

TEST(KeyframeGateTest, SequenceGapWaitsForAnIdr) {
  Gate gate;
  gate.Offer(Unit(1, true));
  gate.Offer(Unit(2, false));
  EXPECT_TRUE(gate.Next() && gate.Next());
  EXPECT_EQ(gate.Offer(Unit(4, false)), KeyReason::kGap);  // 3 never came
  EXPECT_EQ(gate.Offer(Unit(5, false)), std::nullopt);
  EXPECT_FALSE(gate.Next());
  EXPECT_EQ(gate.Offer(Unit(6, true)), std::nullopt);
  EXPECT_EQ((*gate.Next())->sequence, 6u);
}

// A viewer taking access units at random moments never receives one whose
// references it did not receive: after every IDR it gets, it gets a
// consecutive run until the next IDR.
TEST(KeyframeGateTest, NeverAPFrameAfterAGapWhateverTheViewersPace) {
  std::mt19937 random(17);
  Gate gate;
  std::optional<uint64_t> last;  // sequence of the last unit received
  int received = 0;
  int keys = 0;
  for (uint64_t s = 1; s <= 5000; ++s) {
    // IDRs now and then; the producer skips a number now and then (a unit
    // the viewer's transport lost).
    const bool key = s % 60 == 1 || random() % 40 == 0;
    if (random() % 97 == 0) continue;
    gate.Offer(Unit(s, key));
    // Sometimes slow (takes nothing), sometimes drains.
    const auto takes = static_cast<int>(random() % 4);
    for (int i = 0; i < takes; ++i) {
      auto unit = gate.Next();
      if (!unit) break;
      ++received;
      if ((*unit)->keyframe) {
        ++keys;
      } else {
        ASSERT_TRUE(last.has_value()) << "a P-frame before any IDR";
        ASSERT_EQ((*unit)->sequence, *last + 1) << "a P-frame after a gap";
      }
      last = (*unit)->sequence;
    }
  }
  EXPECT_GT(received, 1000);
  EXPECT_GT(keys, 10);
  EXPECT_GT(gate.skips_to_key(), 10u);
}

// 100 viewers joining over 5 s (and some of them slow) with the encoder's
// IDR flag between them: forced IDRs stay at or under ~2 per second, and
// every viewer starts at an IDR within the rate limit plus a frame or so.
TEST(KeyframeGateTest, HundredJoinsKeepForcedIdrsUnderTheLimit) {
  KeyframeRequests requests;
  const int64_t gop_us = 2'000'000;
  int64_t next_periodic = 0;
  struct Viewer {
    Gate gate;
    int64_t joined_at = -1;
    int64_t first_picture_at = -1;
    bool slow = false;
    std::optional<uint64_t> last;
  };
  std::vector<Viewer> viewers(100);
  std::vector<int64_t> forced_at;
  int64_t now = kStartUs;
  size_t joined = 0;
  for (uint64_t sequence = 1; sequence <= 180; ++sequence, now += kFrameUs) {
    // Two joins every three frames: all 100 within the first ~5 s.
    while (joined < viewers.size() && joined * 3 < sequence * 2) {
      Viewer& viewer = viewers[joined];
      viewer.joined_at = now;
      viewer.slow = joined % 7 == 0;
      viewer.gate.MarkAsked();
      requests.Request(KeyReason::kJoin, now);
      ++joined;
    }
    // The encoder's decision for this frame (as H264Stage makes it).
    bool key = sequence == 1;
    bool forced = false;
    if (!key && now >= next_periodic) {
      key = true;
    } else if (!key && requests.ShouldForce(now, next_periodic)) {
      key = forced = true;
    }
    if (key) {
      next_periodic = now + gop_us;
      requests.OnKeyframe(now, forced);
      if (forced) forced_at.push_back(now);
    }
    const auto unit = Unit(sequence, key);
    for (size_t i = 0; i < joined; ++i) {
      Viewer& viewer = viewers[i];
      if (auto reason = viewer.gate.Offer(unit)) requests.Request(*reason, now);
      // Slow viewers take nothing for 3 frames in every 10: they overflow.
      if (viewer.slow && sequence % 10 < 3) continue;
      while (auto next = viewer.gate.Next()) {
        if (viewer.first_picture_at < 0) {
          ASSERT_TRUE((*next)->keyframe) << "viewer " << i << " started on a P-frame";
          viewer.first_picture_at = now;
        } else if (!(*next)->keyframe) {
          ASSERT_EQ((*next)->sequence, *viewer.last + 1) << "viewer " << i;
        }
        viewer.last = (*next)->sequence;
      }
    }
  }
  const double seconds = static_cast<double>(now - kStartUs) / 1e6;
  EXPECT_LE(static_cast<double>(forced_at.size()), 2.0 * seconds + 1);
  for (size_t i = 1; i < forced_at.size(); ++i) {
    EXPECT_GE(forced_at[i] - forced_at[i - 1], KeyframeRequests::kMinForcedIntervalUs);
  }
  for (size_t i = 0; i < viewers.size(); ++i) {
    const Viewer& viewer = viewers[i];
    ASSERT_GE(viewer.first_picture_at, 0) << "viewer " << i << " never started";
    if (!viewer.slow) {
      EXPECT_LE(viewer.first_picture_at - viewer.joined_at,
                KeyframeRequests::kMinForcedIntervalUs + 2 * kFrameUs)
          << "viewer " << i;
    }
  }
}

}  // namespace
}  // namespace freshframe::h264
