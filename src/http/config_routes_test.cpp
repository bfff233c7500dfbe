// GET /api/clock and GET/POST /api/config through a real Server (loopback),
// with LiveSettings instead of a pipeline: status codes, headers, body limits,
// keep-alive, and that a refused request changes nothing.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "http/http.h"
#include "http/loopback_test_util.h"

namespace freshframe::http {
namespace {

// One HTTP/1.1 response: status, raw head, body (by Content-Length).
struct Reply {
  int status = 0;
  std::string head;
  std::string body;

  bool HasHeader(std::string_view line) const { return head.find(line) != std::string::npos; }
  nlohmann::json Json() const { return nlohmann::json::parse(body, nullptr, false); }
};

// A loopback connection that can carry several requests (keep-alive).
class Connection {
 public:
  explicit Connection(uint16_t port) {
    const LoopbackSocket s = ConnectLoopback(port);
    fd_ = s.fd;
    connected_ = s.connected;
  }
  ~Connection() { close(fd_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool Send(std::string_view data) {
    return connected_ &&
           ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
  }

  // The next response; status 0 if none came complete. `head_only` for HEAD.
  Reply Read(bool head_only = false) {
    Reply reply;
    size_t end = std::string::npos;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return reply;
    }
    reply.head = buffer_.substr(0, end + 4);
    buffer_.erase(0, end + 4);
    size_t length = 0;
    if (const auto at = reply.head.find("Content-Length: "); at != std::string::npos) {
      length = std::stoul(reply.head.substr(at + 16));
    }
    if (head_only) length = 0;
    while (buffer_.size() < length) {
      if (!Fill()) return reply;
    }
    reply.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    reply.status = std::stoi(reply.head.substr(9, 3));
    return reply;
  }

  // Whether the server closed the connection (reads EOF within the timeout).
  bool Closed() { return buffer_.empty() && !Fill(); }

 private:
  bool Fill() {
    char chunk[4096];
    const ssize_t n = recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buffer_;
};

std::string Post(std::string_view body, std::string_view type = "application/json",
                 std::string_view extra = "") {
  std::string request = "POST /api/config HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!type.empty()) request.append("Content-Type: ").append(type).append("\r\n");
  request.append(extra);
  request.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n\r\n");
  request.append(body);
  return request;
}

constexpr std::string_view kGetConfig = "GET /api/config HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

class ConfigRoutesTest : public ::testing::Test {
 protected:
  void Start(ConfigDeps config, ServerOptions options = {}) {
    options.port = 0;
    options.threads = 2;
    ServerDeps deps{frames_,
                    demand_,
                    metrics_,
                    "<html></html>",
                    [] {
                      return nlohmann::json{{"quality", 85}, {"overlay", "latest"}};
                    },
                    nullptr};
    deps.config = std::move(config);
    auto server = Server::Start(options, std::move(deps));
    ASSERT_TRUE(server.ok()) << server.error().message;
    server_ = std::move(server).value();
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }

  ConfigDeps RunConfig() {
    ConfigDeps config;
    config.settings = &settings_;
    config.detector_spec = "faces";
    return config;
  }

  Reply Request(std::string_view request, bool head_only = false) {
    Connection connection(server_->port());
    EXPECT_TRUE(connection.Send(request));
    return connection.Read(head_only);
  }

  LatestSlot<encode::EncodedFramePtr> frames_;
  Demand demand_;
  Metrics metrics_;
  LiveSettings settings_{{true, OverlayMode::kLatest, 85, false}};
  std::unique_ptr<Server> server_;
};

TEST_F(ConfigRoutesTest, ClockIsTheServersMonotonicClockAndKeepsTheConnection) {
  Start(RunConfig());
  Connection connection(server_->port());
  for (int i = 0; i < 3; ++i) {  // NTP-style clients ask several times on one connection
    const int64_t before = MonotonicMicros();
    ASSERT_TRUE(connection.Send("GET /api/clock HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    const Reply reply = connection.Read();
    const int64_t after = MonotonicMicros();
    ASSERT_EQ(reply.status, 200) << reply.head;
    EXPECT_TRUE(reply.HasHeader("Content-Type: application/json\r\n"));
    EXPECT_TRUE(reply.HasHeader("Cache-Control: no-store\r\n"));
    const nlohmann::json clock = reply.Json();
    ASSERT_TRUE(clock.is_object()) << reply.body;
    EXPECT_EQ(clock.size(), 1U);
    const int64_t now = clock["now_us"].get<int64_t>();
    EXPECT_GE(now, before);
    EXPECT_LE(now, after);
  }
  const Reply head = [&] {
    EXPECT_TRUE(connection.Send("HEAD /api/clock HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    return connection.Read(true);
  }();
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.HasHeader("Content-Length: "));
}

TEST_F(ConfigRoutesTest, GetShowsTheSettingsWithoutCors) {
  Start(RunConfig());
  const Reply reply = Request(kGetConfig);
  ASSERT_EQ(reply.status, 200) << reply.head;
  EXPECT_TRUE(reply.HasHeader("Content-Type: application/json\r\n"));
  EXPECT_FALSE(reply.HasHeader("Access-Control-Allow-Origin"));
  EXPECT_EQ(reply.Json(), nlohmann::json::parse(R"({"detector": true, "detector_spec": "faces",
      "overlay": "latest", "quality": 85, "mirror": false,
      "available": ["detector", "overlay", "quality", "mirror"]})"));
  EXPECT_EQ(Request("HEAD /api/config HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", true).status, 200);
}

TEST_F(ConfigRoutesTest, PostAppliesAndAnswersTheNewSettings) {
  Start(RunConfig());
  const Reply reply = Request(Post(R"({"quality": 40, "mirror": true, "overlay": "inferred"})",
                                   "application/json; charset=utf-8"));
  ASSERT_EQ(reply.status, 200) << reply.head << reply.body;
  EXPECT_FALSE(reply.HasHeader("Access-Control-Allow-Origin"));
  EXPECT_EQ(reply.Json()["quality"], 40);
  EXPECT_EQ(reply.Json()["overlay"], "inferred");
  EXPECT_EQ(settings_.Get(), (SettingsValues{true, OverlayMode::kInferred, 40, true}));

  // /api/stats and /metrics show the live values.
  const Reply stats = Request("GET /api/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  ASSERT_EQ(stats.status, 200);
  const nlohmann::json json = stats.Json();
  EXPECT_EQ(json["quality"], 40);
  EXPECT_EQ(json["overlay"], "inferred");
  EXPECT_EQ(json["detector_enabled"], true);
  EXPECT_EQ(json["config"]["mirror"], true);
  const Reply metrics = Request("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  EXPECT_NE(metrics.body.find("\nfreshframe_jpeg_quality{stream=\"default\"} 40\n"),
            std::string::npos);
  EXPECT_NE(metrics.body.find("\nfreshframe_mirror{stream=\"default\"} 1\n"), std::string::npos);
}

TEST_F(ConfigRoutesTest, RefusedRequestsChangeNothingAndKeepTheConnection) {
  Start(RunConfig());
  const SettingsValues before = settings_.Get();
  Connection connection(server_->port());
  const struct {
    std::string request;
    int status;
  } cases[] = {
      {Post(R"({"quality": 40})", ""), 415},
      {Post(R"({"quality": 40})", "text/plain"), 415},
      {Post(R"({"quality": 40})", "application/x-www-form-urlencoded"), 415},
      {Post(R"({"quality": 40)"), 400},
      {Post(R"({})"), 400},
      {Post(R"([])"), 400},
      {Post(R"({"quality": 40, "nope": 1})"), 400},
      {Post(R"({"quality": "40"})"), 400},
      {Post(R"({"quality": 0})"), 400},
      {Post(R"({"quality": 101})"), 400},
      {Post(R"({"quality": 40, "detector": 1})"), 400},
      {Post(R"({"overlay": "newest"})"), 400},
      // Regressions: each threw out of the handler, ending the server's I/O
      // thread: error messages quoting bytes that are not UTF-8 (the
      // Content-Type; nlohmann's parse error), and a number beyond a double.
      {Post(R"({"quality": 40})", "text/\xff"), 415},
      {Post("\xff"), 400},
      {Post(R"({"quality": 1e999})"), 400},  // nlohmann's out_of_range, not a parse_error
  };
  for (const auto& c : cases) {
    ASSERT_TRUE(connection.Send(c.request));
    const Reply reply = connection.Read();
    EXPECT_EQ(reply.status, c.status) << c.request << "\n" << reply.body;
    EXPECT_TRUE(reply.HasHeader("Content-Type: application/json\r\n")) << reply.head;
    const nlohmann::json error = reply.Json();
    EXPECT_TRUE(error.is_object() && error.contains("error")) << reply.body;
    EXPECT_EQ(settings_.Get(), before) << c.request;
  }
  ASSERT_TRUE(connection.Send(kGetConfig));  // the same connection still works
  EXPECT_EQ(connection.Read().status, 200);
}

TEST_F(ConfigRoutesTest, BodiesOverFourKibAreRefusedBeforeTheyAreRead) {
  Start(RunConfig());
  // Declared too large: answered at once, though the body never comes.
  Connection connection(server_->port());
  ASSERT_TRUE(connection.Send(
      "POST /api/config HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "Content-Length: 5000\r\n\r\n"));
  const Reply reply = connection.Read();
  EXPECT_EQ(reply.status, 413) << reply.head;
  EXPECT_NE(reply.Json().value("error", "").find("4096"), std::string::npos) << reply.body;
  EXPECT_TRUE(connection.Closed());

  // A 5 KiB body sent in full, and one sent chunked.
  const std::string padded = R"({"quality": 40})" + std::string(5 * 1024, ' ');
  EXPECT_EQ(Request(Post(padded)).status, 413);
  std::string chunked =
      "POST /api/config HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 5; ++i) chunked.append("400\r\n").append(1024, ' ').append("\r\n");
  chunked.append("0\r\n\r\n");
  EXPECT_EQ(Request(chunked).status, 413);
  EXPECT_EQ(settings_.quality(), 85);

  // Exactly the limit is fine; other routes keep the general limit.
  const std::string at_limit = R"({"quality": 41})" + std::string(4096 - 15, ' ');
  ASSERT_EQ(at_limit.size(), 4096U);
  EXPECT_EQ(Request(Post(at_limit)).status, 200);
  EXPECT_EQ(settings_.quality(), 41);
  const std::string eight_kib(8 * 1024, 'x');
  EXPECT_EQ(Request("GET /api/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 8192\r\n\r\n" +
                    eight_kib)
                .status,
            200);
}

TEST_F(ConfigRoutesTest, OtherMethodsAre405WithTheMethodsAllowed) {
  Start(RunConfig());
  for (const char* method : {"PUT", "DELETE", "PATCH"}) {
    const Reply reply =
        Request(std::string(method) +
                " /api/config HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(reply.status, 405) << method;
    EXPECT_TRUE(reply.HasHeader("Allow: GET, HEAD, POST\r\n")) << reply.head;
    EXPECT_TRUE(reply.Json().contains("error")) << reply.body;
  }
  const Reply stats = Request(
      "POST /api/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      "Content-Length: 2\r\n\r\n{}");
  EXPECT_EQ(stats.status, 405) << stats.head;
  EXPECT_TRUE(stats.HasHeader("Allow: GET, HEAD\r\n")) << stats.head;
}

TEST_F(ConfigRoutesTest, KeysThisProcessCannotChangeAreRefused) {
  ConfigDeps serve;
  serve.settings = &settings_;
  serve.unavailable = {{"mirror", "set --mirror on the infer process"}};
  Start(serve);
  const Reply refused = Request(Post(R"({"mirror": true, "quality": 50})"));
  EXPECT_EQ(refused.status, 400);
  EXPECT_NE(refused.Json().value("error", "").find("--mirror on the infer process"),
            std::string::npos)
      << refused.body;
  EXPECT_EQ(settings_.quality(), 85);
  EXPECT_EQ(Request(kGetConfig).Json()["available"],
            nlohmann::json::parse(R"(["detector", "overlay", "quality"])"));
}

TEST_F(ConfigRoutesTest, NeedsCredentialsLikeEveryOtherRoute) {
  ServerOptions options;
  options.token = "s3cret-token-123";
  Start(RunConfig(), options);
  EXPECT_EQ(Request(Post(R"({"quality": 50})")).status, 401);
  EXPECT_EQ(Request("GET /api/clock HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").status, 401);
  EXPECT_EQ(settings_.quality(), 85);
  EXPECT_EQ(Request(Post(R"({"quality": 50})", "application/json",
                         "Authorization: Bearer s3cret-token-123\r\n"))
                .status,
            200);
  EXPECT_EQ(settings_.quality(), 50);
}

TEST_F(ConfigRoutesTest, WithoutSettingsConfigIsNotFound) {
  Start(ConfigDeps{});
  EXPECT_EQ(Request(kGetConfig).status, 404);
  EXPECT_EQ(Request(Post(R"({"quality": 50})")).status, 404);
  EXPECT_EQ(Request("GET /api/clock HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").status, 200);
  EXPECT_FALSE(
      Request("GET /api/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").Json().contains("config"));
}

}  // namespace
}  // namespace freshframe::http
