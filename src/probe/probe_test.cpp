// RunProbe against a fake MJPEG server in the test process (loopback only),
// plus the options check and the report formats.
#include "probe/probe.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/timecode.h"
#include "probe/jpeg_test_util.h"

namespace freshframe::probe {
namespace {

struct ServerStyle {
  std::string status_line = "HTTP/1.1 200 OK";
  std::string content_type = "multipart/x-mixed-replace;boundary=frame";
  bool content_length = true;
  bool crlf_before_boundary = true;
  bool chunked = false;
  bool respond = true;  // false: read the request and never answer
  bool ipv6 = false;    // listen on [::1] instead of 127.0.0.1
  int width = 640;
  int height = 480;
  double seconds = 1.5;  // how long each connection streams before closing
  double fps = 30;
};

// Streams JPEGs whose strips are stamped just before encoding, one thread
// per connection. Every blocking call is bounded so a broken test cannot hang.
class FakeServer {
 public:
  explicit FakeServer(ServerStyle style) : style_(std::move(style)) {
    const int family = style_.ipv6 ? AF_INET6 : AF_INET;
    listen_fd_ = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_storage storage{};
    socklen_t length = 0;
    if (style_.ipv6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&storage);
      a->sin6_family = AF_INET6;
      a->sin6_addr = in6addr_loopback;
      length = sizeof(sockaddr_in6);
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&storage);
      a->sin_family = AF_INET;
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      length = sizeof(sockaddr_in);
    }
    auto* sa = reinterpret_cast<sockaddr*>(&storage);
    if (listen_fd_ < 0 || bind(listen_fd_, sa, length) != 0 || listen(listen_fd_, 64) != 0 ||
        getsockname(listen_fd_, sa, &length) != 0) {
      return;  // ok() is false
    }
    port_ = ntohs(style_.ipv6 ? reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port
                              : reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }

  ~FakeServer() {
    stop_ = true;
    if (accept_thread_.joinable()) accept_thread_.join();
    for (auto& t : connections_) t.join();
    if (listen_fd_ >= 0) close(listen_fd_);
  }

  bool ok() const { return port_ != 0; }
  uint16_t port() const { return port_; }
  std::string Url(const std::string& path = "/stream.mjpg") const {
    return std::string("http://") + (style_.ipv6 ? "[::1]" : "127.0.0.1") + ":" +
           std::to_string(port_) + path;
  }
  std::vector<std::string> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  // Every request's whole head, in arrival order.
  std::vector<std::string> heads() const {
    std::lock_guard lock(mutex_);
    return heads_;
  }

 private:
  void AcceptLoop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) connections_.emplace_back([this, fd] { Serve(fd); });
    }
  }

  bool SendAll(int fd, std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  bool SendBody(int fd, const std::string& data) {
    if (!style_.chunked) return SendAll(fd, data);
    char size[32];
    std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
    return SendAll(fd, size + data + "\r\n");
  }

  void Serve(int fd) {
    const timeval timeout{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    std::string request;
    char buffer[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
      if (n <= 0) break;
      request.append(buffer, static_cast<size_t>(n));
    }
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(request.substr(0, request.find("\r\n")));
      heads_.push_back(request);
    }
    const int64_t start = MonotonicMicros();
    const auto end = start + static_cast<int64_t>(style_.seconds * 1e6);
    if (!style_.respond) {
      while (!stop_ && MonotonicMicros() < end)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      close(fd);
      return;
    }
    std::string head = style_.status_line + "\r\nContent-Type: " + style_.content_type +
                       "\r\nCache-Control: no-cache\r\n";
    if (style_.chunked) head += "Transfer-Encoding: chunked\r\n";
    head += "\r\n";
    bool ok = SendAll(fd, head);
    if (style_.status_line.find(" 200") == std::string::npos ||
        style_.content_type.find("ultipart/") == std::string::npos) {  // [Mm]ultipart
      SendBody(fd, "not a stream");
      close(fd);
      return;
    }
    cv::Mat base(style_.height, style_.width, CV_8UC3);
    cv::randu(base, cv::Scalar::all(0), cv::Scalar::all(255));
    cv::GaussianBlur(base, base, cv::Size(7, 7), 0);
    // The delimiter follows each body at once, so the probe sees a part
    // complete without waiting for the next frame, with or without a length.
    ok = ok && SendBody(fd, "--frame\r\n");
    const auto interval = static_cast<int64_t>(1e6 / style_.fps);
    for (int64_t next = start; ok && !stop_ && next < end; next += interval) {
      const int64_t now = MonotonicMicros();
      if (next > now) std::this_thread::sleep_for(std::chrono::microseconds(next - now));
      cv::Mat frame = base.clone();
      timecode::Write(frame, MonotonicMicros());
      const std::string jpeg = test_util::EncodeJpeg(frame, 80);
      std::string part = "Content-Type: image/jpeg\r\n";
      if (style_.content_length) part += "Content-Length: " + std::to_string(jpeg.size()) + "\r\n";
      part += "X-Frame-Timestamp: 1\r\n\r\n";  // nonsense on purpose: the probe must ignore it
      part += jpeg;
      part += style_.crlf_before_boundary ? "\r\n--frame\r\n" : "--frame\r\n";
      ok = SendBody(fd, part);
    }
    close(fd);
  }

  ServerStyle style_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread accept_thread_;
  std::vector<std::thread> connections_;  // only the accept thread adds, until joined
  mutable std::mutex mutex_;
  std::vector<std::string> requests_;
  std::vector<std::string> heads_;
};

void ExpectHealthy(const ProbeReport& report, int clients) {
  EXPECT_EQ(report.failed_clients, 0);
  ASSERT_EQ(report.per_client.size(), static_cast<size_t>(clients));
  for (const ClientReport& c : report.per_client) {
    EXPECT_EQ(c.error, "");
    EXPECT_GT(c.frames, 0u);
    EXPECT_GT(c.fps, 1.0);
  }
  EXPECT_GT(report.frames, 0u);
  EXPECT_EQ(report.no_strip, 0u);
  EXPECT_EQ(report.latency_ms.count, report.frames);
  EXPECT_GE(report.latency_ms.p50, 0.0);
  EXPECT_LT(report.latency_ms.p99, 500.0);
  EXPECT_GT(report.fps_min, 1.0);
  EXPECT_LE(report.fps_min, report.fps_median);
  EXPECT_LE(report.fps_median, report.fps_max);
}

TEST(ProbeTest, MeasuresAFakeServer) {
  FakeServer server({});
  ASSERT_TRUE(server.ok());
  const int64_t start = MonotonicMicros();
  const ProbeReport report = RunProbe({server.Url(), 1.0, 1}, nullptr);
  const double elapsed = static_cast<double>(MonotonicMicros() - start) / 1e6;
  ExpectHealthy(report, 1);
  EXPECT_LT(elapsed, 2.0);
  EXPECT_EQ(server.requests().at(0), "GET /stream.mjpg HTTP/1.1");
  // The server sends ~30 fps; allow for a slow, busy machine.
  EXPECT_GT(report.fps_median, 10.0);
}

TEST(ProbeTest, StreamStyles) {
  for (int style_index = 0; style_index < 3; ++style_index) {
    ServerStyle style;
    style.content_length = style_index != 0;
    style.crlf_before_boundary = style_index != 1;
    style.chunked = style_index == 2;
    style.content_type =
        style_index == 2 ? "Multipart/X-Mixed-Replace; boundary=\"frame\"" : style.content_type;
    style.width = 320;
    style.height = 240;
    SCOPED_TRACE("style " + std::to_string(style_index));
    FakeServer server(style);
    ASSERT_TRUE(server.ok());
    ExpectHealthy(RunProbe({server.Url(), 0.6, 2}, nullptr), 2);
  }
}

TEST(ProbeTest, ManyClientsArePooled) {
  ServerStyle style;
  style.width = 320;
  style.height = 240;
  style.fps = 15;
  FakeServer server(style);
  ASSERT_TRUE(server.ok());
  const ProbeReport report = RunProbe({server.Url(), 1.0, 6}, nullptr);
  ExpectHealthy(report, 6);
  uint64_t sum = 0;
  for (const auto& c : report.per_client) sum += c.frames;
  EXPECT_EQ(report.frames, sum);
}

TEST(ProbeTest, DefaultPathAndQuery) {
  FakeServer server({});
  ASSERT_TRUE(server.ok());
  const std::string base = "http://localhost:" + std::to_string(server.port());
  // localhost may resolve to ::1 first, where nothing listens: the client
  // must go on to 127.0.0.1.
  EXPECT_EQ(RunProbe({base, 0.3, 1}, nullptr).failed_clients, 0);
  EXPECT_EQ(RunProbe({base + "/?token=abc#frag", 0.3, 1}, nullptr).failed_clients, 0);
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0], "GET /stream.mjpg HTTP/1.1");
  EXPECT_EQ(requests[1], "GET /stream.mjpg?token=abc HTTP/1.1");
}

// A URL with credentials: they go as Basic in a header, and the report (which
// is printed) shows the URL redacted.
TEST(ProbeTest, UserInfoIsSentAsBasicAndRedactedInTheReport) {
  FakeServer server({});
  ASSERT_TRUE(server.ok());
  const std::string url =
      "http://probe:hunter2@127.0.0.1:" + std::to_string(server.port()) + "/?token=s3cret";
  const ProbeReport report = RunProbe({url, 0.3, 1}, nullptr);
  EXPECT_EQ(report.failed_clients, 0);
  const auto heads = server.heads();
  ASSERT_EQ(heads.size(), 1u);
  EXPECT_EQ(heads[0].rfind("GET /stream.mjpg?token=s3cret HTTP/1.1\r\n", 0), 0u) << heads[0];
  // base64("probe:hunter2")
  EXPECT_NE(heads[0].find("\r\nAuthorization: Basic cHJvYmU6aHVudGVyMg==\r\n"), std::string::npos)
      << heads[0];
  EXPECT_EQ(heads[0].find("hunter2"), std::string::npos) << heads[0];
  const std::string shown = FormatText(report) + ToJson(report).dump();
  EXPECT_EQ(shown.find("hunter2"), std::string::npos) << shown;
  EXPECT_EQ(shown.find("s3cret"), std::string::npos) << shown;
}

TEST(ProbeTest, Ipv6Loopback) {
  ServerStyle style;
  style.ipv6 = true;
  FakeServer server(style);
  if (!server.ok()) GTEST_SKIP() << "no IPv6 loopback here";
  ExpectHealthy(RunProbe({server.Url("/"), 0.5, 1}, nullptr), 1);
}

TEST(ProbeTest, ClosedPortIsAnError) {
  // Bind a port, then close it: nothing listens there any more.
  uint16_t port = 0;
  {
    FakeServer server({});
    ASSERT_TRUE(server.ok());
    port = server.port();
  }
  const int64_t start = MonotonicMicros();
  const ProbeReport report =
      RunProbe({"http://127.0.0.1:" + std::to_string(port) + "/stream.mjpg", 2.0, 2}, nullptr);
  EXPECT_LT(MonotonicMicros() - start, 1'000'000);  // refused at once, no waiting
  EXPECT_EQ(report.failed_clients, 2);
  for (const auto& c : report.per_client) {
    EXPECT_NE(c.error.find("connect to 127.0.0.1:"), std::string::npos) << c.error;
    EXPECT_EQ(c.frames, 0u);
    EXPECT_EQ(c.fps, 0.0);
  }
  EXPECT_EQ(report.frames, 0u);
  EXPECT_EQ(report.fps_median, 0.0);
  EXPECT_EQ(report.latency_ms.count, 0u);
}

TEST(ProbeTest, NonOkStatusIsAnError) {
  ServerStyle style;
  style.status_line = "HTTP/1.1 404 Not Found";
  style.content_type = "text/plain";
  FakeServer server(style);
  ASSERT_TRUE(server.ok());
  const ProbeReport report = RunProbe({server.Url(), 1.0, 1}, nullptr);
  EXPECT_EQ(report.failed_clients, 1);
  EXPECT_EQ(report.per_client.at(0).error, "HTTP 404 Not Found");
}

TEST(ProbeTest, NonMultipartIsAnError) {
  ServerStyle style;
  style.content_type = "text/html";
  FakeServer server(style);
  ASSERT_TRUE(server.ok());
  const ProbeReport report = RunProbe({server.Url(), 1.0, 1}, nullptr);
  EXPECT_EQ(report.failed_clients, 1);
  EXPECT_NE(report.per_client.at(0).error.find("not a multipart stream"), std::string::npos)
      << report.per_client.at(0).error;
}

TEST(ProbeTest, SilentServerIsAnErrorAndDoesNotHang) {
  ServerStyle style;
  style.respond = false;
  FakeServer server(style);
  ASSERT_TRUE(server.ok());
  const int64_t start = MonotonicMicros();
  const ProbeReport report = RunProbe({server.Url(), 0.5, 1}, nullptr);
  EXPECT_LT(MonotonicMicros() - start, 1'500'000);
  EXPECT_EQ(report.failed_clients, 1);
  EXPECT_EQ(report.per_client.at(0).error, "no response before the end of the run");
}

TEST(ProbeTest, StreamEndingEarlyIsAnError) {
  ServerStyle style;
  style.seconds = 0.4;
  FakeServer server(style);
  ASSERT_TRUE(server.ok());
  const ProbeReport report = RunProbe({server.Url(), 1.5, 1}, nullptr);
  EXPECT_EQ(report.failed_clients, 1);
  const ClientReport& c = report.per_client.at(0);
  EXPECT_EQ(c.error, "server closed the connection");
  EXPECT_GT(c.frames, 0u);
  EXPECT_GT(c.fps, 1.0);  // measured up to the close, not to the deadline
  EXPECT_EQ(report.latency_ms.count, c.frames);
}

TEST(ProbeTest, StopFlagEndsTheRunEarly) {
  ServerStyle style;
  style.seconds = 10;
  FakeServer server(style);
  ASSERT_TRUE(server.ok());
  std::atomic<bool> stop{false};
  std::thread stopper([&stop] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    stop = true;
  });
  const int64_t start = MonotonicMicros();
  const ProbeReport report = RunProbe({server.Url(), 30.0, 2}, &stop);
  const int64_t elapsed = MonotonicMicros() - start;
  stopper.join();
  EXPECT_LT(elapsed, 1'500'000);
  EXPECT_EQ(report.failed_clients, 0);  // being stopped is not an error
  EXPECT_GT(report.frames, 0u);
}

TEST(ProbeTest, NarrowFramesHaveNoStrip) {
  ServerStyle style;
  style.width = 256;
  style.height = 192;
  FakeServer server(style);
  ASSERT_TRUE(server.ok());
  const ProbeReport report = RunProbe({server.Url(), 0.5, 1}, nullptr);
  EXPECT_EQ(report.failed_clients, 0);
  EXPECT_GT(report.frames, 0u);
  EXPECT_EQ(report.no_strip, report.frames);
  EXPECT_EQ(report.latency_ms.count, 0u);
}

TEST(ProbeTest, BadOptionsFailEveryClientWithoutThrowing) {
  ProbeReport report = RunProbe({"ftp://127.0.0.1/x", 1.0, 3}, nullptr);
  EXPECT_EQ(report.failed_clients, 3);
  ASSERT_EQ(report.per_client.size(), 3u);
  for (const auto& c : report.per_client) EXPECT_NE(c.error.find("bad URL"), std::string::npos);
  report = RunProbe({"http://127.0.0.1:1/", -1.0, 1}, nullptr);
  EXPECT_EQ(report.failed_clients, 1);
  EXPECT_NE(report.per_client.at(0).error.find("seconds"), std::string::npos);
  report = RunProbe({"http://127.0.0.1:1/", 1.0, 0}, nullptr);
  EXPECT_EQ(report.failed_clients, 1);
  EXPECT_NE(report.per_client.at(0).error.find("clients"), std::string::npos);
}

TEST(ProbeOptionsTest, CheckOptionsNeverShowsTheSecret) {
  const std::string problem = CheckOptions({"http://u:hunter2@h:0/?token=s3cret", 5.0, 1});
  EXPECT_NE(problem, "");
  EXPECT_EQ(problem.find("hunter2"), std::string::npos) << problem;
  EXPECT_EQ(problem.find("s3cret"), std::string::npos) << problem;
}

TEST(ProbeOptionsTest, CheckOptions) {
  EXPECT_EQ(CheckOptions({"http://127.0.0.1:8080/", 5.0, 1}), "");
  EXPECT_NE(CheckOptions({"http://127.0.0.1:8080/", 0.0, 1}), "");
  EXPECT_NE(CheckOptions({"http://127.0.0.1:8080/", std::nan(""), 1}), "");
  EXPECT_NE(CheckOptions({"http://127.0.0.1:8080/", 5.0, kMaxClients + 1}), "");
  EXPECT_NE(CheckOptions({"nope", 5.0, 1}), "");
}

ProbeReport SampleReport() {
  ProbeReport r;
  r.url = "http://127.0.0.1:8080/stream.mjpg";
  r.seconds = 5.0;
  r.clients = 2;
  r.frames = 149;
  r.no_strip = 1;
  r.fps_min = r.fps_median = r.fps_max = 29.8;
  r.latency_ms = {148, 12.3456, 15.0, 20.0, 25.0, 13.0};
  r.per_client = {{149, 0, 29.8, ""}, {0, 0, 0, "connect to 127.0.0.1:8080: Connection refused"}};
  r.failed_clients = 1;
  return r;
}

TEST(ProbeReportTest, JsonHasExactlyTheAgreedKeys) {
  const nlohmann::json j = ToJson(SampleReport());
  std::vector<std::string> keys;
  for (const auto& [key, value] : j.items()) keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(keys,
            (std::vector<std::string>{"clients", "failed_clients", "fps", "frames", "latency_ms",
                                      "no_strip", "per_client", "seconds", "url"}));
  EXPECT_EQ(j["url"], "http://127.0.0.1:8080/stream.mjpg");
  EXPECT_EQ(j["seconds"], 5.0);
  EXPECT_EQ(j["clients"], 2);
  EXPECT_EQ(j["frames"], 149);
  EXPECT_EQ(j["no_strip"], 1);
  EXPECT_EQ(j["failed_clients"], 1);
  EXPECT_EQ(j["fps"].size(), 3u);
  EXPECT_EQ(j["fps"]["median"], 29.8);
  EXPECT_EQ(j["latency_ms"].size(), 6u);
  EXPECT_EQ(j["latency_ms"]["count"], 148);
  EXPECT_EQ(j["latency_ms"]["p50"], 12.346);
  for (const char* key : {"p90", "p99", "max", "mean"}) EXPECT_TRUE(j["latency_ms"].contains(key));
  ASSERT_EQ(j["per_client"].size(), 2u);
  EXPECT_EQ(j["per_client"][0].size(), 4u);
  EXPECT_EQ(j["per_client"][0]["frames"], 149);
  EXPECT_EQ(j["per_client"][0]["fps"], 29.8);
  EXPECT_EQ(j["per_client"][0]["no_strip"], 0);
  EXPECT_EQ(j["per_client"][0]["error"], "");
  EXPECT_EQ(j["per_client"][1]["error"], "connect to 127.0.0.1:8080: Connection refused");
}

TEST(ProbeReportTest, TextMentionsTheFigures) {
  const std::string text = FormatText(SampleReport());
  for (const char* fragment : {"http://127.0.0.1:8080/stream.mjpg", "149", "29.8", "p50 12.3",
                               "p99 20.0", "Connection refused", "failed clients: 1"}) {
    EXPECT_NE(text.find(fragment), std::string::npos) << fragment << "\n" << text;
  }
  ProbeReport many = SampleReport();
  many.clients = 20;
  many.per_client.assign(20, {10, 0, 2.0, "HTTP 503 Busy"});
  many.failed_clients = 20;
  const std::string grouped = FormatText(many);
  EXPECT_NE(grouped.find("20 x HTTP 503 Busy"), std::string::npos) << grouped;
}

}  // namespace
}  // namespace freshframe::probe
