// RtpSender over loopback UDP: a receiver socket pair stands for Janus's
// videoport/videortcpport, a thread stands for the encoder.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "rtp/rtcp.h"
#include "rtp/rtp.h"
#include "rtp/testing.h"

namespace freshframe::rtp {
namespace {

using namespace std::chrono_literals;
using testing::Depacketizer;
using testing::MakeAccessUnit;
using testing::ReadRtp;
using testing::RtpPacket;

constexpr size_t kMtu = 400;

int UdpSocket(const char* ip, uint16_t port) {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  inet_pton(AF_INET, ip, &address.sin_addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

uint16_t PortOf(int fd) {
  sockaddr_in address{};
  socklen_t size = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  return ntohs(address.sin_port);
}

// Datagram from `fd` within `timeout`, with where it came from.
std::optional<std::vector<uint8_t>> Receive(int fd, std::chrono::milliseconds timeout,
                                            sockaddr_in* from = nullptr) {
  pollfd wait{fd, POLLIN, 0};
  if (poll(&wait, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
  std::vector<uint8_t> buffer(65536);
  sockaddr_in source{};
  socklen_t size = sizeof(source);
  const ssize_t got =
      recvfrom(fd, buffer.data(), buffer.size(), 0, reinterpret_cast<sockaddr*>(&source), &size);
  if (got < 0) return std::nullopt;
  if (from != nullptr) *from = source;
  buffer.resize(static_cast<size_t>(got));
  return buffer;
}

// Janus's side: RTP on an even port, RTCP on the next.
struct Receiver {
  Receiver() {
    for (int attempt = 0; attempt < 50 && rtcp < 0; ++attempt) {
      if (rtp >= 0) close(rtp);
      rtp = UdpSocket("127.0.0.1", 0);
      port = PortOf(rtp);
      if (port < 65535) rtcp = UdpSocket("127.0.0.1", static_cast<uint16_t>(port + 1));
    }
  }
  ~Receiver() {
    if (rtp >= 0) close(rtp);
    if (rtcp >= 0) close(rtcp);
  }
  void CloseRtp() {
    close(rtp);
    rtp = -1;
  }
  void ReopenRtp() { rtp = UdpSocket("127.0.0.1", port); }

  // The next access unit whose packets all arrive, in order, within the
  // timeout (packets before the first marker are skipped).
  std::optional<std::vector<uint8_t>> NextUnit(std::chrono::milliseconds timeout,
                                               std::vector<RtpPacket>* packets = nullptr) {
    const int64_t end = MonotonicMicros() + timeout.count() * 1000;
    while (MonotonicMicros() < end) {
      std::optional<std::vector<uint8_t>> bytes = Receive(rtp, 100ms);
      if (!bytes) continue;
      std::optional<RtpPacket> packet = ReadRtp(*bytes);
      if (!packet) continue;
      EXPECT_LE(bytes->size(), kMtu);
      if (packets != nullptr) packets->push_back(*packet);
      if (!synced) {
        synced = packet->marker;
        continue;
      }
      std::optional<std::vector<uint8_t>> unit = depacketizer.Add(*packet);
      if (unit) return unit;
    }
    return std::nullopt;
  }

  int rtp = -1;
  int rtcp = -1;
  uint16_t port = 0;
  bool synced = false;
  Depacketizer depacketizer;
};

bool IsIdr(const std::vector<uint8_t>& unit) {
  return unit.size() > 4 && (unit[4] & 0x1f) == 7;  // starts with its SPS
}

// The encoder: an access unit every 10 ms, an IDR first and whenever
// KeyframeRequests asks (rate-limited as the real stage is).
struct FakeEncoder {
  explicit FakeEncoder(size_t slice_size = 1500) : slice_size_(slice_size) {}
  ~FakeEncoder() { StopEmitting(); }

  egress::SubscribeFn Subscribe() {
    return [this](h264::AccessUnitSink given) {
      std::lock_guard lock(mutex);
      this->sink = std::move(given);
      return std::shared_ptr<void>(this, [this](void*) {
        std::lock_guard unlock(mutex);
        this->sink = nullptr;
      });
    };
  }
  void Emit(bool keyframe, size_t slice_size) {
    auto unit = std::make_shared<encode::EncodedFrame>();
    unit->codec = encode::Codec::kH264;
    unit->keyframe = keyframe;
    unit->sequence = ++sequence;
    unit->meta.stamps.capture_us = MonotonicMicros();
    unit->bytes = MakeAccessUnit(keyframe, slice_size, static_cast<uint8_t>(sequence));
    std::lock_guard lock(mutex);
    if (sink) sink(unit);
  }
  void StartEmitting() {
    thread = std::jthread([this](const std::stop_token& stop) {
      bool first = true;
      while (!stop.stop_requested()) {
        const int64_t now = MonotonicMicros();
        const bool force = keyframes.ShouldForce(now, 0);
        if (first || force) {
          keyframes.OnKeyframe(now, force);
          forced += force ? 1 : 0;
        }
        Emit(first || force, slice_size_);
        first = false;
        std::this_thread::sleep_for(10ms);
      }
    });
  }
  void StopEmitting() {
    thread.request_stop();
    if (thread.joinable()) thread.join();
  }

  Demand demand;
  h264::KeyframeRequests keyframes;
  std::mutex mutex;
  h264::AccessUnitSink sink;
  uint64_t sequence = 0;
  std::atomic<int> forced{0};
  size_t slice_size_;
  std::jthread thread;
};

RtpOptions OptionsFor(const Receiver& receiver) {
  RtpOptions options;
  options.target = {"127.0.0.1", receiver.port};
  options.mtu = kMtu;
  options.bind_address = "127.0.0.1";
  return options;
}

// Waits until `predicate(stats)` holds (generous: a loaded machine).
template <typename Predicate>
bool WaitFor(const RtpSender& sender, Predicate predicate, std::chrono::seconds limit = 15s) {
  const int64_t end = MonotonicMicros() + limit.count() * 1'000'000;
  while (MonotonicMicros() < end) {
    if (predicate(sender.Stats())) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

size_t Requested(const h264::KeyframeRequests& keyframes, h264::KeyReason reason) {
  return keyframes.counts().requested[static_cast<size_t>(reason)];
}

void SendTo(int fd, const std::vector<uint8_t>& bytes, const sockaddr_in& to) {
  sendto(fd, bytes.data(), bytes.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof(to));
}

std::vector<uint8_t> PliFor(uint32_t ssrc) {
  return {0x81,
          206,
          0,
          2,
          0,
          0,
          0,
          1,
          static_cast<uint8_t>(ssrc >> 24),
          static_cast<uint8_t>(ssrc >> 16),
          static_cast<uint8_t>(ssrc >> 8),
          static_cast<uint8_t>(ssrc)};
}

// Waits for the sender's SR; gives where it came from (the sender's RTCP
// socket).
sockaddr_in AwaitSenderReport(Receiver& receiver, uint32_t ssrc) {
  sockaddr_in from{};
  std::optional<std::vector<uint8_t>> report = Receive(receiver.rtcp, 10s, &from);
  EXPECT_TRUE(report.has_value());
  if (report) {
    EXPECT_EQ((*report)[1], 200);
    EXPECT_FALSE(ParseRtcp(*report, ssrc).malformed);
  }
  return from;
}

TEST(RtpSenderTest, SendsAccessUnitsAsRtpWithSenderReports) {
  Receiver receiver;
  ASSERT_GE(receiver.rtcp, 0);
  FakeEncoder encoder;
  RtpSender sender(OptionsFor(receiver), encoder.Subscribe(), encoder.demand, encoder.keyframes);
  sender.Start();
  EXPECT_EQ(encoder.demand.watchers(), 1);  // the output is a viewer
  encoder.StartEmitting();

  std::vector<RtpPacket> packets;
  std::optional<std::vector<uint8_t>> first = receiver.NextUnit(10s, &packets);
  ASSERT_TRUE(first.has_value());
  // The first whole unit may follow the one the receiver synced on; the
  // stream starts at an IDR, so one of the first units is.
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(receiver.NextUnit(10s, &packets).has_value());
  }
  const uint32_t ssrc = packets.front().ssrc;
  for (size_t i = 1; i < packets.size(); ++i) {
    EXPECT_EQ(packets[i].sequence, static_cast<uint16_t>(packets[i - 1].sequence + 1));
    EXPECT_EQ(packets[i].ssrc, ssrc);
    EXPECT_EQ(packets[i].payload_type, 96);
    // 90 kHz from capture stamps 10+ ms apart; equal within a unit.
    const auto step = static_cast<uint32_t>(packets[i].timestamp - packets[i - 1].timestamp);
    if (packets[i - 1].marker) {
      EXPECT_GE(step, 900u);
      EXPECT_LT(step, 90'000u);
    } else {
      EXPECT_EQ(step, 0u);
    }
  }

  // A Sender Report with the stream's SSRC whose RTP time is the stream's.
  std::optional<std::vector<uint8_t>> report = Receive(receiver.rtcp, 10s);
  ASSERT_TRUE(report.has_value());
  ASSERT_GE(report->size(), 28u);
  EXPECT_EQ((*report)[1], 200);
  const RtpPacket* latest = &packets.back();
  const uint32_t report_ssrc = static_cast<uint32_t>((*report)[4]) << 24 |
                               static_cast<uint32_t>((*report)[5]) << 16 |
                               static_cast<uint32_t>((*report)[6]) << 8 | (*report)[7];
  EXPECT_EQ(report_ssrc, ssrc);
  const uint32_t report_time = static_cast<uint32_t>((*report)[16]) << 24 |
                               static_cast<uint32_t>((*report)[17]) << 16 |
                               static_cast<uint32_t>((*report)[18]) << 8 | (*report)[19];
  // The same clock: the report's "now" is within 2 s of the last frame's
  // capture (the test's encoder stamps frames as it makes them).
  const auto apart = static_cast<int32_t>(report_time - latest->timestamp);
  EXPECT_LT(std::abs(apart), 2 * 90'000);

  const nlohmann::json stats = sender.Stats();
  EXPECT_EQ(stats["kind"], "rtp");
  EXPECT_EQ(stats["state"], "connected");
  EXPECT_EQ(stats["ssrc"], ssrc);
  EXPECT_GE(stats["rtcp"]["sr_sent"].get<uint64_t>(), 1u);
  EXPECT_GT(stats["rtcp"]["port"].get<int>(), 0);
  EXPECT_GE(stats["keyframes"].get<uint64_t>(), 1u);
  sender.Stop();
  EXPECT_EQ(encoder.demand.watchers(), 0);
  EXPECT_EQ(sender.Stats()["state"], "stopped");
}

TEST(RtpSenderTest, TheFirstUnitSentIsAnIdr) {
  Receiver receiver;
  ASSERT_GE(receiver.rtcp, 0);
  FakeEncoder encoder;
  RtpSender sender(OptionsFor(receiver), encoder.Subscribe(), encoder.demand, encoder.keyframes);
  sender.Start();
  encoder.Emit(false, 100);  // P-frames before any IDR are never sent
  encoder.Emit(true, 100);
  receiver.synced = true;  // nothing came before
  std::optional<std::vector<uint8_t>> unit = receiver.NextUnit(10s);
  ASSERT_TRUE(unit.has_value());
  EXPECT_TRUE(IsIdr(*unit));
}

TEST(RtpSenderTest, TimestampsNeverGoBackWhenTheCaptureClockDoes) {
  Receiver receiver;
  ASSERT_GE(receiver.rtcp, 0);
  FakeEncoder encoder;
  RtpSender sender(OptionsFor(receiver), encoder.Subscribe(), encoder.demand, encoder.keyframes);
  sender.Start();
  receiver.synced = true;
  std::vector<RtpPacket> packets;
  // Capture stamps 1 s, then 0.5 s (a corrected clock), then 0.533 s.
  for (const int64_t capture_us : {1'000'000, 500'000, 533'333}) {
    auto unit = std::make_shared<encode::EncodedFrame>();
    unit->codec = encode::Codec::kH264;
    unit->keyframe = encoder.sequence == 0;
    unit->sequence = ++encoder.sequence;
    unit->meta.stamps.capture_us = capture_us;
    unit->bytes = MakeAccessUnit(unit->keyframe, 100, 1);
    {
      std::lock_guard lock(encoder.mutex);
      ASSERT_TRUE(encoder.sink);
      encoder.sink(unit);
    }
    ASSERT_TRUE(receiver.NextUnit(10s, &packets).has_value());
  }
  ASSERT_GE(packets.size(), 3u);
  uint32_t previous = packets.front().timestamp;
  for (size_t i = 1; i < packets.size(); ++i) {
    if (packets[i].timestamp == previous) continue;  // packets of one unit
    EXPECT_GT(static_cast<int32_t>(packets[i].timestamp - previous), 0) << i;
    previous = packets[i].timestamp;
  }
  // Capture spacing is kept after the step back: 33 ms = 3000 ticks.
  const uint32_t last_step = packets.back().timestamp - packets[packets.size() - 2].timestamp;
  EXPECT_NEAR(static_cast<double>(last_step), 3000.0, 1.0);
}

TEST(RtpSenderTest, PliAndFirFromTheTargetAskForAnIdr) {
  Receiver receiver;
  ASSERT_GE(receiver.rtcp, 0);
  FakeEncoder encoder;
  RtpSender sender(OptionsFor(receiver), encoder.Subscribe(), encoder.demand, encoder.keyframes);
  sender.Start();
  const uint32_t ssrc = sender.Stats()["ssrc"].get<uint32_t>();
  const sockaddr_in sender_rtcp = AwaitSenderReport(receiver, ssrc);
  const size_t before = Requested(encoder.keyframes, h264::KeyReason::kPli);

  // From another host (127.0.0.2 is loopback too): not the target, ignored.
  const int stranger = UdpSocket("127.0.0.2", 0);
  ASSERT_GE(stranger, 0);
  SendTo(stranger, PliFor(ssrc), sender_rtcp);
  ASSERT_TRUE(WaitFor(sender, [](const nlohmann::json& s) { return s["rtcp"]["foreign"] == 1; }));
  close(stranger);
  EXPECT_EQ(Requested(encoder.keyframes, h264::KeyReason::kPli), before);

  SendTo(receiver.rtcp, PliFor(ssrc), sender_rtcp);
  ASSERT_TRUE(
      WaitFor(sender, [](const nlohmann::json& s) { return s["rtcp"]["pli_received"] == 1; }));
  EXPECT_EQ(Requested(encoder.keyframes, h264::KeyReason::kPli), before + 1);

  std::vector<uint8_t> fir = {0x84, 206, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0};
  const std::vector<uint8_t> pli = PliFor(ssrc);  // its last 4 bytes: our SSRC
  fir.insert(fir.end(), pli.end() - 4, pli.end());
  fir.insert(fir.end(), {1, 0, 0, 0});
  SendTo(receiver.rtcp, fir, sender_rtcp);
  ASSERT_TRUE(
      WaitFor(sender, [](const nlohmann::json& s) { return s["rtcp"]["fir_received"] == 1; }));
  EXPECT_EQ(Requested(encoder.keyframes, h264::KeyReason::kPli), before + 2);

  // Garbage is counted, never acted on.
  SendTo(receiver.rtcp, {0x81, 206, 0, 200, 1, 2}, sender_rtcp);
  ASSERT_TRUE(WaitFor(sender, [](const nlohmann::json& s) { return s["rtcp"]["malformed"] == 1; }));
  EXPECT_EQ(Requested(encoder.keyframes, h264::KeyReason::kPli), before + 2);
}

TEST(RtpSenderTest, APliFloodForcesNoMoreIdrsThanTheRateLimit) {
  Receiver receiver;
  ASSERT_GE(receiver.rtcp, 0);
  FakeEncoder encoder;
  RtpSender sender(OptionsFor(receiver), encoder.Subscribe(), encoder.demand, encoder.keyframes);
  sender.Start();
  const uint32_t ssrc = sender.Stats()["ssrc"].get<uint32_t>();
  const sockaddr_in sender_rtcp = AwaitSenderReport(receiver, ssrc);
  encoder.StartEmitting();
  const int64_t start = MonotonicMicros();
  for (int i = 0; i < 2000; ++i) {
    SendTo(receiver.rtcp, PliFor(ssrc), sender_rtcp);
    if (i % 100 == 0) std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(
      WaitFor(sender, [](const nlohmann::json& s) { return s["rtcp"]["pli_received"] >= 100; }));
  // The stream goes on.
  EXPECT_TRUE(receiver.NextUnit(10s).has_value());
  encoder.StopEmitting();
  const int64_t elapsed_us = MonotonicMicros() - start;
  // At most one forced IDR per kMinForcedIntervalUs, plus the one at the edge.
  const int64_t limit = elapsed_us / h264::KeyframeRequests::kMinForcedIntervalUs + 1;
  EXPECT_GE(encoder.forced.load(), 1);
  EXPECT_LE(encoder.forced.load(), limit);
  EXPECT_EQ(sender.Stats()["state"], "connected");
}

TEST(RtpSenderTest, RefusedWhileTheTargetIsGoneThenRecoversAtAnIdr) {
  Receiver receiver;
  ASSERT_GE(receiver.rtcp, 0);
  FakeEncoder encoder;
  RtpSender sender(OptionsFor(receiver), encoder.Subscribe(), encoder.demand, encoder.keyframes);
  sender.Start();
  encoder.StartEmitting();
  ASSERT_TRUE(WaitFor(sender, [](const nlohmann::json& s) { return s["state"] == "connected"; }));

  // "Janus" goes away: the kernel answers with ICMP port unreachable.
  receiver.CloseRtp();
  ASSERT_TRUE(WaitFor(sender, [](const nlohmann::json& s) { return s["state"] == "retrying"; }));
  const nlohmann::json down = sender.Stats();
  EXPECT_NE(down["error"].get<std::string>().find("refused"), std::string::npos) << down.dump();
  // While it waits, what the encoder makes is dropped without asking for
  // IDRs nobody would receive.
  const size_t gaps = Requested(encoder.keyframes, h264::KeyReason::kGap);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(Requested(encoder.keyframes, h264::KeyReason::kGap), gaps);

  // It comes back: sending resumes by itself, starting at an IDR.
  receiver.ReopenRtp();
  ASSERT_GE(receiver.rtp, 0);
  ASSERT_TRUE(WaitFor(sender, [](const nlohmann::json& s) { return s["state"] == "connected"; }));
  receiver.synced = true;
  std::optional<std::vector<uint8_t>> unit = receiver.NextUnit(10s);
  ASSERT_TRUE(unit.has_value());
  EXPECT_TRUE(IsIdr(*unit));
  const nlohmann::json up = sender.Stats();
  EXPECT_EQ(up["reconnects"], 1);
  EXPECT_FALSE(up.contains("error"));
}

TEST(RtpSenderTest, AnUnreachableTargetAtStartIsRetriedNotFatal) {
  Receiver receiver;
  ASSERT_GE(receiver.rtcp, 0);
  receiver.CloseRtp();
  FakeEncoder encoder;
  RtpSender sender(OptionsFor(receiver), encoder.Subscribe(), encoder.demand, encoder.keyframes);
  sender.Start();
  encoder.StartEmitting();
  ASSERT_TRUE(WaitFor(sender, [](const nlohmann::json& s) { return s["state"] == "retrying"; }));
  receiver.ReopenRtp();
  ASSERT_TRUE(WaitFor(sender, [](const nlohmann::json& s) { return s["state"] == "connected"; }));
}

TEST(RtpSenderTest, ANonReadingTargetNeverBlocksTheEncoder) {
  Receiver receiver;  // never read: its socket buffer fills and drops
  ASSERT_GE(receiver.rtcp, 0);
  FakeEncoder encoder;
  RtpSender sender(OptionsFor(receiver), encoder.Subscribe(), encoder.demand, encoder.keyframes);
  sender.Start();
  // As fast as the test thread can: 400 units of 100 kB, 250 packets each.
  constexpr int kUnits = 400;
  for (int i = 0; i < kUnits; ++i) encoder.Emit(i % 50 == 0, 100'000);
  // Every call returned (the sink only hands over); what the sender could
  // not take was dropped by its feed, never queued.
  ASSERT_TRUE(WaitFor(sender, [](const nlohmann::json& s) {
    return s["frames"].get<uint64_t>() + s["dropped"].get<uint64_t>() +
               s["send_overflows"].get<uint64_t>() >=
           static_cast<uint64_t>(kUnits) - 3;
  }));
  const nlohmann::json stats = sender.Stats();
  EXPECT_LE(stats["frames"].get<uint64_t>() + stats["dropped"].get<uint64_t>(),
            static_cast<uint64_t>(kUnits));
  EXPECT_NE(stats["state"], "retrying");
}

}  // namespace
}  // namespace freshframe::rtp
