// The server's "safe to expose" behaviour over real sockets: authentication,
// streaming-client and per-address limits, the request-target limit and the
// whole-request read deadline.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "http/http.h"

namespace freshframe::http {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kToken = "t0k-en";
// "user:pass"
constexpr std::string_view kBasic = "Basic dXNlcjpwYXNz";

// One loopback connection; reads are bounded by poll deadlines.
class Connection {
 public:
  explicit Connection(uint16_t port) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~Connection() { Close(); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  bool Send(std::string_view data) {
    return connected_ &&
           ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
  }

  // Reads until `until` has arrived (if not empty), the peer closes, or
  // `timeout` passes; closed() tells which.
  std::string Read(std::chrono::milliseconds timeout, std::string_view until = {}) {
    std::string out;
    const auto deadline = Clock::now() + timeout;
    while (until.empty() || out.find(until) == std::string::npos) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left <= 0ms) break;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buffer[4096];
      const ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) {
        closed_ = true;
        break;
      }
      out.append(buffer, static_cast<size_t>(n));
    }
    return out;
  }

  // Whether the peer has closed (end of stream or reset), without waiting.
  bool PeerClosed() {
    char byte = 0;
    const ssize_t n = recv(fd_, &byte, 1, MSG_DONTWAIT | MSG_PEEK);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
  }

  bool closed() const { return closed_; }

 private:
  int fd_;
  bool connected_ = false;
  bool closed_ = false;
};

int Status(const std::string& response) {
  if (response.rfind("HTTP/1.1 ", 0) != 0 || response.size() < 12) return 0;
  return std::stoi(response.substr(9, 3));
}

bool HasHeader(const std::string& response, std::string_view line) {
  const std::string head = response.substr(0, response.find("\r\n\r\n"));
  return head.find(std::string("\r\n").append(line).append("\r\n")) != std::string::npos ||
         head.ends_with(std::string("\r\n").append(line));
}

std::string Body(const std::string& response) {
  const auto end = response.find("\r\n\r\n");
  return end == std::string::npos ? std::string() : response.substr(end + 4);
}

std::string GetRequest(std::string_view target, std::string_view headers = {},
                       bool keep_alive = false) {
  std::string request = "GET ";
  request.append(target).append(" HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  if (!keep_alive) request.append("Connection: close\r\n");
  if (!headers.empty()) request.append(headers).append("\r\n");
  return request.append("\r\n");
}

std::string Bearer(std::string_view token) {
  return std::string("Authorization: Bearer ").append(token);
}

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // One frame, and a source that says no more are coming: snapshots and
    // new streams get it at once, so no publisher is needed.
    auto frame = std::make_shared<encode::EncodedFrame>();
    frame->meta.sequence = 1;
    frame->meta.stamps.capture_us = MonotonicMicros();
    frame->bytes = {0xFF, 0xD8, 0xFF, 0xD9};
    frames_.Publish(std::move(frame));
  }

  void StartServer(ServerOptions options) {
    options.bind = "127.0.0.1";
    options.port = 0;
    options.threads = 2;
    options.snapshot_timeout = 2000ms;
    auto server = Server::Start(options, ServerDeps{frames_, demand_, metrics_, "<html>page</html>",
                                                    nullptr, [] { return false; }, nullptr});
    ASSERT_TRUE(server.ok()) << server.error().message;
    server_ = std::move(server).value();
  }

  void StartWithCredentials() {
    ServerOptions options;
    options.token = std::string(kToken);
    options.basic_auth = "user:pass";
    StartServer(options);
  }

  // A whole response to a request on a new connection that closes after it.
  std::string Exchange(const std::string& request) {
    Connection connection(server_->port());
    EXPECT_TRUE(connection.Send(request));
    return connection.Read(5000ms);
  }

  std::string Get(std::string_view target, std::string_view headers = {}) {
    return Exchange(GetRequest(target, headers));
  }

  nlohmann::json Rejected() {
    const std::string stats = Get("/api/stats", Bearer(kToken));
    EXPECT_EQ(Status(stats), 200) << stats.substr(0, 300);
    const auto json = nlohmann::json::parse(Body(stats), nullptr, false);
    return json.is_object() ? json.value("rejected", nlohmann::json::object())
                            : nlohmann::json::object();
  }

  // Opens a stream and reads its response header.
  std::unique_ptr<Connection> OpenStream(std::string_view target, std::string_view headers,
                                         std::string* head) {
    auto connection = std::make_unique<Connection>(server_->port());
    EXPECT_TRUE(connection->Send(GetRequest(target, headers, true)));
    *head = connection->Read(5000ms, "\r\n\r\n");
    return connection;
  }

  LatestSlot<encode::EncodedFramePtr> frames_;
  Demand demand_;
  Metrics metrics_;
  std::unique_ptr<Server> server_;
};

TEST_F(SecurityTest, RejectsMissingOrWrongCredentials) {
  StartWithCredentials();
  const std::vector<std::string> targets = {
      "/",           "/stream.mjpg",    "/snapshot.jpg", "/api/stats", "/api/detections",
      "/api/events", "/?action=stream", "/ws/stream"};
  const std::vector<std::string> wrong = {"",
                                          Bearer("t0k-eN"),
                                          "Authorization: Bearer ",
                                          "Authorization: Basic dXNlcjpwYXNx",  // user:pasq
                                          "Authorization: Basic !!",
                                          "Authorization: t0k-en"};
  int rejected = 0;
  for (const auto& target : targets) {
    for (const auto& headers : wrong) {
      SCOPED_TRACE(target + " with '" + headers + "'");
      const std::string response = Get(target, headers);
      ++rejected;
      ASSERT_EQ(Status(response), 401) << response.substr(0, 300);
      EXPECT_TRUE(HasHeader(response, "WWW-Authenticate: Bearer realm=\"freshframe\""));
      EXPECT_TRUE(HasHeader(response, "WWW-Authenticate: Basic realm=\"freshframe\""));
      EXPECT_TRUE(HasHeader(response, "Cache-Control: no-store"));
      EXPECT_TRUE(HasHeader(response, "Content-Type: application/json"));
      EXPECT_NE(Body(response).find("\"error\""), std::string::npos);
    }
    SCOPED_TRACE(target + " with a wrong ?token=");
    const char separator = target.find('?') == std::string::npos ? '?' : '&';
    EXPECT_EQ(Status(Get(target + separator + "token=t0k-eN")), 401);
    ++rejected;
  }
  // A WebSocket upgrade is refused before the handshake.
  const std::string upgrade = Get("/ws/stream",
                                  "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==");
  EXPECT_EQ(Status(upgrade), 401) << upgrade.substr(0, 300);
  ++rejected;
  EXPECT_EQ(Rejected().value("auth", 0), rejected);
  EXPECT_EQ(demand_.watchers(), 0);  // no stream was opened
}

TEST_F(SecurityTest, AcceptsBearerQueryTokenAndBasic) {
  StartWithCredentials();
  EXPECT_EQ(Status(Get("/", Bearer(kToken))), 200);
  EXPECT_EQ(Status(Get("/?token=t0k-en")), 200);
  EXPECT_EQ(Status(Get("/?token=t0k%2Den")), 200);  // percent-encoded
  EXPECT_EQ(Status(Get("/", std::string("Authorization: ").append(kBasic))), 200);
  const std::string snapshot = Get("/snapshot.jpg?token=t0k-en");
  EXPECT_EQ(Status(snapshot), 200);
  EXPECT_TRUE(HasHeader(snapshot, "Content-Type: image/jpeg"));
  EXPECT_EQ(Status(Get("/snapshot.jpg", std::string("Authorization: ").append(kBasic))), 200);
  EXPECT_EQ(Status(Get("/api/stats", std::string("authorization: bearer ").append(kToken))), 200);
  // No detector in this server: past authentication, that is a 404.
  EXPECT_EQ(Status(Get("/api/detections", Bearer(kToken))), 404);
  std::string head;
  auto bearer_stream = OpenStream("/stream.mjpg", Bearer(kToken), &head);
  EXPECT_EQ(Status(head), 200) << head;
  auto query_stream = OpenStream("/stream.mjpg?t=1&token=t0k-en", "", &head);
  EXPECT_EQ(Status(head), 200) << head;
  auto basic_stream =
      OpenStream("/?action=stream", std::string("Authorization: ").append(kBasic), &head);
  EXPECT_EQ(Status(head), 200) << head;
  // The token never shows in the clients list. (A client is listed once its
  // session has taken over, just after its header went out: wait for it.)
  std::string stats;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  do {
    stats = Get("/api/stats", Bearer(kToken));
  } while (stats.find("/stream.mjpg?t=1&token=***") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(stats.find(kToken), std::string::npos);
  EXPECT_NE(stats.find("/stream.mjpg?t=1&token=***"), std::string::npos);
  EXPECT_EQ(Rejected().value("auth", -1), 0);
}

TEST_F(SecurityTest, HealthCheckNeedsNoCredentials) {
  StartWithCredentials();
  const std::string response = Get("/healthz");
  EXPECT_EQ(Status(response), 200);
  EXPECT_EQ(Body(response), "ok\n");
}

TEST_F(SecurityTest, MaxClientsTurnsAwayNewStreamsOnly) {
  ServerOptions options;
  options.max_clients = 2;
  StartServer(options);
  std::string head;
  auto first = OpenStream("/stream.mjpg", "", &head);
  ASSERT_EQ(Status(head), 200) << head;
  auto second = OpenStream("/stream.mjpg", "", &head);
  ASSERT_EQ(Status(head), 200) << head;
  const std::string third = Get("/stream.mjpg");
  EXPECT_EQ(Status(third), 503) << third;
  EXPECT_TRUE(HasHeader(third, "Retry-After: 1"));
  EXPECT_TRUE(HasHeader(third, "Content-Type: application/json"));
  EXPECT_NE(Body(third).find("\"error\""), std::string::npos);
  EXPECT_EQ(Status(Get("/?action=stream")), 503);
  // Snapshots and stats are still served.
  EXPECT_EQ(Status(Get("/snapshot.jpg")), 200);
  EXPECT_EQ(Rejected().value("max_clients", 0), 2);
  // A place comes free when a stream ends.
  first->Close();
  const auto deadline = Clock::now() + 3s;
  int status = 0;
  std::unique_ptr<Connection> again;
  while (status != 200 && Clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
    again = OpenStream("/stream.mjpg", "", &head);
    status = Status(head);
  }
  EXPECT_EQ(status, 200) << head;
}

TEST_F(SecurityTest, PerAddressCapRefusesExtraConnections) {
  ServerOptions options;
  options.max_connections_per_address = 3;
  StartServer(options);
  // Three kept-alive connections, each answered once (so all are accepted).
  std::vector<std::unique_ptr<Connection>> open;
  for (int i = 0; i < 3; ++i) {
    open.push_back(std::make_unique<Connection>(server_->port()));
    ASSERT_TRUE(open.back()->Send(GetRequest("/healthz", "", true)));
    const std::string response = open.back()->Read(5000ms, "ok\n");
    ASSERT_EQ(Status(response), 200) << response;
  }
  // The fourth gets a 503 (or, if that could not be written, only the close).
  const auto start = Clock::now();
  Connection fourth(server_->port());
  fourth.Send(GetRequest("/healthz"));
  const std::string refused = fourth.Read(5000ms);
  EXPECT_TRUE(fourth.closed());
  EXPECT_LT(Clock::now() - start, 4s);  // refused, not left to the 5 s read timeout
  if (!refused.empty()) {
    EXPECT_EQ(Status(refused), 503) << refused;
    EXPECT_TRUE(HasHeader(refused, "Retry-After: 1"));
  }
  // The open ones are unaffected; closing one frees a place.
  ASSERT_TRUE(open[0]->Send(GetRequest("/healthz", "", true)));
  EXPECT_EQ(Status(open[0]->Read(5000ms, "ok\n")), 200);
  open[2]->Close();
  const auto deadline = Clock::now() + 3s;
  std::string response;
  while (Status(response) != 200 && Clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
    response = Get("/api/stats");
  }
  ASSERT_EQ(Status(response), 200) << response;
  const auto stats = nlohmann::json::parse(Body(response), nullptr, false);
  ASSERT_TRUE(stats.is_object());
  EXPECT_GE(stats["rejected"].value("per_address", 0), 1);
}

TEST_F(SecurityTest, LongRequestTargetGets414) {
  StartServer(ServerOptions{});
  const std::string long_query = "/?x=" + std::string(3000, 'a');
  const std::string response = Get(long_query);
  EXPECT_EQ(Status(response), 414) << response.substr(0, 200);
  // Longer than the whole header limit too: still the target's fault.
  EXPECT_EQ(Status(Get("/?x=" + std::string(9000, 'a'))), 414);
  // At the limit: served (the page ignores unknown parameters).
  EXPECT_EQ(Status(Get("/?x=" + std::string(2048 - 4, 'a'))), 200);
  // A large header that is not the target stays a 431.
  EXPECT_EQ(Status(Get("/", "X-Big: " + std::string(9000, 'b'))), 431);
  EXPECT_EQ(Rejected().value("uri_too_long", 0), 2);
}

TEST_F(SecurityTest, TricklingHeaderHitsTheReadDeadline) {
  ServerOptions options;
  options.read_timeout = 600ms;
  StartServer(options);
  Connection slow(server_->port());
  const auto start = Clock::now();
  ASSERT_TRUE(slow.Send("GET / HTTP/1.1\r\nX-Slow: "));
  // One byte every 100 ms: every single read is quick, but the request as a
  // whole never completes; the deadline is for the whole request.
  bool closed = false;
  while (!closed && Clock::now() - start < 5s) {
    std::this_thread::sleep_for(100ms);
    closed = slow.PeerClosed() || !slow.Send("a");
  }
  const auto took = Clock::now() - start;
  EXPECT_TRUE(closed);
  EXPECT_GE(took, 500ms);
  // A deadline renewed by every byte would never close within the loop's 5 s;
  // 4 s is generous for a loaded machine.
  EXPECT_LT(took, 4s);
}

// After a keep-alive HEAD, an error answered before Handle() (400, 413,
// 431) used to be sent as if for HEAD: Content-Length: N and no body, so the
// client waited for bytes that never came.
TEST_F(SecurityTest, ErrorAfterHeadOnTheSameConnectionHasItsBody) {
  StartServer(ServerOptions{});
  for (const std::string& bad :
       {std::string("BAD\r\n\r\n"),
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + std::string(9000, 'b') + "\r\n\r\n"}) {
    Connection connection(server_->port());
    ASSERT_TRUE(connection.Send("HEAD /api/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + bad));
    const std::string both = connection.Read(5000ms);
    const auto second = both.find("HTTP/1.1 4", 1);
    ASSERT_NE(second, std::string::npos) << both.substr(0, 400);
    const std::string error = both.substr(second);
    const auto length_at = error.find("Content-Length: ");
    ASSERT_NE(length_at, std::string::npos) << error;
    const size_t length = std::stoul(error.substr(length_at + 16));
    EXPECT_GT(length, 0U);
    EXPECT_EQ(Body(error).size(), length) << error;
  }
}

// The browser-origin policy (origin_policy.h) as the session applies it:
// before auth, on streams and upgrades too, /healthz exempt, and no CORS
// header unless an origin is listed.
TEST_F(SecurityTest, ForeignPagesAndRebindingHostsAreRefusedBeforeAuth) {
  StartWithCredentials();
  const std::string evil = "Origin: http://evil.example.com";
  for (const std::string_view target :
       {"/", "/stream.mjpg", "/snapshot.jpg", "/api/stats", "/api/events", "/ws/stream"}) {
    const std::string refused = Get(target, evil + "\r\n" + Bearer(kToken));
    EXPECT_EQ(Status(refused), 403) << target << ": " << refused.substr(0, 300);
    EXPECT_NE(Body(refused).find("--allow-origin"), std::string::npos) << refused;
    EXPECT_FALSE(HasHeader(refused, "WWW-Authenticate: Bearer realm=\"freshframe\""));
    const std::string rebound = Exchange("GET " + std::string(target) +
                                         " HTTP/1.1\r\nHost: attacker.example\r\nConnection: "
                                         "close\r\n\r\n");
    EXPECT_EQ(Status(rebound), 403) << target;
    EXPECT_NE(Body(rebound).find("--allow-host"), std::string::npos) << rebound;
  }
  EXPECT_EQ(Status(Exchange("GET /healthz HTTP/1.1\r\nHost: attacker.example\r\n"
                            "Connection: close\r\n\r\n")),
            200);
  // The server's own page and tools without Origin are unaffected.
  const std::string own = Get("/api/stats", "Origin: http://127.0.0.1\r\n" + Bearer(kToken));
  EXPECT_EQ(Status(own), 200) << own.substr(0, 300);
  EXPECT_EQ(own.find("Access-Control-Allow-Origin"), std::string::npos);
  std::string head;
  auto stream = OpenStream("/stream.mjpg", Bearer(kToken), &head);
  EXPECT_EQ(Status(head), 200) << head;
  EXPECT_EQ(head.find("Access-Control-Allow-Origin"), std::string::npos) << head;
  EXPECT_EQ(Rejected().value("origin", 0), 6);
  EXPECT_EQ(Rejected().value("host", 0), 6);
}

TEST_F(SecurityTest, AListedOriginGetsCorsAndPreflights) {
  ServerOptions options;
  options.origin_policy.allow_origins = {"http://127.0.0.1:3000"};
  StartServer(options);
  const std::string page = "Origin: http://127.0.0.1:3000";
  const std::string allowed = Get("/snapshot.jpg", page);
  EXPECT_EQ(Status(allowed), 200) << allowed.substr(0, 300);
  EXPECT_TRUE(HasHeader(allowed, "Access-Control-Allow-Origin: http://127.0.0.1:3000")) << allowed;
  EXPECT_TRUE(HasHeader(allowed, "Vary: Origin")) << allowed;
  std::string head;
  auto stream = OpenStream("/stream.mjpg", page, &head);
  EXPECT_TRUE(HasHeader(head, "Access-Control-Allow-Origin: http://127.0.0.1:3000")) << head;
  const std::string preflight =
      Exchange("OPTIONS /api/config HTTP/1.1\r\nHost: 127.0.0.1\r\n" + page +
               "\r\nAccess-Control-Request-Method: POST\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(Status(preflight), 204) << preflight;
  EXPECT_TRUE(HasHeader(preflight, "Access-Control-Allow-Methods: GET, HEAD, POST")) << preflight;
  EXPECT_EQ(Status(Get("/snapshot.jpg", "Origin: http://127.0.0.1:3001")), 403);
}

}  // namespace
}  // namespace freshframe::http
