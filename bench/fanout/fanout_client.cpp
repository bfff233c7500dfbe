// fanout_client: many MJPEG viewers in one thread (epoll, non-blocking
// sockets). Each connection sends `GET <path>`, checks the multipart response
// head, then counts the parts it receives by parsing the stream as it
// arrives: a "--boundary" line, part headers up to the blank line, and
// exactly Content-Length body bytes (bodies are discarded in the kernel with
// recv(MSG_TRUNC) unless --copy is given, so the client costs little CPU).
// Usage and output: bench/fanout/README.md.
//
// Modes:
//   steady  N connections stay open. "ready" is printed on stdout once every
//           connection has received its first part; the measurement window
//           then runs from "go" to "stop" on stdin (--stdin-control), or for
//           --seconds after --warmup seconds. Per-connection fps = parts
//           completed inside the window / window length. One JSON object on
//           stdout at the end.
//   churn   N connections at a time, each living a random time in
//           [--min-life-ms, --max-life-ms], then closed in one of four ways
//           (normal close after streaming, RST, mid-request, after the
//           response head without reading) and replaced at once, for
//           --seconds. One JSON object on stdout at the end.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "file_limit.h"

namespace {

volatile std::sig_atomic_t g_stop = 0;

void OnSignal(int) { g_stop = 1; }

int64_t NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// "http://HOST[:PORT][/path]" with HOST an IPv4 literal or a name.
struct Url {
  std::string host;
  uint16_t port = 80;
  std::string target = "/stream.mjpg";
};

std::optional<Url> ParseUrl(std::string_view text) {
  constexpr std::string_view kScheme = "http://";
  if (text.substr(0, kScheme.size()) != kScheme) return std::nullopt;
  text.remove_prefix(kScheme.size());
  Url url;
  const size_t slash = text.find('/');
  std::string_view authority = text.substr(0, slash);
  if (slash != std::string_view::npos && slash + 1 < text.size()) {
    url.target = std::string(text.substr(slash));
  }
  const size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos) {
    const std::string port(authority.substr(colon + 1));
    char* end = nullptr;
    const long p = std::strtol(port.c_str(), &end, 10);
    if (port.empty() || *end != '\0' || p <= 0 || p > 65535) return std::nullopt;
    url.port = static_cast<uint16_t>(p);
    authority = authority.substr(0, colon);
  }
  if (authority.empty()) return std::nullopt;
  url.host = std::string(authority);
  return url;
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double rank = q / 100.0 * static_cast<double>(v.size());
  size_t i = static_cast<size_t>(rank);
  if (static_cast<double>(i) < rank) ++i;  // nearest rank: ceil(q * n)
  return v[std::clamp<size_t>(i, 1, v.size()) - 1];
}

double Round3(double v) { return static_cast<double>(std::llround(v * 1000.0)) / 1000.0; }

// How a churn connection ends.
enum class Exit { kClose, kReset, kMidRequest, kNoRead };
constexpr int kExitKinds = 4;
constexpr const char* kExitNames[kExitKinds] = {"close", "reset", "mid_request", "head_only"};

enum class State { kConnecting, kSending, kHead, kPartHead, kBody, kDone };

struct Conn {
  int fd = -1;
  State state = State::kConnecting;
  std::string request;
  size_t sent = 0;
  std::string head;  // response head, then the current part's delimiter + headers
  size_t scan = 0;   // where the search for "\r\n\r\n" in `head` resumes
  size_t body_left = 0;
  int64_t stamp_us = -1;  // the current part's X-Frame-Timestamp
  std::string boundary;   // "--" + the declared boundary
  uint64_t parts = 0;
  uint64_t window_parts = 0;
  uint64_t bytes = 0;
  int64_t connected_ns = 0;
  int64_t first_part_ns = 0;
  int64_t end_ns = 0;  // churn: when to leave
  Exit exit = Exit::kClose;
  bool paused = false;  // churn head_only: no longer reading
  std::string error;
};

struct Options {
  Url url;
  std::string mode = "steady";
  int clients = 10;
  double seconds = 10;
  double warmup = 1;
  bool stdin_control = false;
  bool copy = false;
  double ready_timeout = 30;
  int min_life_ms = 200;
  int max_life_ms = 2000;
  unsigned seed = 1;
};

class Runner {
 public:
  explicit Runner(const Options& o) : o_(o), rng_(o.seed), scratch_(256 * 1024) {}

  int Run() {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) return Fail("epoll_create1");
    if (!Resolve()) return 2;
    conns_.resize(static_cast<size_t>(o_.clients));
    const int64_t start = NowNs();
    for (size_t i = 0; i < conns_.size(); ++i) Open(i, start);
    if (o_.stdin_control) {
      AddFd(STDIN_FILENO, EPOLLIN, kStdinTag);
    }
    return o_.mode == "churn" ? RunChurn(start) : RunSteady(start);
  }

 private:
  static constexpr uint64_t kStdinTag = ~uint64_t{0};
  static constexpr size_t kMaxHead = 64 * 1024;  // response head or part head

  int Fail(const char* what) {
    std::fprintf(stderr, "fanout_client: %s: %s\n", what, std::strerror(errno));
    return 2;
  }

  bool Resolve() {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    const std::string port = std::to_string(o_.url.port);
    const int rc = getaddrinfo(o_.url.host.c_str(), port.c_str(), &hints, &res);
    if (rc != 0 || res == nullptr) {
      std::fprintf(stderr, "fanout_client: cannot resolve %s: %s\n", o_.url.host.c_str(),
                   gai_strerror(rc));
      return false;
    }
    std::memcpy(&addr_, res->ai_addr, sizeof addr_);
    freeaddrinfo(res);
    request_ = "GET " + o_.url.target + " HTTP/1.1\r\nHost: " + o_.url.host + ":" + port +
               "\r\nUser-Agent: freshframe-fanout\r\nAccept: */*\r\n\r\n";
    return true;
  }

  void AddFd(int fd, uint32_t events, uint64_t tag) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = tag;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
  }

  void ModFd(int fd, uint32_t events, uint64_t tag) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = tag;
    epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);
  }

  // Starts connection i (a fresh Conn in slot i).
  void Open(size_t i, int64_t now) {
    Conn& c = conns_[i];
    c = Conn{};
    ++connects_;
    c.request = request_;
    if (o_.mode == "churn") {
      c.exit = static_cast<Exit>(exit_turn_++ % kExitKinds);
      std::uniform_int_distribution<int> life(o_.min_life_ms, o_.max_life_ms);
      int ms = life(rng_);
      if (c.exit == Exit::kMidRequest) {
        ms = std::min(ms, 300);  // a stuck half request: leave early
        c.request = request_.substr(0, request_.size() / 2);
      }
      c.end_ns = now + int64_t{ms} * 1'000'000;
    }
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
      SetError(c, std::string("socket: ") + std::strerror(errno));
      return;
    }
    const int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const int rc = connect(c.fd, reinterpret_cast<const sockaddr*>(&addr_), sizeof addr_);
    if (rc != 0 && errno != EINPROGRESS) {
      SetError(c, std::string("connect: ") + std::strerror(errno));
      return;
    }
    c.state = State::kConnecting;
    AddFd(c.fd, EPOLLOUT, i);
  }

  void CloseFd(Conn& c) {
    if (c.fd >= 0) {
      epoll_ctl(epfd_, EPOLL_CTL_DEL, c.fd, nullptr);
      close(c.fd);
      c.fd = -1;
    }
  }

  void SetError(Conn& c, std::string message) {
    if (c.error.empty()) c.error = std::move(message);
    c.state = State::kDone;
    CloseFd(c);
  }

  // Socket i is ready.
  void OnEvent(size_t i, uint32_t events, int64_t now) {
    Conn& c = conns_[i];
    if (c.fd < 0) return;
    if (c.state == State::kConnecting) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) return SetError(c, std::string("connect: ") + std::strerror(err));
      c.connected_ns = now;
      c.state = State::kSending;
    }
    if (c.state == State::kSending) {
      while (c.sent < c.request.size()) {
        const ssize_t n =
            send(c.fd, c.request.data() + c.sent, c.request.size() - c.sent, MSG_NOSIGNAL);
        if (n < 0) {
          if (errno == EAGAIN) return;
          return SetError(c, std::string("send: ") + std::strerror(errno));
        }
        c.sent += static_cast<size_t>(n);
      }
      if (c.exit == Exit::kMidRequest && o_.mode == "churn") {
        ModFd(c.fd, EPOLLIN, i);  // half a request sent; wait for the end of life
        c.state = State::kHead;
        return;
      }
      c.state = State::kHead;
      ModFd(c.fd, EPOLLIN, i);
      return;
    }
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) == 0) return;
    // Up to a few reads per event keeps the connections fair to each other.
    for (int round = 0; round < 8 && c.fd >= 0; ++round) {
      ssize_t n = 0;
      if (c.state == State::kBody && !o_.copy) {
        n = recv(c.fd, scratch_.data(), c.body_left, MSG_TRUNC | MSG_DONTWAIT);
      } else {
        const size_t want =
            c.state == State::kBody ? std::min(c.body_left, scratch_.size()) : scratch_.size();
        n = recv(c.fd, scratch_.data(), want, MSG_DONTWAIT);
      }
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        return SetError(c, std::string("recv: ") + std::strerror(errno));
      }
      if (n == 0) return SetError(c, "server closed the connection");
      c.bytes += static_cast<uint64_t>(n);
      bytes_ += static_cast<uint64_t>(n);
      if (c.state == State::kBody) {
        const size_t got = static_cast<size_t>(n);
        c.body_left -= got;
        if (c.body_left == 0) PartDone(c, now);
        continue;
      }
      Feed(c, std::string_view(scratch_.data(), static_cast<size_t>(n)), now);
      if (c.state == State::kDone) return;
    }
  }

  // Bytes in a header state (response head or part head); may run through
  // bodies and further parts if they arrived in the same read.
  void Feed(Conn& c, std::string_view data, int64_t now) {
    while (!data.empty() && c.state != State::kDone) {
      if (c.state == State::kBody) {
        const size_t take = std::min(c.body_left, data.size());
        c.body_left -= take;
        data.remove_prefix(take);
        if (c.body_left == 0) PartDone(c, now);
        continue;
      }
      // Header states: collect up to the blank line (at most kMaxHead bytes).
      const size_t before = c.head.size();
      const size_t take = std::min(kMaxHead - before, data.size());
      c.head.append(data.substr(0, take));
      const size_t from = c.scan > 3 ? c.scan - 3 : 0;
      const size_t end = c.head.find("\r\n\r\n", from);
      if (end == std::string::npos) {
        if (c.head.size() >= kMaxHead) return SetError(c, "header block over 64 KiB");
        c.scan = c.head.size();
        return;
      }
      data.remove_prefix(end + 4 - before);  // the rest is body (and maybe more parts)
      const std::string block = c.head.substr(0, end);
      c.head.clear();
      c.scan = 0;
      if (c.state == State::kHead) {
        ParseResponseHead(c, block);
      } else {
        ParsePartHead(c, block);
      }
    }
  }

  void ParseResponseHead(Conn& c, std::string_view block) {
    const size_t eol = block.find("\r\n");
    const std::string_view status_line = block.substr(0, eol);
    if (status_line.substr(0, 5) != "HTTP/" || status_line.size() < 12 ||
        status_line.substr(9, 3) != "200") {
      return SetError(c, "bad status line: " + std::string(status_line.substr(0, 80)));
    }
    std::string type;
    size_t pos = eol == std::string_view::npos ? block.size() : eol + 2;
    while (pos < block.size()) {
      size_t next = block.find("\r\n", pos);
      if (next == std::string_view::npos) next = block.size();
      const std::string_view line = block.substr(pos, next - pos);
      const size_t colon = line.find(':');
      if (colon != std::string_view::npos && Lower(line.substr(0, colon)) == "content-type") {
        type = std::string(Trim(line.substr(colon + 1)));
      }
      pos = next + 2;
    }
    const std::string lower = Lower(type);
    const size_t b = lower.find("boundary=");
    if (lower.find("multipart/x-mixed-replace") == std::string::npos || b == std::string::npos) {
      return SetError(c, "not a multipart/x-mixed-replace response: " + type);
    }
    std::string_view boundary = std::string_view(type).substr(b + 9);
    boundary = boundary.substr(0, boundary.find(';'));
    boundary = Trim(boundary);
    if (boundary.size() >= 2 && boundary.front() == '"' && boundary.back() == '"') {
      boundary = boundary.substr(1, boundary.size() - 2);
    }
    if (boundary.empty()) return SetError(c, "empty boundary");
    // Some servers declare the boundary with the leading "--" already.
    c.boundary =
        boundary.substr(0, 2) == "--" ? std::string(boundary) : "--" + std::string(boundary);
    c.state = State::kPartHead;
    if (o_.mode == "churn" && c.exit == Exit::kNoRead) {
      c.paused = true;  // stop reading: the server's send buffer fills up
      epoll_ctl(epfd_, EPOLL_CTL_DEL, c.fd, nullptr);
    }
  }

  void ParsePartHead(Conn& c, std::string_view block) {
    // The CRLF that ends the previous body (and any stray blank lines).
    while (block.substr(0, 2) == "\r\n") block.remove_prefix(2);
    if (block.empty()) return;  // blank lines between parts
    const size_t eol = block.find("\r\n");
    const std::string_view delimiter = Trim(block.substr(0, eol));
    if (delimiter == c.boundary + "--") return SetError(c, "stream ended (closing delimiter)");
    if (delimiter != c.boundary) {
      return SetError(c,
                      "expected " + c.boundary + ", got " + std::string(delimiter.substr(0, 80)));
    }
    std::optional<size_t> length;
    c.stamp_us = -1;
    size_t pos = eol == std::string_view::npos ? block.size() : eol + 2;
    while (pos < block.size()) {
      size_t next = block.find("\r\n", pos);
      if (next == std::string_view::npos) next = block.size();
      const std::string_view line = block.substr(pos, next - pos);
      pos = next + 2;
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos) return SetError(c, "part header without a colon");
      const std::string name = Lower(Trim(line.substr(0, colon)));
      const std::string value(Trim(line.substr(colon + 1)));
      if (name == "content-length") {
        char* end = nullptr;
        const unsigned long long v = std::strtoull(value.c_str(), &end, 10);
        if (value.empty() || *end != '\0' || v > (256ull << 20)) {
          return SetError(c, "bad part Content-Length: " + value);
        }
        length = static_cast<size_t>(v);
      } else if (name == "x-frame-timestamp") {
        // "SECONDS.UUUUUU" (CLOCK_MONOTONIC).
        const size_t dot = value.find('.');
        if (dot != std::string::npos && value.size() == dot + 7) {
          c.stamp_us = std::atoll(value.substr(0, dot).c_str()) * 1'000'000 +
                       std::atoll(value.substr(dot + 1).c_str());
        }
      }
    }
    if (!length) return SetError(c, "part without Content-Length");
    c.body_left = *length;
    c.state = State::kBody;
    if (c.body_left == 0) PartDone(c, NowNs());
  }

  void PartDone(Conn& c, int64_t now) {
    ++c.parts;
    ++parts_;
    if (c.parts == 1) {
      c.first_part_ns = now;
      ++streaming_;
    }
    if (in_window_) {
      ++c.window_parts;
      if (c.stamp_us > 0) {
        header_latency_ms_.push_back(static_cast<double>(now / 1000 - c.stamp_us) / 1000.0);
      }
    }
    c.state = State::kPartHead;
  }

  // Reads what stdin has (commands are lines: "go", "stop").
  void ReadStdin() {
    char buf[256];
    const ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
    if (n <= 0) {
      epoll_ctl(epfd_, EPOLL_CTL_DEL, STDIN_FILENO, nullptr);
      stdin_eof_ = true;
      return;
    }
    stdin_buf_.append(buf, static_cast<size_t>(n));
  }

  // The next command line, "eof" once stdin has ended, or "".
  std::string PopCommand() {
    const size_t nl = stdin_buf_.find('\n');
    if (nl == std::string::npos) return stdin_eof_ ? "eof" : "";
    std::string command(Trim(std::string_view(stdin_buf_).substr(0, nl)));
    stdin_buf_.erase(0, nl + 1);
    return command;
  }

  // One epoll round; returns the next stdin command (see PopCommand).
  std::string Poll(int64_t* now) {
    epoll_event events[256];
    const int n = epoll_wait(epfd_, events, 256, 20);
    *now = NowNs();
    for (int k = 0; k < n; ++k) {
      const uint64_t tag = events[k].data.u64;
      if (tag == kStdinTag) {
        ReadStdin();
        continue;
      }
      OnEvent(static_cast<size_t>(tag), events[k].events, *now);
    }
    return PopCommand();
  }

  int RunSteady(int64_t start) {
    const int64_t ready_deadline = start + static_cast<int64_t>(o_.ready_timeout * 1e9);
    int64_t now = NowNs();
    bool ready = false;
    int64_t window_start = 0;
    int64_t window_end = 0;
    int64_t ready_ns = 0;
    while (!g_stop) {
      const std::string command = Poll(&now);
      const size_t settled = static_cast<size_t>(std::count_if(
          conns_.begin(), conns_.end(), [](const Conn& c) { return c.parts > 0 || c.fd < 0; }));
      if (!ready && (settled >= conns_.size() || now > ready_deadline)) {
        ready = true;
        ready_ns = now;
        std::printf("ready %zu/%zu streaming\n", streaming_, conns_.size());
        std::fflush(stdout);
      }
      if (command == "eof" && !in_window_ && window_end == 0) break;
      if (ready && !in_window_ && window_end == 0) {
        const bool go = o_.stdin_control ? command == "go"
                                         : now - ready_ns >= static_cast<int64_t>(o_.warmup * 1e9);
        if (go) {
          in_window_ = true;
          window_start = now;
        }
      }
      if (in_window_) {
        const bool stop = o_.stdin_control
                              ? (command == "stop" || command == "eof")
                              : now - window_start >= static_cast<int64_t>(o_.seconds * 1e9);
        if (stop) {
          in_window_ = false;
          window_end = now;
          break;
        }
      }
    }
    if (window_end == 0) window_end = now;
    if (window_start == 0) window_start = window_end;
    const double window_s = static_cast<double>(window_end - window_start) / 1e9;
    nlohmann::json out;
    out["mode"] = "steady";
    out["url"] = "http://" + o_.url.host + ":" + std::to_string(o_.url.port) + o_.url.target;
    out["clients"] = conns_.size();
    out["streaming"] = streaming_;
    out["window_s"] = Round3(window_s);
    out["parts"] = parts_;
    out["bytes"] = bytes_;
    std::vector<double> fps;
    nlohmann::json per_client = nlohmann::json::array();
    std::map<std::string, int> errors;
    int failed = 0;
    for (const Conn& c : conns_) {
      const double f = window_s > 0 ? static_cast<double>(c.window_parts) / window_s : 0;
      fps.push_back(f);
      nlohmann::json pc;
      pc["fps"] = Round3(f);
      pc["parts"] = c.parts;
      pc["error"] = c.error;
      per_client.push_back(pc);
      if (!c.error.empty()) {
        ++failed;
        ++errors[c.error];
      }
    }
    out["failed"] = failed;
    out["errors"] = errors;
    out["fps"] = {{"min", Round3(fps.empty() ? 0 : *std::min_element(fps.begin(), fps.end()))},
                  {"median", Round3(Percentile(fps, 50))},
                  {"max", Round3(fps.empty() ? 0 : *std::max_element(fps.begin(), fps.end()))}};
    out["header_latency_ms"] = {{"count", header_latency_ms_.size()},
                                {"p50", Round3(Percentile(header_latency_ms_, 50))},
                                {"p99", Round3(Percentile(header_latency_ms_, 99))},
                                {"max", Round3(Percentile(header_latency_ms_, 100))}};
    out["per_client"] = per_client;
    std::printf("%s\n", out.dump().c_str());
    std::fflush(stdout);
    for (Conn& c : conns_) CloseFd(c);
    return failed == 0 ? 0 : 1;
  }

  void Leave(size_t i, int64_t now) {
    Conn& c = conns_[i];
    const bool unexpected = !c.error.empty();
    if (unexpected) {
      ++unexpected_[c.error];
    } else {
      ++exits_[static_cast<int>(c.exit)];
      if (c.exit == Exit::kReset && c.fd >= 0) {
        const linger hard{1, 0};  // close() sends RST
        setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
      }
    }
    if (c.parts > 0) ++streamed_;
    CloseFd(c);
    if (!g_stop && now < churn_end_) Open(i, now);
  }

  int RunChurn(int64_t start) {
    churn_end_ = start + static_cast<int64_t>(o_.seconds * 1e9);
    std::printf("ready churn %zu\n", conns_.size());
    std::fflush(stdout);
    int64_t now = start;
    while (!g_stop && now < churn_end_) {
      const std::string command = Poll(&now);
      if (command == "stop" || (o_.stdin_control && command == "eof")) break;
      for (size_t i = 0; i < conns_.size(); ++i) {
        Conn& c = conns_[i];
        if (c.fd < 0 || now >= c.end_ns) Leave(i, now);
      }
    }
    for (size_t i = 0; i < conns_.size(); ++i) {
      if (conns_[i].fd >= 0) {
        if (conns_[i].parts > 0) ++streamed_;
        CloseFd(conns_[i]);
      }
    }
    nlohmann::json out;
    out["mode"] = "churn";
    out["clients"] = conns_.size();
    out["seconds"] = Round3(static_cast<double>(NowNs() - start) / 1e9);
    out["connects"] = connects_;
    out["streamed"] = streamed_;  // connections that received at least one part
    out["parts"] = parts_;
    out["bytes"] = bytes_;
    nlohmann::json exits;
    for (int k = 0; k < kExitKinds; ++k) exits[kExitNames[k]] = exits_[k];
    out["exits"] = exits;
    out["unexpected"] = unexpected_;  // connections the server ended or refused
    std::printf("%s\n", out.dump().c_str());
    std::fflush(stdout);
    return 0;
  }

  Options o_;
  std::mt19937 rng_;
  std::vector<char> scratch_;
  int epfd_ = -1;
  sockaddr_in addr_{};
  std::string request_;
  std::vector<Conn> conns_;
  std::string stdin_buf_;
  bool stdin_eof_ = false;
  bool in_window_ = false;
  size_t streaming_ = 0;
  uint64_t parts_ = 0;
  uint64_t bytes_ = 0;
  uint64_t connects_ = 0;
  uint64_t streamed_ = 0;
  unsigned exit_turn_ = 0;
  uint64_t exits_[kExitKinds] = {};
  std::map<std::string, int> unexpected_;
  int64_t churn_end_ = 0;
  std::vector<double> header_latency_ms_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "fanout_client: N MJPEG viewers in one epoll thread; counts multipart parts per "
      "connection (see bench/fanout/README.md)"};
  Options o;
  std::string url;
  app.add_option("--url", url, "http://HOST:PORT/stream.mjpg")->required();
  app.add_option("--mode", o.mode, "steady | churn")
      ->check(CLI::IsMember({"steady", "churn"}))
      ->capture_default_str();
  app.add_option("--clients", o.clients, "connections (churn: at a time)")
      ->check(CLI::Range(1, 20000))
      ->capture_default_str();
  app.add_option("--seconds", o.seconds, "steady: window length; churn: run length")
      ->capture_default_str();
  app.add_option("--warmup", o.warmup, "steady: seconds from ready to the window")
      ->capture_default_str();
  app.add_flag("--stdin-control", o.stdin_control,
               "steady: the window runs from a 'go' line to a 'stop' line on stdin");
  app.add_flag("--copy", o.copy, "read part bodies into memory instead of recv(MSG_TRUNC)");
  app.add_option("--ready-timeout", o.ready_timeout,
                 "steady: print 'ready' after this many seconds even if not all stream")
      ->capture_default_str();
  app.add_option("--min-life-ms", o.min_life_ms, "churn: shortest connection life")
      ->capture_default_str();
  app.add_option("--max-life-ms", o.max_life_ms, "churn: longest connection life")
      ->capture_default_str();
  app.add_option("--seed", o.seed, "churn: random seed")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  const auto parsed = ParseUrl(url);
  if (!parsed) {
    std::fprintf(stderr, "fanout_client: bad --url %s (want http://HOST:PORT/path)\n", url.c_str());
    return 2;
  }
  if (o.seconds <= 0 || o.min_life_ms < 1 || o.max_life_ms < o.min_life_ms) {
    std::fprintf(stderr, "fanout_client: bad --seconds or --min/max-life-ms\n");
    return 2;
  }
  o.url = *parsed;
  fanout_bench::RaiseFileLimit();
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  return Runner(o).Run();
}
