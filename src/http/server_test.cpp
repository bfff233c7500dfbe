#include "http/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "core/clock.h"
#include "core/timecode.h"
#include "http/loopback_test_util.h"
#include "probe/probe.h"

namespace freshframe::http {
namespace {

using namespace std::chrono_literals;

// A connected loopback socket; closes on destruction.
class Client {
 public:
  explicit Client(uint16_t port, int rcvbuf = 0) {
    const LoopbackSocket s = ConnectLoopback(port, rcvbuf);
    fd_ = s.fd;
    connected_ = s.connected;
  }
  ~Client() { close(fd_); }

  bool Send(const std::string& data) {
    return connected_ &&
           ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
  }

  // Reads until the peer closes, `limit` bytes arrive, or the timeout.
  std::string ReadAll(size_t limit = 1 << 20) {
    std::string out;
    char buffer[4096];
    while (out.size() < limit) {
      const ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      out.append(buffer, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

int StatusOf(const std::string& response) {
  if (response.size() < 12 || response.compare(0, 5, "HTTP/") != 0) return 0;
  return std::stoi(response.substr(9, 3));
}

// A server fed by a thread that encodes and publishes frames at ~50 fps
// while someone watches, as the encoder stage does.
class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.port = 0;
    options.threads = 2;
    options.snapshot_timeout = 2000ms;
    auto server =
        Server::Start(options, ServerDeps{frames_, demand_, metrics_, "<html>page</html>",
                                          [] {
                                            return nlohmann::json{{"source", {{"spec", "test"}}}};
                                          },
                                          nullptr});
    ASSERT_TRUE(server.ok()) << server.error().message;
    server_ = std::move(server).value();
    publisher_ = std::jthread([this](std::stop_token stop) { Publish(stop); });
  }

  void TearDown() override {
    publisher_.request_stop();
    if (publisher_.joinable()) publisher_.join();
    if (server_) server_->Stop();
  }

  void Publish(std::stop_token stop) {
    encode::JpegEncoder encoder(80);
    uint64_t sequence = 0;
    while (!stop.stop_requested()) {
      std::this_thread::sleep_for(20ms);
      if (!demand_.Wanted()) continue;
      cv::Mat image(240, 320, CV_8UC3, cv::Scalar(40, 90, 160));
      auto frame = std::make_shared<encode::EncodedFrame>();
      frame->meta.sequence = ++sequence;
      frame->meta.width = 320;
      frame->meta.height = 240;
      frame->meta.stamps.capture_us = MonotonicMicros();
      timecode::Write(image, frame->meta.stamps.capture_us);
      frame->bytes = std::move(encoder.Encode(image)).value();
      frame->meta.stamps.encode_us = MonotonicMicros();
      frames_.Publish(std::move(frame));
    }
  }

  std::string Request(const std::string& request) {
    Client client(server_->port());
    EXPECT_TRUE(client.Send(request));
    return client.ReadAll();
  }

  LatestSlot<encode::EncodedFramePtr> frames_;
  Demand demand_;
  Metrics metrics_;
  std::unique_ptr<Server> server_;
  std::jthread publisher_;
};

TEST_F(ServerTest, StreamsToSeveralClients) {
  probe::ProbeOptions options;
  options.url = "http://127.0.0.1:" + std::to_string(server_->port()) + "/stream.mjpg";
  options.seconds = 1.5;
  options.clients = 4;
  const auto report = probe::RunProbe(options, nullptr);
  EXPECT_EQ(report.failed_clients, 0);
  EXPECT_EQ(report.no_strip, 0U);
  // Every client gets a stream, not one picture; how many frames a busy
  // machine manages in 1.5 s is not the point.
  for (const auto& client : report.per_client) EXPECT_GT(client.frames, 1U);
  EXPECT_GE(metrics_.Stage("send").frames(), 4U);
}

TEST_F(ServerTest, AnswersSimpleRoutes) {
  const std::string page = Request("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(StatusOf(page), 200);
  EXPECT_NE(page.find("<html>page</html>"), std::string::npos);
  EXPECT_EQ(StatusOf(Request("GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")), 200);
  const std::string stats = Request("GET /api/stats HTTP/1.1\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(StatusOf(stats), 200);
  EXPECT_NE(stats.find("\"client_count\""), std::string::npos);
  EXPECT_NE(stats.find("\"spec\":\"test\""), std::string::npos);
}

TEST_F(ServerTest, RejectsBadRequests) {
  EXPECT_EQ(StatusOf(Request("GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n")), 404);
  const std::string post = Request("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(StatusOf(post), 405);
  EXPECT_NE(post.find("Allow: GET, HEAD"), std::string::npos);
  EXPECT_EQ(StatusOf(Request("NOT HTTP AT ALL\r\n\r\n")), 400);
  const std::string huge = "GET / HTTP/1.1\r\nX-Big: " + std::string(16 * 1024, 'a') + "\r\n\r\n";
  EXPECT_EQ(StatusOf(Request(huge)), 431);
}

TEST_F(ServerTest, SnapshotWaitsForAFreshFrame) {
  // Nobody streams, so nothing is encoded until the snapshot asks for it.
  const std::string response = Request("GET /snapshot.jpg HTTP/1.1\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(StatusOf(response), 200);
  EXPECT_NE(response.find("Content-Type: image/jpeg"), std::string::npos);
  EXPECT_NE(response.find("X-Frame-Timestamp: "), std::string::npos);
  EXPECT_NE(response.find("\xFF\xD8"), std::string::npos);
  // The snapshot's hold on the encoder is released once it is answered (the
  // fan-out thread drops its reference just after handing the part over).
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (demand_.watchers() != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(demand_.watchers(), 0);
}

TEST_F(ServerTest, StalledClientDoesNotBlockStop) {
  Client stalled(server_->port(), 4096);
  ASSERT_TRUE(stalled.Send("GET /stream.mjpg HTTP/1.1\r\n\r\n"));
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(demand_.watchers(), 1);
  const auto start = std::chrono::steady_clock::now();
  server_->Stop();
  // Well under the 30 s write stall timeout a stuck Stop would wait for;
  // generous for a loaded machine.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_EQ(demand_.watchers(), 0);  // sessions (and their holds) are gone
}

TEST(ServerStartTest, PortInUseIsAClearError) {
  LatestSlot<encode::EncodedFramePtr> frames;
  Demand demand;
  Metrics metrics;
  ServerOptions options;
  options.port = 0;
  auto first = Server::Start(options, ServerDeps{frames, demand, metrics, "", nullptr, nullptr});
  ASSERT_TRUE(first.ok());
  options.port = (*first)->port();
  auto second = Server::Start(options, ServerDeps{frames, demand, metrics, "", nullptr, nullptr});
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find(std::to_string(options.port)), std::string::npos);
  EXPECT_NE(second.error().message.find("in use"), std::string::npos);
}

}  // namespace
}  // namespace freshframe::http
