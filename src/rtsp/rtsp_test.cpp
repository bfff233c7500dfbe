// RtspServer on 127.0.0.1 (port 0) fed by a real libx264 encode; the
// clients are GStreamer's rtspsrc (decoding with openh264dec) and raw RTSP
// requests over a socket (for the status codes).
#include "rtsp/rtsp.h"

#include <arpa/inet.h>
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"

namespace freshframe::rtsp {
namespace {

using namespace std::chrono_literals;

// The H264Stage's side: subscribers and a libx264 encode of a moving
// pattern at about 30 fps, on its own thread, IDRs when asked.
class EncodingStage {
 public:
  EncodingStage() {
    auto made = h264::H264Encoder::Create({}, 320, 240, 30);
    EXPECT_TRUE(made.ok()) << (made.ok() ? "" : made.error().message);
    if (made.ok()) encoder_ = std::move(made).value();
    thread_ = std::thread([this] { Run(); });
  }
  ~EncodingStage() {
    stop_ = true;
    thread_.join();
  }
  std::shared_ptr<void> Subscribe(h264::AccessUnitSink sink) {
    std::lock_guard lock(mutex_);
    auto entry = std::make_shared<h264::AccessUnitSink>(std::move(sink));
    sinks_.push_back(entry);
    return std::shared_ptr<void>(nullptr, [this, entry](void*) {
      std::lock_guard inner(mutex_);
      std::erase(sinks_, entry);
    });
  }
  size_t subscribers() {
    std::lock_guard lock(mutex_);
    return sinks_.size();
  }
  egress::SubscribeFn subscribe_fn() {
    return [this](h264::AccessUnitSink sink) { return Subscribe(std::move(sink)); };
  }

  Demand demand;
  h264::KeyframeRequests keyframes;

 private:
  void Run() {
    uint64_t sequence = 0;
    cv::Mat frame(240, 320, CV_8UC3);
    while (!stop_) {
      std::this_thread::sleep_for(33ms);
      if (!demand.Wanted() || encoder_ == nullptr) continue;
      const int64_t now = MonotonicMicros();
      const bool idr = sequence == 0 || keyframes.ShouldForce(now, 0);
      frame.setTo(cv::Scalar(40, 80, 120));
      const int x = static_cast<int>(sequence * 7 % 280);
      cv::rectangle(frame, cv::Rect(x, 100, 40, 40), cv::Scalar(250, 250, 250), cv::FILLED);
      auto unit = encoder_->Encode(frame, idr);
      if (!unit.ok()) continue;
      if (unit->keyframe) keyframes.OnKeyframe(now, idr);
      auto encoded = std::make_shared<encode::EncodedFrame>();
      encoded->codec = encode::Codec::kH264;
      encoded->keyframe = unit->keyframe;
      encoded->sequence = ++sequence;
      encoded->meta.stamps.capture_us = now - 5000;
      encoded->bytes = std::move(unit->bytes);
      std::lock_guard lock(mutex_);
      for (const auto& sink : sinks_) (*sink)(encoded);
    }
  }

  std::unique_ptr<h264::H264Encoder> encoder_;
  std::mutex mutex_;
  std::vector<std::shared_ptr<h264::AccessUnitSink>> sinks_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// rtspsrc ! depay ! openh264dec ! appsink: counts decoded pictures.
class Player {
 public:
  Player(const std::string& url, const std::string& protocols, const std::string& user = {},
         const std::string& password = {}) {
    gst_init(nullptr, nullptr);
    std::string launch = "rtspsrc name=src latency=0 protocols=" + protocols + " location=" + url;
    if (!user.empty()) launch += " user-id=" + user + " user-pw=" + password;
    launch +=
        " ! rtph264depay ! h264parse ! openh264dec ! appsink name=sink sync=false "
        "max-buffers=4 drop=true";
    GError* error = nullptr;
    pipeline_ = gst_parse_launch(launch.c_str(), &error);
    EXPECT_EQ(error, nullptr) << error->message;
    sink_ = gst_bin_get_by_name(GST_BIN(pipeline_), "sink");
    gst_element_set_state(pipeline_, GST_STATE_PLAYING);
  }
  ~Player() {
    gst_element_set_state(pipeline_, GST_STATE_NULL);
    gst_object_unref(sink_);
    gst_object_unref(pipeline_);
  }
  // Pulls up to `count` decoded pictures, each within `timeout`; how many.
  int Decode(int count, std::chrono::seconds timeout = 20s) {
    int decoded = 0;
    while (decoded < count) {
      GstSample* sample = gst_app_sink_try_pull_sample(
          GST_APP_SINK(sink_), static_cast<GstClockTime>(timeout.count()) * GST_SECOND);
      if (sample == nullptr) break;
      gst_sample_unref(sample);
      ++decoded;
    }
    return decoded;
  }
  bool ended() { return gst_app_sink_is_eos(GST_APP_SINK(sink_)) != FALSE || errored(); }
  bool errored() {
    GstBus* bus = gst_element_get_bus(pipeline_);
    GstMessage* message = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
    gst_object_unref(bus);
    if (message == nullptr) return false;
    gst_message_unref(message);
    return true;
  }

 private:
  GstElement* pipeline_ = nullptr;
  GstElement* sink_ = nullptr;
};

// One raw RTSP request on a connection; the status line of the response.
class RawClient {
 public:
  explicit RawClient(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    timeval timeout{.tv_sec = 15, .tv_usec = 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  }
  ~RawClient() { close(fd_); }
  // Whether the server closed the connection (within the receive timeout).
  bool Closed() {
    char byte = 0;
    return recv(fd_, &byte, 1, 0) == 0;
  }
  std::string Request(const std::string& method, const std::string& url,
                      const std::string& headers = {}) {
    if (!connected_) return "not connected";
    const std::string request = method + " " + url +
                                " RTSP/1.0\r\nCSeq: " + std::to_string(++cseq_) + "\r\n" + headers +
                                "\r\n";
    if (send(fd_, request.data(), request.size(), MSG_NOSIGNAL) < 0) return "send failed";
    std::string response;
    char buffer[4096];
    while (response.find("\r\n\r\n") == std::string::npos) {
      const ssize_t got = recv(fd_, buffer, sizeof buffer, 0);
      if (got <= 0) return response.empty() ? "closed" : response;
      response.append(buffer, static_cast<size_t>(got));
    }
    // Skip a body (a DESCRIBE's SDP) so the next request reads its own.
    const size_t length_at = response.find("Content-Length: ");
    if (length_at != std::string::npos) {
      const size_t body = std::stoul(response.substr(length_at + 16));
      const size_t have = response.size() - response.find("\r\n\r\n") - 4;
      for (size_t left = body - std::min(body, have); left > 0;) {
        const ssize_t got = recv(fd_, buffer, std::min(left, sizeof buffer), 0);
        if (got <= 0) break;
        left -= static_cast<size_t>(got);
      }
    }
    last_response_ = response;
    return response.substr(0, response.find("\r\n"));
  }
  // A header of the last response ("" if absent), up to a ';'.
  std::string Header(const std::string& name) const {
    const size_t at = last_response_.find("\r\n" + name + ": ");
    if (at == std::string::npos) return {};
    const size_t start = at + name.size() + 4;
    return last_response_.substr(start, last_response_.find_first_of(";\r", start) - start);
  }
  // A client that plays over TCP and then never reads: its receive buffer
  // made small so that the server's send side fills soon.
  bool PlayAndStall(const std::string& url) {
    int small = 4096;
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    if (Request("DESCRIBE", url) != "RTSP/1.0 200 OK") return false;
    if (Request("SETUP", url + "/stream=0", "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n") !=
        "RTSP/1.0 200 OK") {
      return false;
    }
    const std::string session = Header("Session");
    return Request("PLAY", url, "Session: " + session + "\r\n") == "RTSP/1.0 200 OK";
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  int cseq_ = 0;
  std::string last_response_;
};

std::string Url(int port, const std::string& path = "/stream") {
  return "rtsp://127.0.0.1:" + std::to_string(port) + path;
}

// "Basic base64(text)".
std::string BasicHeader(const std::string& text) {
  gchar* encoded = g_base64_encode(reinterpret_cast<const guchar*>(text.data()), text.size());
  std::string header = std::string("Authorization: Basic ") + encoded + "\r\n";
  g_free(encoded);
  return header;
}

template <typename Predicate>
bool WaitFor(Predicate predicate, std::chrono::seconds limit = 15s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return predicate();
}

RtspOptions LoopbackOptions() {
  RtspOptions options;
  options.port = 0;
  return options;
}

TEST(RtspPortTest, ValidatesTheFlagValue) {
  EXPECT_EQ(*ValidatePort("8554"), 8554);
  EXPECT_EQ(*ValidatePort("1"), 1);
  EXPECT_EQ(*ValidatePort("65535"), 65535);
  for (const char* bad : {"", "0", "65536", "-1", "85x", " 8554", "http", "99999999999"}) {
    auto result = ValidatePort(bad);
    ASSERT_FALSE(result.ok()) << bad;
    EXPECT_NE(result.error().message.find("RTSP port"), std::string::npos);
    EXPECT_EQ(result.error().message.find('\n'), std::string::npos);
  }
}

TEST(RtspServerTest, TcpAndUdpClientsDecodeTheSharedFeed) {
  EncodingStage stage;
  RtspServer server(LoopbackOptions());
  server.AddStream("/stream", stage.subscribe_fn(), stage.demand, stage.keyframes);
  auto port = server.Start();
  ASSERT_TRUE(port.ok()) << port.error().message;
  ASSERT_GT(*port, 0);
  EXPECT_EQ(stage.demand.watchers(), 0);  // no client, no encode
  {
    Player tcp(Url(*port), "tcp");
    EXPECT_EQ(tcp.Decode(15), 15);
    Player udp(Url(*port), "udp");
    EXPECT_EQ(udp.Decode(15), 15);
    EXPECT_EQ(tcp.Decode(5), 5);
    // Two clients, one feed: one subscription and one demand hold.
    EXPECT_EQ(stage.subscribers(), 1U);
    EXPECT_EQ(stage.demand.watchers(), 1);
    const nlohmann::json stats = server.Stats();
    EXPECT_EQ(stats["port"], *port);
    EXPECT_EQ(stats["clients"], 2);
    ASSERT_EQ(stats["streams"].size(), 1U);
    EXPECT_EQ(stats["streams"][0]["path"], "/stream");
    EXPECT_EQ(stats["streams"][0]["clients"], 2);
    EXPECT_GT(stats["streams"][0]["frames"].get<int>(), 20);
    EXPECT_GT(stats["streams"][0]["keyframes"].get<int>(), 0);
  }
  // The last client gone: the feed stops and the encoder may idle.
  EXPECT_TRUE(WaitFor([&] { return stage.subscribers() == 0 && stage.demand.watchers() == 0; }));
  // And a new client gets a picture again.
  Player again(Url(*port), "tcp");
  EXPECT_EQ(again.Decode(5), 5);
}

TEST(RtspServerTest, EachPathServesItsOwnStream) {
  EncodingStage first;
  EncodingStage second;
  RtspServer server(LoopbackOptions());
  server.AddStream("/stream", first.subscribe_fn(), first.demand, first.keyframes);
  server.AddStream("/streams/yard", second.subscribe_fn(), second.demand, second.keyframes);
  auto port = server.Start();
  ASSERT_TRUE(port.ok()) << port.error().message;
  Player yard(Url(*port, "/streams/yard"), "tcp");
  EXPECT_EQ(yard.Decode(5), 5);
  EXPECT_EQ(second.subscribers(), 1U);
  EXPECT_EQ(first.subscribers(), 0U);
  RawClient raw(*port);
  EXPECT_EQ(raw.Request("DESCRIBE", Url(*port, "/streams/nosuch")), "RTSP/1.0 404 Not Found");
}

TEST(RtspServerTest, CredentialsOfHttpOr401) {
  EncodingStage stage;
  RtspOptions options = LoopbackOptions();
  options.basic_auth = "user:pass";
  options.token = "s3cret-token";
  RtspServer server(options);
  server.AddStream("/stream", stage.subscribe_fn(), stage.demand, stage.keyframes);
  auto port = server.Start();
  ASSERT_TRUE(port.ok()) << port.error().message;
  const std::string url = Url(*port);
  {
    RawClient raw(*port);
    EXPECT_EQ(raw.Request("DESCRIBE", url), "RTSP/1.0 401 Unauthorized");
    EXPECT_EQ(raw.Request("DESCRIBE", url, BasicHeader("user:wrong")), "RTSP/1.0 401 Unauthorized");
    EXPECT_EQ(raw.Request("DESCRIBE", url, BasicHeader("other:pass")), "RTSP/1.0 401 Unauthorized");
    EXPECT_EQ(raw.Request("DESCRIBE", url, BasicHeader("user:pass")), "RTSP/1.0 200 OK");
    // The token as the password, with any user name.
    EXPECT_EQ(raw.Request("DESCRIBE", url, BasicHeader("nvr:s3cret-token")), "RTSP/1.0 200 OK");
    EXPECT_EQ(raw.Request("DESCRIBE", url, BasicHeader("nvr:s3cret-toke")),
              "RTSP/1.0 401 Unauthorized");
    EXPECT_EQ(raw.Request("DESCRIBE", url, "Authorization: Bearer s3cret-token\r\n"),
              "RTSP/1.0 401 Unauthorized");
  }
  // A player that follows the 401 with the credentials decodes.
  Player player(url, "tcp", "user", "pass");
  EXPECT_EQ(player.Decode(5), 5);
}

TEST(RtspServerTest, RefusesClientsBeyondTheLimit) {
  EncodingStage stage;
  RtspOptions options = LoopbackOptions();
  options.max_clients = 1;
  RtspServer server(options);
  server.AddStream("/stream", stage.subscribe_fn(), stage.demand, stage.keyframes);
  auto port = server.Start();
  ASSERT_TRUE(port.ok()) << port.error().message;
  {
    RawClient first(*port);
    EXPECT_EQ(first.Request("OPTIONS", Url(*port)), "RTSP/1.0 200 OK");
    RawClient second(*port);
    EXPECT_EQ(second.Request("OPTIONS", Url(*port)), "RTSP/1.0 200 OK");
    EXPECT_EQ(second.Request("DESCRIBE", Url(*port)), "RTSP/1.0 503 Service Unavailable");
    EXPECT_EQ(server.Stats()["refused"], 1);
  }
  // Both gone: there is room again.
  EXPECT_TRUE(WaitFor([&] { return server.clients() == 0; }));
  RawClient third(*port);
  EXPECT_EQ(third.Request("OPTIONS", Url(*port)), "RTSP/1.0 200 OK");
}

TEST(RtspServerTest, PortInUseIsAnError) {
  RtspServer first(LoopbackOptions());
  auto port = first.Start();
  ASSERT_TRUE(port.ok()) << port.error().message;
  RtspOptions options = LoopbackOptions();
  options.port = *port;
  RtspServer second(options);
  auto refused = second.Start();
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find(std::to_string(*port)), std::string::npos)
      << refused.error().message;
}

TEST(RtspServerTest, StopWithClientsPlayingReturnsAndEndsThem) {
  EncodingStage stage;
  auto server = std::make_unique<RtspServer>(LoopbackOptions());
  server->AddStream("/stream", stage.subscribe_fn(), stage.demand, stage.keyframes);
  auto port = server->Start();
  ASSERT_TRUE(port.ok()) << port.error().message;
  Player tcp(Url(*port), "tcp");
  Player udp(Url(*port), "udp");
  ASSERT_EQ(tcp.Decode(3), 3);
  ASSERT_EQ(udp.Decode(3), 3);
  RawClient raw(*port);
  ASSERT_EQ(raw.Request("OPTIONS", Url(*port)), "RTSP/1.0 200 OK");
  const auto started = std::chrono::steady_clock::now();
  server->Stop();
  // Generous: "promptly" means no session timeout (60 s) is waited for.
  EXPECT_LT(std::chrono::steady_clock::now() - started, 20s);
  EXPECT_EQ(stage.subscribers(), 0U);
  EXPECT_EQ(stage.demand.watchers(), 0);
  // Connections are closed.
  EXPECT_TRUE(raw.Closed());
  server.reset();
}

// The app replaces the server when a reload changes the streams: the new
// one binds the same port while the old one's clients were playing.
TEST(RtspServerTest, ANewServerBindsThePortOfAStoppedOne) {
  EncodingStage stage;
  auto first = std::make_unique<RtspServer>(LoopbackOptions());
  first->AddStream("/stream", stage.subscribe_fn(), stage.demand, stage.keyframes);
  auto port = first->Start();
  ASSERT_TRUE(port.ok()) << port.error().message;
  {
    Player player(Url(*port), "tcp");
    ASSERT_EQ(player.Decode(3), 3);
    first->Stop();
  }
  first.reset();
  RtspOptions options = LoopbackOptions();
  options.port = *port;
  RtspServer second(options);
  second.AddStream("/stream", stage.subscribe_fn(), stage.demand, stage.keyframes);
  auto again = second.Start();
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(*again, *port);
  Player player(Url(*port), "tcp");
  EXPECT_EQ(player.Decode(3), 3);
}

// A client whose TCP connection takes nothing costs it its own frames, never
// the other clients' (one shared media: a blocked pipeline would stall all).
TEST(RtspServerTest, AStalledTcpClientDoesNotStallTheOthers) {
  EncodingStage stage;
  RtspServer server(LoopbackOptions());
  server.AddStream("/stream", stage.subscribe_fn(), stage.demand, stage.keyframes);
  auto port = server.Start();
  ASSERT_TRUE(port.ok()) << port.error().message;
  RawClient stalled(*port);
  ASSERT_TRUE(stalled.PlayAndStall(Url(*port)));
  Player player(Url(*port), "tcp");
  // About 10 s of video at 30 fps while the stalled client takes nothing.
  EXPECT_GE(player.Decode(300, 10s), 280);
}

TEST(RtspServerTest, IdleConnectionsAreClosedAndFreeTheirPlaces) {
  EncodingStage stage;
  RtspOptions options = LoopbackOptions();
  options.max_clients = 1;
  options.idle_timeout_s = 1.0;
  RtspServer server(options);
  server.AddStream("/stream", stage.subscribe_fn(), stage.demand, stage.keyframes);
  auto port = server.Start();
  ASSERT_TRUE(port.ok()) << port.error().message;
  RawClient idle(*port);
  ASSERT_EQ(idle.Request("OPTIONS", Url(*port)), "RTSP/1.0 200 OK");
  RawClient refused(*port);
  EXPECT_EQ(refused.Request("DESCRIBE", Url(*port)), "RTSP/1.0 503 Service Unavailable");
  // Neither set up a session: both are closed, and the place is free.
  EXPECT_TRUE(idle.Closed());
  EXPECT_TRUE(refused.Closed());
  EXPECT_TRUE(WaitFor([&] { return server.clients() == 0; }));
  // A player holds its place (it has a session) past the timeout.
  Player player(Url(*port), "tcp");
  EXPECT_EQ(player.Decode(60), 60);  // about 2 s
  EXPECT_EQ(server.clients(), 1U);
  EXPECT_EQ(player.Decode(5), 5);
}

}  // namespace
}  // namespace freshframe::rtsp
