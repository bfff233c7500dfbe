#include "rtmp/rtmp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

extern "C" {
#include <libavformat/avformat.h>
}

#include "core/clock.h"
#include "rtmp/annexb.h"

namespace freshframe::rtmp {
namespace {

using namespace std::chrono_literals;

TEST(RtmpUrlTest, AcceptsRtmpAndRtmpsWithAppAndKey) {
  for (const char* url : {"rtmp://10.89.0.2/live/KEY", "rtmp://cdn.example.com:1935/live/abc-123_x",
                          "rtmps://cdn.example.com/app/key?token=1", "rtmp://[::1]:1935/live/k",
                          "rtmp://user:pw@host/live/key", "rtmp://host/live/a/b"}) {
    Expected<std::string> valid = ValidateUrl(url);
    ASSERT_TRUE(valid) << url << ": " << valid.error().message;
    EXPECT_EQ(*valid, url);
  }
}

TEST(RtmpUrlTest, RefusesAnythingElseWithOneLine) {
  for (const char* url :
       {"", "live/key", "http://host/live/key", "rtmp://host", "rtmp://host/", "rtmp://host/live",
        "rtmp://host/live/", "rtmp://host//key", "rtmp://:1935/live/key", "rtmp://host:0/live/key",
        "rtmp://host:65536/live/key", "rtmp://host:x/live/key", "rtmp://host:/live/key",
        "rtmp://ho st/live/key", "rtmp://host/live/ke y", "rtmp://host/live/key\n",
        "rtmp://host/live/k\x01y", "rtmp://[zz]/live/key", "rtmp://h%st/live/key"}) {
    Expected<std::string> valid = ValidateUrl(url);
    ASSERT_FALSE(valid) << url;
    EXPECT_TRUE(valid.error().message.starts_with("--rtmp-out: ")) << valid.error().message;
    EXPECT_EQ(valid.error().message.find('\n'), std::string::npos);
  }
}

TEST(RtmpUrlTest, RedactsTheKeyAndAnyPassword) {
  EXPECT_EQ(RedactUrl("rtmp://10.89.0.2/live/SECRET"), "rtmp://10.89.0.2/live/***");
  EXPECT_EQ(RedactUrl("rtmps://cdn:443/app/SECRET?token=T"), "rtmps://cdn:443/app/***");
  EXPECT_EQ(RedactUrl("rtmp://user:PASS@host/live/SECRET"), "rtmp://***@host/live/***");
  EXPECT_EQ(RedactUrl("rtmp://host/live/a/SECRET"), "rtmp://host/live/***");
  EXPECT_EQ(RedactUrl("rtmp://host"), "rtmp://host");
  EXPECT_EQ(RedactUrl("SECRET"), "***");
}

TEST(RtmpAnnexBTest, TakesSpsAndPpsOnly) {
  const std::vector<unsigned char> unit = {0, 0, 0, 1,    0x09, 0xf0,               // AUD
                                           0, 0, 0, 1,    0x67, 0x42, 0xc0, 0x1e,   // SPS
                                           0, 0, 1, 0x68, 0xce, 0x3c, 0x80,         // PPS
                                           0, 0, 0, 1,    0x65, 0x88, 0x84, 0x00};  // IDR slice
  const std::vector<unsigned char> expected = {0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e,
                                               0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80};
  EXPECT_EQ(ParameterSets(unit), expected);
  const std::vector<unsigned char> no_pps = {0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x65, 0x88};
  EXPECT_TRUE(ParameterSets(no_pps).empty());
}

// Real access units from libx264: noisy 640x480 frames (large, so that a
// receiver that stops reading fills the socket buffers quickly), an IDR
// every 15.
std::vector<encode::EncodedFramePtr> EncodeUnits(int count, int width = 640, int height = 480) {
  h264::EncoderOptions options;
  options.gop_seconds = 0;
  // Near-lossless and no VBV cap to speak of: noise stays large.
  options.crf = 4;
  options.max_kbps = 1'000'000;
  auto encoder = h264::H264Encoder::Create(options, width, height, 30);
  EXPECT_TRUE(encoder) << encoder.error().message;
  std::vector<encode::EncodedFramePtr> units;
  cv::Mat frame(height, width, CV_8UC3);
  cv::RNG rng(18);
  for (int i = 0; i < count && encoder; ++i) {
    rng.fill(frame, cv::RNG::UNIFORM, 0, 256);
    auto made = (*encoder)->Encode(frame, i % 15 == 0);
    EXPECT_TRUE(made);
    if (!made) break;
    auto unit = std::make_shared<encode::EncodedFrame>();
    unit->codec = encode::Codec::kH264;
    unit->meta.width = width;
    unit->meta.height = height;
    unit->keyframe = made->keyframe;
    unit->bytes = std::move(made->bytes);
    units.push_back(std::move(unit));
  }
  return units;
}

// Stands in for the H264Stage: a thread emitting access units (cycling
// through `units`, fresh capture stamps) at about 30 fps to the subscribed
// sink, and recording how long the sink ever took: the encoder's thread
// must never wait for an output.
class FakeEncoder {
 public:
  explicit FakeEncoder(std::vector<encode::EncodedFramePtr> units) : units_(std::move(units)) {}
  ~FakeEncoder() { StopEmitting(); }

  egress::SubscribeFn Subscribe() {
    return [this](h264::AccessUnitSink sink) {
      std::lock_guard lock(mutex_);
      sink_ = std::move(sink);
      return std::shared_ptr<void>(this, [this](void*) {
        std::lock_guard released(mutex_);
        sink_ = nullptr;
      });
    };
  }
  void StartEmitting() {
    thread_ = std::thread([this] {
      uint64_t sequence = 0;
      while (!stop_) {
        encode::EncodedFramePtr source;
        {
          std::lock_guard lock(mutex_);
          source = units_[position_++ % units_.size()];
        }
        auto unit = std::make_shared<encode::EncodedFrame>(*source);
        unit->sequence = ++sequence;
        unit->meta.stamps.capture_us = MonotonicMicros();
        const int64_t start = MonotonicMicros();
        {
          std::lock_guard lock(mutex_);
          if (sink_) sink_(unit);
        }
        max_sink_us_ = std::max(max_sink_us_.load(), MonotonicMicros() - start);
        emitted_ = sequence;
        std::this_thread::sleep_for(33ms);
      }
    });
  }
  // From the next access unit on, emits `units` (from its first, an IDR).
  void SwitchTo(std::vector<encode::EncodedFramePtr> units) {
    std::lock_guard lock(mutex_);
    units_ = std::move(units);
    position_ = 0;
  }
  void StopEmitting() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int64_t max_sink_us() const { return max_sink_us_; }
  uint64_t emitted() const { return emitted_; }

 private:
  std::mutex mutex_;  // guards sink_, units_, position_
  std::vector<encode::EncodedFramePtr> units_;
  size_t position_ = 0;
  h264::AccessUnitSink sink_;
  std::thread thread_;
  std::atomic<bool> stop_ = false;
  std::atomic<int64_t> max_sink_us_ = 0;
  std::atomic<uint64_t> emitted_ = 0;
};

// A loopback port nothing listens on (bound, then closed).
uint16_t FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  socklen_t size = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  close(fd);
  return ntohs(address.sin_port);
}

// A TCP listener on loopback that accepts connections and never reads.
class DeafListener {
 public:
  DeafListener() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    EXPECT_EQ(listen(fd_, 8), 0);
    socklen_t size = sizeof(address);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] {
      while (true) {
        int client = accept(fd_, nullptr, nullptr);
        if (client < 0) return;
        ++accepted_;
        std::lock_guard lock(mutex_);
        clients_.push_back(client);
      }
    });
  }
  ~DeafListener() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
    for (int client : clients_) close(client);
  }
  uint16_t port() const { return port_; }
  int accepted() const { return accepted_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<int> clients_;
  std::atomic<int> accepted_ = 0;
};

// Waits (generously) until `predicate` holds.
template <typename Predicate>
bool WaitUntil(Predicate predicate, std::chrono::milliseconds limit = 15s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (predicate()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return predicate();
}

std::string Url(uint16_t port) { return "rtmp://127.0.0.1:" + std::to_string(port) + "/live/KEY"; }

TEST(RtmpPusherTest, ARefusedPortIsRetriedWithBackoffAndReported) {
  FakeEncoder encoder(EncodeUnits(15, 160, 120));
  Demand demand;
  h264::KeyframeRequests keyframes;
  const uint16_t port = FreePort();
  RtmpPusher pusher({.url = Url(port), .fps = 30, .io_timeout = 1000ms}, encoder.Subscribe(),
                    demand, keyframes);
  EXPECT_EQ(pusher.Stats()["state"], "stopped");
  pusher.Start();
  EXPECT_EQ(demand.watchers(), 1);  // an output is a viewer that is always there
  encoder.StartEmitting();
  ASSERT_TRUE(WaitUntil([&] { return pusher.Stats()["attempts"] >= 3; }));
  nlohmann::json stats = pusher.Stats();
  EXPECT_EQ(stats["kind"], "rtmp");
  EXPECT_EQ(stats["target"], "rtmp://127.0.0.1:" + std::to_string(port) + "/live/***");
  EXPECT_EQ(stats["connects"], 0);
  EXPECT_NE(stats["error"].get<std::string>().find("refused"), std::string::npos) << stats;
  // Backoff: 0.5 s, then 1 s... between attempts, never a busy loop.
  const auto attempts = stats["attempts"].get<uint64_t>();
  std::this_thread::sleep_for(300ms);
  EXPECT_LE(pusher.Stats()["attempts"].get<uint64_t>(), attempts + 1);
  const int64_t stop_start = MonotonicMicros();
  pusher.Stop();
  EXPECT_LT(MonotonicMicros() - stop_start, 5'000'000);
  EXPECT_EQ(pusher.Stats()["state"], "stopped");
  EXPECT_EQ(demand.watchers(), 0);
}

TEST(RtmpPusherTest, AListenerThatNeverReadsTimesOutAndStopIsPrompt) {
  DeafListener listener;
  FakeEncoder encoder(EncodeUnits(15, 160, 120));
  Demand demand;
  h264::KeyframeRequests keyframes;
  RtmpPusher pusher({.url = Url(listener.port()), .fps = 30, .io_timeout = 300ms},
                    encoder.Subscribe(), demand, keyframes);
  pusher.Start();
  encoder.StartEmitting();
  // The handshake gets no answer: after io_timeout the pusher gives up and
  // retries.
  ASSERT_TRUE(WaitUntil([&] { return pusher.Stats()["state"] == "retrying"; }));
  EXPECT_NE(pusher.Stats()["error"].get<std::string>().find("not reading"), std::string::npos)
      << pusher.Stats();
  ASSERT_TRUE(WaitUntil([&] { return listener.accepted() >= 2; }));
  // Stop while a connect is stuck again.
  ASSERT_TRUE(WaitUntil([&] { return pusher.Stats()["state"] == "connecting"; }));
  const int64_t stop_start = MonotonicMicros();
  pusher.Stop();
  EXPECT_LT(MonotonicMicros() - stop_start, 2'000'000);
  encoder.StopEmitting();
  EXPECT_GT(encoder.emitted(), 10u);
  // The encoder's thread never waited for the output (generous: a sink
  // call only takes the feed's lock).
  EXPECT_LT(encoder.max_sink_us(), 200'000);
}

// A one-connection RTMP server: libavformat's rtmp protocol in listen mode
// with the FLV demuxer, reading packets until told to stall (then it reads
// nothing more, as a stuck engine).
class RtmpReceiver {
 public:
  explicit RtmpReceiver(uint16_t port) : port_(port) {
    thread_ = std::thread([this] { Run(); });
  }
  ~RtmpReceiver() {
    stop_ = true;
    thread_.join();
  }
  void Stall() { stall_ = true; }
  struct Packet {
    int64_t dts;
    bool key;
  };
  std::vector<Packet> packets() const {
    std::lock_guard lock(mutex_);
    return packets_;
  }
  // The sequence header (avcC) of each connection so far.
  std::vector<std::vector<unsigned char>> extradata() const {
    std::lock_guard lock(mutex_);
    return extradata_;
  }

 private:
  static int Interrupted(void* opaque) { return static_cast<RtmpReceiver*>(opaque)->stop_ ? 1 : 0; }
  // One publisher after another, until stopped; not listening for a while
  // in between (a publisher that comes back at once is refused).
  void Run() {
    while (!stop_) {
      Receive();
      std::this_thread::sleep_for(300ms);
    }
  }
  void Receive() {
    AVFormatContext* context = avformat_alloc_context();
    context->interrupt_callback = {&RtmpReceiver::Interrupted, this};
    AVDictionary* options = nullptr;
    av_dict_set(&options, "listen", "1", 0);
    const std::string url = Url(port_);
    const int opened = avformat_open_input(&context, url.c_str(), nullptr, &options);
    av_dict_free(&options);
    if (opened < 0) return;  // the context was freed by avformat_open_input
    {
      std::lock_guard lock(mutex_);
      extradata_.emplace_back();
    }
    AVPacket* packet = av_packet_alloc();
    while (!stop_) {
      if (stall_) {
        std::this_thread::sleep_for(10ms);
        continue;
      }
      if (av_read_frame(context, packet) < 0) break;
      std::lock_guard lock(mutex_);
      packets_.push_back({packet->dts, (packet->flags & AV_PKT_FLAG_KEY) != 0});
      const AVCodecParameters* par = context->streams[packet->stream_index]->codecpar;
      if (par->extradata_size > 0) {
        extradata_.back().assign(par->extradata, par->extradata + par->extradata_size);
      }
      av_packet_unref(packet);
    }
    av_packet_free(&packet);
    avformat_close_input(&context);
  }

  const uint16_t port_;
  std::thread thread_;
  std::atomic<bool> stop_ = false;
  std::atomic<bool> stall_ = false;
  mutable std::mutex mutex_;
  std::vector<Packet> packets_;
  std::vector<std::vector<unsigned char>> extradata_;
};

TEST(RtmpPusherTest, PushesFlvFromAnIdrWithAvcCAndMonotonicStamps) {
  const uint16_t port = FreePort();
  RtmpReceiver receiver(port);
  FakeEncoder encoder(EncodeUnits(30, 320, 240));
  Demand demand;
  h264::KeyframeRequests keyframes;
  RtmpPusher pusher({.url = Url(port), .fps = 30, .io_timeout = 3000ms}, encoder.Subscribe(),
                    demand, keyframes);
  encoder.StartEmitting();
  pusher.Start();
  ASSERT_TRUE(WaitUntil([&] { return receiver.packets().size() >= 40; })) << pusher.Stats();
  nlohmann::json stats = pusher.Stats();
  EXPECT_EQ(stats["state"], "connected");
  EXPECT_EQ(stats["connects"], 1);
  std::vector<RtmpReceiver::Packet> packets = receiver.packets();
  EXPECT_TRUE(packets.front().key);
  int keys = 0;
  for (size_t i = 1; i < packets.size(); ++i) {
    EXPECT_GT(packets[i].dts, packets[i - 1].dts);
    keys += packets[i].key ? 1 : 0;
  }
  EXPECT_GE(keys, 1);  // the IDR every 15 units kept its flag
  // The sequence header was an avcC record (version 1), not Annex B.
  std::vector<std::vector<unsigned char>> extradata = receiver.extradata();
  ASSERT_EQ(extradata.size(), 1u);
  ASSERT_FALSE(extradata[0].empty());
  EXPECT_EQ(extradata[0][0], 1);
  pusher.Stop();
}

TEST(RtmpPusherTest, ANewFrameSizeMeansANewConnectionWithNewParameterSets) {
  const uint16_t port = FreePort();
  RtmpReceiver receiver(port);
  FakeEncoder encoder(EncodeUnits(30, 320, 240));
  Demand demand;
  h264::KeyframeRequests keyframes;
  RtmpPusher pusher({.url = Url(port), .fps = 30, .io_timeout = 3000ms}, encoder.Subscribe(),
                    demand, keyframes);
  encoder.StartEmitting();
  pusher.Start();
  ASSERT_TRUE(WaitUntil([&] { return receiver.packets().size() >= 10; })) << pusher.Stats();
  encoder.SwitchTo(EncodeUnits(30, 480, 360));
  ASSERT_TRUE(WaitUntil([&] {
    std::vector<std::vector<unsigned char>> extradata = receiver.extradata();
    return extradata.size() >= 2 && !extradata[1].empty();
  })) << pusher.Stats();
  std::vector<std::vector<unsigned char>> extradata = receiver.extradata();
  EXPECT_NE(extradata[0], extradata[1]);  // the new SPS (size) went into the new header
  ASSERT_TRUE(WaitUntil([&] { return pusher.Stats()["state"] == "connected"; }));
  nlohmann::json stats = pusher.Stats();
  EXPECT_EQ(stats["connects"], 2) << stats;
  EXPECT_FALSE(stats.contains("error")) << stats;
  // At most a failed attempt or two while the receiver listens again, each
  // after a backoff: never a loop of attempts.
  EXPECT_LE(stats["attempts"].get<uint64_t>(), 4u) << stats;
  pusher.Stop();
}

TEST(RtmpPusherTest, AnEngineThatStopsReadingCostsDropsNotAQueue) {
  const uint16_t port = FreePort();
  RtmpReceiver receiver(port);
  FakeEncoder encoder(EncodeUnits(30));
  Demand demand;
  h264::KeyframeRequests keyframes;
  RtmpPusher pusher({.url = Url(port), .fps = 30, .io_timeout = 500ms}, encoder.Subscribe(), demand,
                    keyframes);
  encoder.StartEmitting();
  pusher.Start();
  ASSERT_TRUE(WaitUntil([&] { return receiver.packets().size() >= 5; })) << pusher.Stats();
  receiver.Stall();
  // The socket buffers fill, a write makes no progress for io_timeout: the
  // connection is given up; the feed dropped what the pusher could not take.
  ASSERT_TRUE(WaitUntil([&] { return pusher.Stats()["state"] == "retrying"; }, 30s))
      << pusher.Stats();
  nlohmann::json stats = pusher.Stats();
  EXPECT_NE(stats["error"].get<std::string>().find("not reading"), std::string::npos) << stats;
  EXPECT_GT(stats["dropped"].get<uint64_t>(), 0u) << stats;
  const int64_t stop_start = MonotonicMicros();
  pusher.Stop();
  EXPECT_LT(MonotonicMicros() - stop_start, 2'000'000);
  encoder.StopEmitting();
  EXPECT_LT(encoder.max_sink_us(), 200'000);
}

}  // namespace
}  // namespace freshframe::rtmp
