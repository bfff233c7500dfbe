// MakeMjpegSource against an in-test MJPEG server on 127.0.0.1 (port 0):
// frames and their capture stamps, newest-only reading, the ways a stream or
// a server can fail, and the stop token.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "capture/capture.h"
#include "core/clock.h"
#include "core/stage_thread.h"
#include "core/timecode.h"
#include "encode/encode.h"

namespace freshframe::capture {
namespace {

constexpr std::string_view kStreamHead =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: multipart/x-mixed-replace; boundary=frame\r\n"
    "Cache-Control: no-cache\r\n\r\n";

bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// A JPEG of a small, mostly flat picture (small parts keep a burst inside
// the loopback socket buffers) carrying the timecode strip of `stamp_us`, or
// none if `stamp_us` is 0.
std::string Jpeg(int64_t stamp_us, int width = 320, int height = 240) {
  cv::Mat image(height, width, CV_8UC3, cv::Scalar(90, 120, 150));
  if (stamp_us != 0) timecode::Write(image, stamp_us);
  encode::JpegEncoder encoder(80);
  auto jpeg = encoder.Encode(image);
  EXPECT_TRUE(jpeg.ok());
  return jpeg ? std::string(jpeg->begin(), jpeg->end()) : std::string();
}

std::string Part(const std::string& jpeg) {
  return "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " + std::to_string(jpeg.size()) +
         "\r\nX-Frame-Timestamp: 1.000000\r\n\r\n" + jpeg + "\r\n";
}

// One-connection-at-a-time HTTP server on 127.0.0.1. For each connection it
// reads the request head and hands the socket to `script`, then closes it.
// The script may wait on its stop token, which is requested when the server
// is destroyed, so no thread outlives a test.
class FakeServer {
 public:
  using Script = std::function<void(int fd, std::stop_token stop)>;

  explicit FakeServer(Script script) : script_(std::move(script)) {
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    auto* sa = reinterpret_cast<sockaddr*>(&address);
    EXPECT_EQ(bind(listener_, sa, sizeof address), 0);
    EXPECT_EQ(listen(listener_, 4), 0);
    socklen_t length = sizeof address;
    EXPECT_EQ(getsockname(listener_, sa, &length), 0);
    port_ = ntohs(address.sin_port);
    thread_ = std::jthread([this](std::stop_token stop) { Serve(stop); });
  }
  ~FakeServer() {
    thread_.request_stop();
    thread_.join();
    close(listener_);
  }
  FakeServer(const FakeServer&) = delete;
  FakeServer& operator=(const FakeServer&) = delete;

  std::string Url(const std::string& path = "/stream.mjpg") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::string request() const {
    std::lock_guard lock(mutex_);
    return request_;
  }

 private:
  void Serve(std::stop_token stop) {
    while (!stop.stop_requested()) {
      pollfd p{listener_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      const int fd = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      std::string head;
      char buffer[4096];
      while (head.find("\r\n\r\n") == std::string::npos && !stop.stop_requested()) {
        pollfd c{fd, POLLIN, 0};
        if (poll(&c, 1, 20) <= 0) continue;
        const ssize_t n = recv(fd, buffer, sizeof buffer, 0);
        if (n <= 0) break;
        head.append(buffer, static_cast<size_t>(n));
      }
      {
        std::lock_guard lock(mutex_);
        request_ = head;
      }
      script_(fd, stop);
      close(fd);
    }
  }

  Script script_;
  int listener_ = -1;
  uint16_t port_ = 0;
  mutable std::mutex mutex_;
  std::string request_;
  std::jthread thread_;  // last: joined before the members it uses go
};

// Blocks the server thread until the test ends (or `seconds` pass).
void Hold(std::stop_token stop, double seconds = 20) {
  SleepUntil(std::chrono::steady_clock::now() +
                 std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                     std::chrono::duration<double>(seconds)),
             stop);
}

std::unique_ptr<FrameSource> Source(const std::string& url, const std::string& token = {}) {
  auto spec = ParseSourceSpec(url);
  EXPECT_TRUE(spec.ok());
  EXPECT_EQ(spec->kind, SourceKind::kMjpegHttp);
  SourceOptions options;
  options.token = token;
  return MakeMjpegSource(*spec, options);
}

// "http://USERINFO@127.0.0.1:PORT/..." from the server's URL.
std::string WithUserInfo(const std::string& url, const std::string& userinfo) {
  return "http://" + userinfo + "@" + url.substr(std::string_view("http://").size());
}

TEST(MjpegSourceTest, FramesCarryTheStripStampAsCaptureTime) {
  std::vector<int64_t> stamps;
  const int64_t base = MonotonicMicros();
  for (int i = 0; i < 3; ++i) stamps.push_back(base - 50'000 + i * 1000);
  // The next part goes out only once the last one was read: one part per
  // Read, however slowly the test runs (newest-only would skip the others).
  std::atomic<size_t> reads{0};
  FakeServer server([&](int fd, std::stop_token stop) {
    SendAll(fd, kStreamHead);
    for (size_t i = 0; i < stamps.size(); ++i) {
      while (reads.load() < i && !stop.stop_requested()) Hold(stop, 0.005);
      SendAll(fd, Part(Jpeg(stamps[i])));
    }
    Hold(stop);
  });
  auto source = Source(server.Url("/"));
  EXPECT_EQ(source->width(), 0);
  EXPECT_TRUE(source->reconnects());
  EXPECT_EQ(source->Describe(), server.Url("/"));
  auto opened = source->Open();
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  // "/" means the conventional stream path, as for the probe.
  EXPECT_EQ(server.request().rfind("GET /stream.mjpg HTTP/1.1\r\n", 0), 0u) << server.request();
  EXPECT_NE(server.request().find("\r\nHost: 127.0.0.1:"), std::string::npos);

  std::stop_source stop;
  uint64_t last_sequence = 0;
  for (const int64_t stamp : stamps) {
    ReadResult result = source->Read(stop.get_token());
    ++reads;
    ASSERT_EQ(result.status, ReadResult::Status::kFrame) << result.message;
    const Frame& frame = *result.frame;
    EXPECT_EQ(frame.meta.stamps.capture_us, stamp);  // not X-Frame-Timestamp, not receipt
    EXPECT_GT(frame.meta.sequence, last_sequence);
    last_sequence = frame.meta.sequence;
    EXPECT_EQ(frame.meta.format, PixelFormat::kBgr24);
    EXPECT_EQ(frame.meta.width, 320);
    EXPECT_EQ(frame.meta.height, 240);
    EXPECT_EQ(frame.image.type(), CV_8UC3);
    EXPECT_EQ(frame.image.cols, 320);
  }
  EXPECT_EQ(last_sequence, 3u);
  EXPECT_EQ(source->width(), 320);
  EXPECT_EQ(source->height(), 240);
  source->Close();
}

TEST(MjpegSourceTest, WithoutAStripTheStampIsTheReceiptTime) {
  FakeServer server([](int fd, std::stop_token stop) {
    SendAll(fd, kStreamHead);
    SendAll(fd, Part(Jpeg(0)));
    Hold(stop);
  });
  auto source = Source(server.Url());
  const int64_t before = MonotonicMicros();
  ASSERT_TRUE(source->Open().ok());
  std::stop_source stop;
  ReadResult result = source->Read(stop.get_token());
  const int64_t after = MonotonicMicros();
  ASSERT_EQ(result.status, ReadResult::Status::kFrame) << result.message;
  EXPECT_GE(result.frame->meta.stamps.capture_us, before);
  EXPECT_LE(result.frame->meta.stamps.capture_us, after);
}

TEST(MjpegSourceTest, ReturnsOnlyTheNewestOfABurst) {
  const int64_t base = MonotonicMicros() - 100'000;
  std::atomic<bool> sent{false};
  FakeServer server([&](int fd, std::stop_token stop) {
    SendAll(fd, kStreamHead);
    std::string burst;
    for (int i = 0; i < 5; ++i) burst += Part(Jpeg(base + i * 1000));
    SendAll(fd, burst);
    sent.store(true);
    Hold(stop);
  });
  auto source = Source(server.Url());
  ASSERT_TRUE(source->Open().ok());
  while (!sent.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // all of it in our socket
  std::stop_source stop;
  ReadResult result = source->Read(stop.get_token());
  ASSERT_EQ(result.status, ReadResult::Status::kFrame) << result.message;
  EXPECT_EQ(result.frame->meta.stamps.capture_us, base + 4000);
  // The four older parts show as a gap in the numbering (the grabber counts
  // them as skipped).
  EXPECT_EQ(result.frame->meta.sequence, 5u);
}

TEST(MjpegSourceTest, ServerClosingIsAnErrorAfterTheLastFrame) {
  FakeServer server([](int fd, std::stop_token) {
    SendAll(fd, kStreamHead);
    SendAll(fd, Part(Jpeg(MonotonicMicros())));
  });
  auto source = Source(server.Url());
  ASSERT_TRUE(source->Open().ok());
  std::stop_source stop;
  ReadResult first = source->Read(stop.get_token());
  EXPECT_EQ(first.status, ReadResult::Status::kFrame) << first.message;
  ReadResult second = source->Read(stop.get_token());
  EXPECT_EQ(second.status, ReadResult::Status::kError);
  EXPECT_NE(second.message.find("closed the connection"), std::string::npos) << second.message;
  EXPECT_NE(second.message.find(server.Url()), std::string::npos) << second.message;

  // The grabber closes and reopens: the server takes the next connection.
  source->Close();
  ASSERT_TRUE(source->Open().ok());
  ReadResult again = source->Read(stop.get_token());
  ASSERT_EQ(again.status, ReadResult::Status::kFrame) << again.message;
  EXPECT_GT(again.frame->meta.sequence, first.frame->meta.sequence);  // never repeats
}

TEST(MjpegSourceTest, ChunkedBodyIsDecoded) {
  const int64_t stamp = MonotonicMicros() - 20'000;
  FakeServer server([&](int fd, std::stop_token stop) {
    SendAll(fd,
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
            "Content-Type: multipart/x-mixed-replace;boundary=\"frame\"\r\n\r\n");
    const std::string body = Part(Jpeg(stamp));
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", body.size() / 2);
    SendAll(fd, size + body.substr(0, body.size() / 2) + "\r\n");
    std::snprintf(size, sizeof size, "%zx\r\n", body.size() - body.size() / 2);
    SendAll(fd, size + body.substr(body.size() / 2) + "\r\n");
    Hold(stop);
  });
  auto source = Source(server.Url());
  ASSERT_TRUE(source->Open().ok());
  std::stop_source stop;
  ReadResult result = source->Read(stop.get_token());
  ASSERT_EQ(result.status, ReadResult::Status::kFrame) << result.message;
  EXPECT_EQ(result.frame->meta.stamps.capture_us, stamp);
}

TEST(MjpegSourceTest, OpenNamesTheUrlAndWhatCameBack) {
  {
    FakeServer server([](int fd, std::stop_token) {
      SendAll(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    });
    auto opened = Source(server.Url("/nope.mjpg"))->Open();
    ASSERT_FALSE(opened.ok());
    EXPECT_NE(opened.error().message.find(server.Url("/nope.mjpg")), std::string::npos)
        << opened.error().message;
    EXPECT_NE(opened.error().message.find("404"), std::string::npos) << opened.error().message;
  }
  {
    FakeServer server([](int fd, std::stop_token) {
      SendAll(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello");
    });
    auto opened = Source(server.Url())->Open();
    ASSERT_FALSE(opened.ok());
    EXPECT_NE(opened.error().message.find(server.Url()), std::string::npos);
    EXPECT_NE(opened.error().message.find("not an MJPEG stream"), std::string::npos)
        << opened.error().message;
    EXPECT_NE(opened.error().message.find("text/html"), std::string::npos);
  }
}

TEST(MjpegSourceTest, ClosedPortIsAnOpenError) {
  // A port that was just free: bound, never listened on, closed.
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  auto* sa = reinterpret_cast<sockaddr*>(&address);
  ASSERT_EQ(bind(fd, sa, sizeof address), 0);
  socklen_t length = sizeof address;
  ASSERT_EQ(getsockname(fd, sa, &length), 0);
  close(fd);
  const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port)) + "/x";
  auto source = Source(url);
  auto opened = source->Open();
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.error().message.find(url), std::string::npos) << opened.error().message;
  EXPECT_NE(opened.error().message.find("refused"), std::string::npos) << opened.error().message;
  std::stop_source stop;
  EXPECT_EQ(source->Read(stop.get_token()).status, ReadResult::Status::kError);
}

TEST(MjpegSourceTest, StopIsHonouredPromptlyAndAStallFails) {
  FakeServer server([](int fd, std::stop_token stop) {
    SendAll(fd, kStreamHead);
    Hold(stop);  // then nothing
  });
  auto source = Source(server.Url());
  ASSERT_TRUE(source->Open().ok());

  std::stop_source stop;
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    stop.request_stop();
  });
  const auto start = std::chrono::steady_clock::now();
  ReadResult stopped = source->Read(stop.get_token());
  const auto took = std::chrono::steady_clock::now() - start;
  stopper.join();
  EXPECT_EQ(stopped.status, ReadResult::Status::kStopped);
  EXPECT_LT(took, std::chrono::milliseconds(200 + 500));

  // Still nothing: about 2 s after the last byte the stream counts as dead.
  std::stop_source no_stop;
  ReadResult stalled = source->Read(no_stop.get_token());
  const auto total = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(stalled.status, ReadResult::Status::kError);
  EXPECT_NE(stalled.message.find("no data from " + server.Url() + " for 2 s"), std::string::npos)
      << stalled.message;
  EXPECT_GT(total, std::chrono::milliseconds(1800));
  EXPECT_LT(total, std::chrono::milliseconds(3500));
}

TEST(MjpegSourceTest, PartsThatAreNotJpegFailTheStream) {
  FakeServer server([](int fd, std::stop_token stop) {
    SendAll(fd, kStreamHead);
    // Enough of them, spaced, for several Reads' worth of bad parts.
    for (int i = 0; i < 50 && !stop.stop_requested(); ++i) {
      SendAll(fd, "--frame\r\nContent-Length: 4\r\n\r\nnope\r\n");
      Hold(stop, 0.02);
    }
    Hold(stop);
  });
  auto source = Source(server.Url());
  ASSERT_TRUE(source->Open().ok());
  std::stop_source stop;
  ReadResult result = source->Read(stop.get_token());
  EXPECT_EQ(result.status, ReadResult::Status::kError);
  EXPECT_NE(result.message.find("not JPEG"), std::string::npos) << result.message;
}

// Credentials go upstream as headers (user info as Basic, the token as
// Bearer), never in the request target, and never in what the source shows.
TEST(MjpegSourceTest, SendsUserInfoAsBasicCredentials) {
  FakeServer server([](int fd, std::stop_token stop) {
    SendAll(fd, kStreamHead);
    SendAll(fd, Part(Jpeg(0)));
    Hold(stop);
  });
  const std::string url = WithUserInfo(server.Url(), "alice:hunter2");
  auto source = Source(url);
  auto opened = source->Open();
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  const std::string request = server.request();
  EXPECT_EQ(request.rfind("GET /stream.mjpg HTTP/1.1\r\n", 0), 0u) << request;
  // base64("alice:hunter2")
  EXPECT_NE(request.find("\r\nAuthorization: Basic YWxpY2U6aHVudGVyMg==\r\n"), std::string::npos)
      << request;
  EXPECT_EQ(request.find("hunter2"), std::string::npos) << request;
  EXPECT_EQ(source->Describe(), WithUserInfo(server.Url(), "alice:***"));
  std::stop_source stop;
  EXPECT_EQ(source->Read(stop.get_token()).status, ReadResult::Status::kFrame);
}

TEST(MjpegSourceTest, SendsTheTokenAsBearer) {
  FakeServer server([](int fd, std::stop_token stop) {
    SendAll(fd, kStreamHead);
    Hold(stop);
  });
  auto source = Source(server.Url(), "T0ken-xyz");
  ASSERT_TRUE(source->Open().ok());
  EXPECT_NE(server.request().find("\r\nAuthorization: Bearer T0ken-xyz\r\n"), std::string::npos)
      << server.request();
  EXPECT_EQ(source->Describe(), server.Url());
}

TEST(MjpegSourceTest, MessagesNeverShowCredentials) {
  FakeServer server([](int fd, std::stop_token) {
    SendAll(fd, "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n");
  });
  const std::string url =
      WithUserInfo(server.Url("/stream.mjpg?token=s3cret&width=320"), "bob:hunter2");
  auto source = Source(url);
  EXPECT_EQ(source->Describe().find("hunter2"), std::string::npos) << source->Describe();
  EXPECT_EQ(source->Describe().find("s3cret"), std::string::npos) << source->Describe();
  auto opened = source->Open();
  ASSERT_FALSE(opened.ok());
  const std::string& message = opened.error().message;
  EXPECT_NE(message.find("401"), std::string::npos) << message;
  EXPECT_NE(message.find("bob:***@"), std::string::npos) << message;
  EXPECT_NE(message.find("token=***"), std::string::npos) << message;
  EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
  EXPECT_EQ(message.find("s3cret"), std::string::npos) << message;
  std::stop_source stop;
  const ReadResult failed = source->Read(stop.get_token());
  EXPECT_EQ(failed.message.find("hunter2"), std::string::npos) << failed.message;
}

TEST(MjpegSourceTest, TokenOptionIsCheckedWhereItCannotApply) {
  SourceOptions options;
  options.token = "abc";
  options.spec = "http://127.0.0.1:1/stream.mjpg";
  EXPECT_TRUE(MakeSource(options).ok());
  options.spec = "http://u:p@127.0.0.1:1/stream.mjpg";  // which one would it send?
  EXPECT_FALSE(MakeSource(options).ok());
  options.spec = "pattern";
  EXPECT_FALSE(MakeSource(options).ok());
  options.spec = "http://127.0.0.1:1/stream.mjpg";
  options.token = "a\r\nX-Evil: 1";  // would end the header early
  auto bad = MakeSource(options);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message.find("Evil"), std::string::npos) << bad.error().message;
}

TEST(MjpegSourceTest, BadSpecErrorsAreRedacted) {
  auto bad = ParseSourceSpec("htp://u:hunter2@h/?token=s3cret");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message.find("hunter2"), std::string::npos) << bad.error().message;
  EXPECT_EQ(bad.error().message.find("s3cret"), std::string::npos) << bad.error().message;
}

}  // namespace
}  // namespace freshframe::capture
