// GET /ws/stream, ?fps and the pixel variants, against a server fed by the
// real encoders (EncoderStage, VariantEncoders) from a 50 fps annotated slot.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "core/clock.h"
#include "core/timecode.h"
#include "encode/encode.h"
#include "http/http.h"
#include "http/loopback_test_util.h"
#include "http/ws_frame.h"
#include "jpeg/jpeg.h"
#include "probe/probe.h"

namespace freshframe::http {
namespace {

using namespace std::chrono_literals;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
using tcp = net::ip::tcp;

constexpr int kWidth = 640;
constexpr int kHeight = 480;
constexpr double kSourceFps = 50;

// One HTTP request on a fresh connection; the whole answer (the server
// closes after errors; `Connection: close` for the rest).
std::string RawRequest(uint16_t port, const std::string& request) {
  const auto [fd, connected] = ConnectLoopback(port);
  std::string out;
  if (connected && send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
                       static_cast<ssize_t>(request.size())) {
    char buffer[4096];
    for (ssize_t n; (n = recv(fd, buffer, sizeof buffer, 0)) > 0;) {
      out.append(buffer, static_cast<size_t>(n));
    }
  }
  close(fd);
  return out;
}

int StatusOf(const std::string& response) {
  if (response.size() < 12 || response.compare(0, 5, "HTTP/") != 0) return 0;
  return std::stoi(response.substr(9, 3));
}

// A Beast WebSocket client; every operation gives up after a timeout.
class WsClient {
 public:
  // `rcvbuf` > 0: a small receive buffer, so that a client that stops
  // reading stalls the server's writes soon.
  WsClient(uint16_t port, const std::string& target, int rcvbuf = 0) : ws_(io_) {
    auto& socket = ws_.next_layer();
    socket.open(tcp::v4());
    if (rcvbuf > 0) socket.set_option(net::socket_base::receive_buffer_size(rcvbuf));
    beast::error_code ec;
    socket.connect(tcp::endpoint(net::ip::address_v4::loopback(), port), ec);
    if (ec) {
      error_ = ec;
      return;
    }
    error_ = Await(
        [&](auto handler) { ws_.async_handshake("127.0.0.1", target, std::move(handler)); }, 5s);
  }

  bool ok() const { return !error_; }
  beast::error_code error() const { return error_; }

  // The next message, or nullopt (then error() says why).
  std::optional<std::vector<unsigned char>> Read(std::chrono::milliseconds timeout = 3000ms) {
    buffer_.clear();
    error_ = Await([&](auto handler) { ws_.async_read(buffer_, std::move(handler)); }, timeout);
    if (error_) return std::nullopt;
    binary_ = ws_.got_binary();
    const auto* data = static_cast<const unsigned char*>(buffer_.cdata().data());
    return std::vector<unsigned char>(data, data + buffer_.size());
  }
  bool binary() const { return binary_; }

  void Close() {
    Await([&](auto handler) { ws_.async_close(websocket::close_code::normal, std::move(handler)); },
          2s);
  }

 private:
  template <typename Start>
  beast::error_code Await(Start start, std::chrono::milliseconds timeout) {
    beast::error_code result = net::error::would_block;
    bool done = false;
    start([&](beast::error_code ec, auto&&...) {
      result = ec;
      done = true;
    });
    io_.restart();
    io_.run_for(timeout);
    if (!done) {
      beast::error_code ignored;
      ws_.next_layer().close(ignored);
      io_.restart();
      io_.run();
      result = beast::error::timeout;
    }
    return result;
  }

  net::io_context io_;
  websocket::stream<tcp::socket> ws_;
  beast::flat_buffer buffer_;
  beast::error_code error_;
  bool binary_ = false;
};

// A message checked and taken apart.
struct Message {
  WsHeaderFields header;
  cv::Mat image;
  std::optional<timecode::Reading> strip;
  int64_t received_us = 0;
};

std::optional<Message> Decode(const std::vector<unsigned char>& bytes) {
  auto header = ParseWsHeader(bytes.data(), bytes.size());
  EXPECT_TRUE(header.has_value());
  if (!header) return std::nullopt;
  const unsigned char* jpeg = bytes.data() + header->header_length;
  const size_t size = bytes.size() - header->header_length;
  EXPECT_GE(size, 4U);
  if (size < 4) return std::nullopt;
  EXPECT_TRUE(jpeg[0] == 0xFF && jpeg[1] == 0xD8) << "no SOI";
  EXPECT_TRUE(jpeg[size - 2] == 0xFF && jpeg[size - 1] == 0xD9) << "no EOI";
  auto image = jpeg::DecodeJpeg(jpeg, size);
  EXPECT_TRUE(image.ok());
  if (!image) return std::nullopt;
  Message message{*header, *image, {}, MonotonicMicros()};
  message.strip = timecode::Read(message.image, message.received_us);
  return message;
}

class WsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.port = 0;
    options.threads = 2;
    ServerDeps deps{jpeg_, demand_, metrics_, "<html></html>", nullptr, nullptr};
    deps.source_format = [] { return SourceFormat{kWidth, kHeight, kSourceFps}; };
    deps.variants = &variants_;
    auto server = Server::Start(options, std::move(deps));
    ASSERT_TRUE(server.ok()) << server.error().message;
    server_ = std::move(server).value();
    encoder_.Start();
    variants_.Start();
    publisher_ = std::jthread([this](std::stop_token stop) { Publish(stop); });
  }

  void TearDown() override {
    if (server_) server_->Stop();
    publisher_.request_stop();
    if (publisher_.joinable()) publisher_.join();
    encoder_.Stop();
    variants_.Stop();
  }

  // The annotator's part: a frame every 20 ms, whether anyone watches or
  // not. Dark left half, bright right half, and the timecode strip.
  void Publish(std::stop_token stop) {
    cv::Mat base(kHeight, kWidth, CV_8UC3, cv::Scalar::all(30));
    base(cv::Rect(kWidth / 2, 0, kWidth / 2, kHeight)).setTo(cv::Scalar::all(220));
    uint64_t sequence = 0;
    auto next = std::chrono::steady_clock::now();
    while (!stop.stop_requested()) {
      next += std::chrono::microseconds(static_cast<int64_t>(1e6 / kSourceFps));
      std::this_thread::sleep_until(next);
      auto frame = std::make_shared<Frame>();
      frame->meta.sequence = ++sequence;
      frame->meta.width = kWidth;
      frame->meta.height = kHeight;
      frame->meta.stamps.capture_us = MonotonicMicros();
      frame->image = base.clone();
      timecode::Write(frame->image, frame->meta.stamps.capture_us);
      annotated_.Publish(std::move(frame));
      published_.fetch_add(1);
    }
  }

  uint16_t port() const { return server_->port(); }

  nlohmann::json Stats() {
    const std::string response =
        RawRequest(port(), "GET /api/stats HTTP/1.1\r\nConnection: close\r\n\r\n");
    const auto body = response.find("\r\n\r\n");
    if (StatusOf(response) != 200 || body == std::string::npos) return nullptr;
    return nlohmann::json::parse(response.substr(body + 4), nullptr, false);
  }

  template <typename Predicate>
  bool WaitFor(Predicate predicate, std::chrono::milliseconds timeout = 3000ms) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!predicate()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(10ms);
    }
    return true;
  }

  // What a client received within `seconds` after its first message, and
  // how many frames the source published meanwhile.
  struct Received {
    bool first = false;               // the first message arrived
    std::vector<uint64_t> sequences;  // of the messages after it
    uint64_t published = 0;
  };
  Received ReceiveFor(WsClient& client, double seconds) {
    Received out;
    out.first = client.Read().has_value();
    if (!out.first) return out;
    const uint64_t published_before = published_.load();
    const auto end = std::chrono::steady_clock::now() +
                     std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6));
    while (std::chrono::steady_clock::now() < end) {
      auto bytes = client.Read();
      if (!bytes) break;
      const auto header = ParseWsHeader(bytes->data(), bytes->size());
      if (!header) break;
      out.sequences.push_back(header->sequence);
    }
    out.published = published_.load() - published_before;
    return out;
  }

  LatestSlot<FramePtr> annotated_;
  LatestSlot<encode::EncodedFramePtr> jpeg_;
  Demand demand_;
  Metrics metrics_;
  encode::EncoderStage encoder_{80, annotated_, jpeg_, demand_, metrics_};
  encode::VariantEncoders variants_{80, annotated_, metrics_};
  std::unique_ptr<Server> server_;
  std::atomic<uint64_t> published_{0};
  std::jthread publisher_;
};

TEST_F(WsTest, SendsOneBinaryMessagePerFrame) {
  WsClient client(port(), "/ws/stream");
  ASSERT_TRUE(client.ok()) << client.error().message();
  uint64_t last_sequence = 0;
  for (int i = 0; i < 10; ++i) {
    auto bytes = client.Read();
    ASSERT_TRUE(bytes.has_value()) << client.error().message();
    EXPECT_TRUE(client.binary());
    ASSERT_GE(bytes->size(), kWsHeaderSize);
    EXPECT_EQ(std::string(bytes->begin(), bytes->begin() + 4), "FFWS");
    auto message = Decode(*bytes);
    ASSERT_TRUE(message.has_value());
    EXPECT_EQ(message->header.version, 1);
    EXPECT_EQ(message->header.header_length, 32);
    EXPECT_GT(message->header.sequence, last_sequence);
    last_sequence = message->header.sequence;
    EXPECT_EQ(message->header.width, kWidth);
    EXPECT_EQ(message->header.height, kHeight);
    EXPECT_EQ(message->image.cols, kWidth);
    // The stamp is the capture time: the one in the pixels, and recent.
    ASSERT_TRUE(message->strip.has_value());
    EXPECT_FALSE(message->strip->mirrored);
    EXPECT_EQ(static_cast<int64_t>(message->header.capture_us), message->strip->t_us);
    const int64_t age = message->received_us - static_cast<int64_t>(message->header.capture_us);
    // Recent: generous for a loaded machine; a stamp from another clock
    // would be off by far more.
    EXPECT_TRUE(age >= 0 && age < 10'000'000) << age;
  }
  EXPECT_EQ(demand_.watchers(), 1);  // the default stream's encoder runs for it
  // A message counts as sent once it has left the server's socket, which the
  // server learns after the client may already have read it: wait for it.
  nlohmann::json stats;
  EXPECT_TRUE(WaitFor([&] {
    stats = Stats();
    return stats.is_object() && stats["clients"].size() == 1U &&
           stats["clients"][0]["sent"].get<uint64_t>() >= 10U;
  })) << stats.dump();
  ASSERT_EQ(stats["clients"].size(), 1U);
  EXPECT_EQ(stats["clients"][0]["path"], "/ws/stream");
  client.Close();
  EXPECT_TRUE(WaitFor([&] { return demand_.watchers() == 0; }));
}

TEST_F(WsTest, SlowClientGetsTheNewest) {
  WsClient client(port(), "/ws/stream", 4096);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(client.Read().has_value());
  std::this_thread::sleep_for(1500ms);  // reads nothing: ~75 frames go by
  // What the kernel buffered comes first (a few messages at most), then the
  // server's newest frame, not the next one in line: one at least as new as
  // the newest encoded when the client reads again. (A frame sequence, not
  // an age in ms: a busy machine may be slow to send it.)
  const auto newest = jpeg_.Latest();
  ASSERT_TRUE(newest.has_value());
  const uint64_t newest_when_resumed = newest->value->meta.sequence;
  bool fresh = false;
  uint64_t previous = 0, largest_gap = 0;
  for (int i = 0; i < 6 && !fresh; ++i) {
    auto bytes = client.Read();
    ASSERT_TRUE(bytes.has_value()) << client.error().message();
    auto message = Decode(*bytes);
    ASSERT_TRUE(message.has_value());
    if (previous != 0) largest_gap = std::max(largest_gap, message->header.sequence - previous);
    previous = message->header.sequence;
    fresh = message->header.sequence >= newest_when_resumed;
  }
  EXPECT_TRUE(fresh);
  EXPECT_GT(largest_gap, 20U);
  // Skips are counted when the message after the gap has left the socket,
  // which may be after the client read it.
  nlohmann::json stats;
  EXPECT_TRUE(WaitFor([&] {
    stats = Stats();
    return stats["clients"].size() == 1U && stats["clients"][0]["skipped"].get<uint64_t>() > 20U;
  })) << stats.dump();
}

TEST_F(WsTest, BadHandshakesAreRefusedAndTheServerKeepsServing) {
  const std::string upgrade =
      "Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
  // Not an upgrade at all: 426 and the Upgrade header.
  const std::string plain =
      RawRequest(port(), "GET /ws/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  EXPECT_EQ(StatusOf(plain), 426) << plain;
  EXPECT_NE(plain.find("Upgrade: websocket"), std::string::npos);
  EXPECT_EQ(StatusOf(RawRequest(port(), "HEAD /ws/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")),
            426);
  // Malformed handshakes: Beast answers 400 (426 for a wrong version).
  EXPECT_EQ(
      StatusOf(RawRequest(port(),
                          "GET /ws/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n")),
      400);  // no Sec-WebSocket-Key
  EXPECT_EQ(StatusOf(RawRequest(port(), "GET /ws/stream HTTP/1.1\r\n" + upgrade + "\r\n")),
            400);  // no Sec-WebSocket-Version
  EXPECT_EQ(StatusOf(RawRequest(port(), "GET /ws/stream HTTP/1.1\r\n" + upgrade +
                                            "Sec-WebSocket-Version: 8\r\n\r\n")),
            426);
  EXPECT_EQ(
      StatusOf(RawRequest(port(), "POST /ws/stream HTTP/1.1\r\n" + upgrade +
                                      "Sec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n")),
      400);
  EXPECT_EQ(StatusOf(RawRequest(port(), "GET /ws/stream HTTP/1.0\r\n" + upgrade +
                                            "Sec-WebSocket-Version: 13\r\n\r\n")),
            400);
  // Bad stream options, before any upgrade.
  for (const char* query : {"fps=0", "fps=51", "fps=x", "width=17", "width=642", "mirror=2"}) {
    const std::string response =
        RawRequest(port(), "GET /ws/stream?" + std::string(query) + " HTTP/1.1\r\n" + upgrade +
                               "Sec-WebSocket-Version: 13\r\n\r\n");
    EXPECT_EQ(StatusOf(response), 400) << query << ": " << response;
  }
  EXPECT_EQ(demand_.watchers(), 0);
  WsClient client(port(), "/ws/stream");
  ASSERT_TRUE(client.ok()) << client.error().message();
  EXPECT_TRUE(client.Read().has_value());
}

TEST_F(WsTest, InvalidOptionsOnMjpegAre400) {
  for (const char* target : {"/stream.mjpg?fps=0", "/stream.mjpg?fps=100", "/?action=stream&fps=",
                             "/stream.mjpg?width=8", "/stream.mjpg?width=321",
                             "/stream.mjpg?width=1280", "/stream.mjpg?mirror=on"}) {
    const std::string response =
        RawRequest(port(), "GET " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    EXPECT_EQ(StatusOf(response), 400) << target;
    EXPECT_TRUE(response.find("fps must") != std::string::npos ||
                response.find("width must") != std::string::npos ||
                response.find("mirror must") != std::string::npos)
        << response;
  }
}

TEST_F(WsTest, FpsCapsMjpegAndWebSocket) {
  // A capped MJPEG client, a capped and an uncapped WebSocket client watch
  // the 50 fps source at once. No rate is asserted (a busy machine delivers
  // fewer frames, and late reads bunch them): each capped client gets frames,
  // newer and newer, and clearly fewer than the source published meanwhile
  // (5 of 50 a second; at most half is the generous bound), and fewer than
  // the uncapped client in the same time.
  probe::ProbeOptions options;
  options.url = "http://127.0.0.1:" + std::to_string(port()) + "/stream.mjpg?fps=5";
  options.seconds = 3;
  probe::ProbeReport report;
  const uint64_t published_before_probe = published_.load();
  std::jthread mjpeg([&] { report = probe::RunProbe(options, nullptr); });
  WsClient capped(port(), "/ws/stream?fps=5");
  WsClient full(port(), "/ws/stream");
  ASSERT_TRUE(capped.ok() && full.ok());
  Received uncapped;
  std::jthread full_reader([&] { uncapped = ReceiveFor(full, 2.0); });
  const Received received = ReceiveFor(capped, 2.0);
  full_reader.join();
  mjpeg.join();
  const uint64_t published_during_probe = published_.load() - published_before_probe;

  ASSERT_TRUE(received.first);
  EXPECT_FALSE(received.sequences.empty());
  EXPECT_EQ(std::adjacent_find(received.sequences.begin(), received.sequences.end(),
                               std::greater_equal<>()),
            received.sequences.end())
      << "sequence numbers must increase";
  EXPECT_LE(received.sequences.size() * 2, received.published)
      << received.sequences.size() << " messages, " << received.published << " frames published";
  ASSERT_TRUE(uncapped.first);
  EXPECT_GT(uncapped.sequences.size(), received.sequences.size());

  EXPECT_EQ(report.failed_clients, 0);
  EXPECT_GT(report.frames, 0U);
  EXPECT_LE(report.frames * 2, published_during_probe)
      << report.frames << " parts, " << published_during_probe << " frames published";
}

TEST_F(WsTest, MirrorIsEncodedOncePerFrameForAllItsClients) {
  WsClient first(port(), "/ws/stream?mirror=1");
  WsClient second(port(), "/ws/stream?mirror=1&fps=50");
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_TRUE(first.Read() && second.Read());
  const StageMetrics& variant_encodes = metrics_.Stage("encode_variants");
  const uint64_t published_before = published_.load();
  const uint64_t encodes_before = variant_encodes.frames();
  const uint64_t default_before = metrics_.Stage("encode").frames();
  std::optional<Message> last;
  for (int i = 0; i < 25; ++i) {
    auto a = first.Read();
    auto b = second.Read();
    ASSERT_TRUE(a && b);
    last = Decode(*a);
  }
  const uint64_t published = published_.load() - published_before;
  const uint64_t encodes = variant_encodes.frames() - encodes_before;
  // One encode per frame for both clients, not two (+1: a frame in progress).
  EXPECT_LE(encodes, published + 1);
  // Each of the 25 messages a client read was another encode (newest-only
  // never sends one twice), a few of them done before the count began; not
  // a share of the source's frames, which a busy machine may skip.
  EXPECT_GE(encodes, 20U);
  EXPECT_EQ(metrics_.Stage("encode").frames(), default_before);  // nobody watches the default
  EXPECT_EQ(demand_.watchers(), 0);
  ASSERT_TRUE(last.has_value());
  EXPECT_GT(cv::mean(last->image(cv::Rect(0, 100, kWidth / 2, 300)))[0], 180);  // flipped
  ASSERT_TRUE(last->strip.has_value());
  EXPECT_TRUE(last->strip->mirrored);
  EXPECT_EQ(static_cast<int64_t>(last->header.capture_us), last->strip->t_us);

  auto stats = Stats();
  ASSERT_EQ(stats["variants"].size(), 1U) << stats["variants"].dump();
  EXPECT_EQ(stats["variants"][0]["mirror"], true);
  EXPECT_EQ(stats["variants"][0]["width"], kWidth);
  EXPECT_EQ(stats["variants"][0]["clients"], 2);
  EXPECT_GT(stats["variants"][0]["encoded_frames"].get<uint64_t>(), 25U);
  first.Close();
  second.Close();
  // The last client gone, the variant's encoder goes too.
  EXPECT_TRUE(WaitFor([&] { return Stats()["variants"].empty() && variants_.active() == 0; }));
}

TEST_F(WsTest, WidthScalesForWebSocketAndMjpeg) {
  WsClient client(port(), "/ws/stream?width=320");
  ASSERT_TRUE(client.ok());
  for (int i = 0; i < 3; ++i) {
    auto bytes = client.Read();
    ASSERT_TRUE(bytes.has_value());
    auto message = Decode(*bytes);
    ASSERT_TRUE(message.has_value());
    EXPECT_EQ(message->header.width, 320);
    EXPECT_EQ(message->header.height, 240);
    EXPECT_EQ(message->image.cols, 320);
    EXPECT_EQ(message->image.rows, 240);
    ASSERT_TRUE(message->strip.has_value());  // drawn again at 320 px
    EXPECT_EQ(static_cast<int64_t>(message->header.capture_us), message->strip->t_us);
  }
  // An MJPEG client of the same variant shares its encoder.
  probe::ProbeOptions options;
  options.url = "http://127.0.0.1:" + std::to_string(port()) + "/stream.mjpg?width=320";
  options.seconds = 1;
  const auto report = probe::RunProbe(options, nullptr);
  EXPECT_EQ(report.failed_clients, 0);
  EXPECT_GT(report.frames, 1U);  // a stream (any rate: the machine may be busy)
  EXPECT_EQ(report.no_strip, 0U);
  EXPECT_EQ(variants_.active(), 1U);
}

TEST_F(WsTest, StopsWithVariantClientsConnected) {
  // The variant encoders belong to the pipeline and keep running while the
  // server stops: nothing may reach a session once its io_context is gone.
  WsClient mirrored(port(), "/ws/stream?mirror=1");
  WsClient small(port(), "/ws/stream?width=320", 4096);
  ASSERT_TRUE(mirrored.ok() && small.ok());
  ASSERT_TRUE(mirrored.Read() && small.Read());
  const auto start = std::chrono::steady_clock::now();
  server_->Stop();
  // Well under the 30 s write stall timeout; generous for a loaded machine.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_TRUE(WaitFor([&] { return variants_.active() == 0; }));
  std::this_thread::sleep_for(100ms);  // frames keep coming; nobody gets them
}

TEST(WsFrameTest, HeaderRoundTrips) {
  encode::EncodedFrame frame;
  frame.meta.sequence = 0x0102030405060708ULL;
  frame.meta.stamps.capture_us = 1234567890123;
  frame.meta.width = 1920;
  frame.meta.height = 1080;
  const WsHeader header = MakeWsHeader(frame);
  EXPECT_EQ(header[0], 'F');
  EXPECT_EQ(header[3], 'S');
  EXPECT_EQ(header[4], 1);  // version, little-endian
  EXPECT_EQ(header[5], 0);
  EXPECT_EQ(header[6], 32);    // header length
  EXPECT_EQ(header[8], 0x08);  // sequence, least significant byte first
  EXPECT_EQ(header[15], 0x01);
  for (size_t i = 28; i < 32; ++i) EXPECT_EQ(header[i], 0) << i;
  const auto fields = ParseWsHeader(header.data(), header.size());
  ASSERT_TRUE(fields.has_value());
  EXPECT_EQ(fields->sequence, frame.meta.sequence);
  EXPECT_EQ(fields->capture_us, 1234567890123U);
  EXPECT_EQ(fields->width, 1920);
  EXPECT_EQ(fields->height, 1080);
  EXPECT_FALSE(ParseWsHeader(header.data(), 31).has_value());
  WsHeader bad = header;
  bad[0] = 'X';
  EXPECT_FALSE(ParseWsHeader(bad.data(), bad.size()).has_value());
}

TEST(WsFrameTest, H264HeaderCarriesTheAccessUnitNumberAndTheKeyframeFlag) {
  encode::EncodedFrame frame;
  frame.codec = encode::Codec::kH264;
  frame.meta.sequence = 77;  // the camera frame's number: not what an H.264 reader needs
  frame.sequence = 5;
  frame.keyframe = true;
  frame.meta.stamps.capture_us = 42;
  const WsHeader key = MakeWsHeader(frame);
  EXPECT_EQ(std::string(key.begin(), key.begin() + 4), "FFH4");
  EXPECT_EQ(key[28], kWsFlagKeyframe);
  auto fields = ParseWsHeader(key.data(), key.size());
  ASSERT_TRUE(fields.has_value());
  EXPECT_EQ(fields->codec, encode::Codec::kH264);
  EXPECT_EQ(fields->sequence, 5U);
  EXPECT_TRUE(fields->keyframe);
  frame.keyframe = false;
  const WsHeader delta = MakeWsHeader(frame);
  EXPECT_EQ(delta[28], 0);
  fields = ParseWsHeader(delta.data(), delta.size());
  ASSERT_TRUE(fields.has_value());
  EXPECT_FALSE(fields->keyframe);
}

}  // namespace
}  // namespace freshframe::http
