#include "probe/probe_client.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <system_error>
#include <utility>

#include "core/clock.h"
#include "httpclient/http_response.h"
#include "httpclient/multipart_body.h"
#include "httpclient/text_util.h"
#include "probe/strip_decoder.h"

namespace freshframe::probe {
namespace {

constexpr size_t kReadBytes = 64u << 10;

// Thread-safe, unlike strerror.
std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

bool StopRequested(const std::atomic<bool>* stop) {
  // Relaxed: a plain flag; no data is published through it.
  return stop != nullptr && stop->load(std::memory_order_relaxed);
}

class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() {
    if (fd_ >= 0) close(fd_);
  }
  Socket(Socket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Socket& operator=(Socket&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  int fd() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

enum class Wait { kReady, kTimeout, kStopped, kError };

// Waits until `events` are ready on `fd`, `until_us` passes, or *stop is set,
// whichever comes first; it looks at *stop at least every kPollSliceUs.
Wait WaitFor(int fd, short events, int64_t until_us, const std::atomic<bool>* stop) {
  for (;;) {
    if (StopRequested(stop)) return Wait::kStopped;
    const int64_t now = MonotonicMicros();
    if (now >= until_us) return Wait::kTimeout;
    int64_t slice = until_us - now;
    if (stop != nullptr) slice = std::min(slice, kPollSliceUs);
    pollfd p{fd, events, 0};
    const int ready = poll(&p, 1, static_cast<int>((slice + 999) / 1000));
    if (ready < 0) {
      if (errno == EINTR) continue;
      return Wait::kError;
    }
    // POLLERR and POLLHUP count as ready: the recv/send that follows reports
    // what happened.
    if (ready > 0) return Wait::kReady;
  }
}

Socket Connect(const Address& address, int64_t deadline_us, const std::atomic<bool>* stop,
               std::string* error) {
  Socket socket(::socket(address.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!socket.valid()) {
    *error = address.text + ": socket: " + ErrnoText(errno);
    return {};
  }
  const auto* sa = reinterpret_cast<const sockaddr*>(&address.storage);
  if (connect(socket.fd(), sa, address.length) != 0) {
    if (errno != EINPROGRESS) {
      *error = address.text + ": " + ErrnoText(errno);
      return {};
    }
    const int64_t until = std::min(MonotonicMicros() + kConnectTimeoutUs, deadline_us);
    switch (WaitFor(socket.fd(), POLLOUT, until, stop)) {
      case Wait::kReady:
        break;
      case Wait::kTimeout:
        *error = address.text + ": connect timed out";
        return {};
      case Wait::kStopped:
        *error = address.text + ": stopped while connecting";
        return {};
      case Wait::kError:
        *error = address.text + ": poll: " + ErrnoText(errno);
        return {};
    }
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(socket.fd(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) {
      *error = address.text + ": " + ErrnoText(err);
      return {};
    }
  }
  // Our request is one small write; no point in delaying it.
  const int one = 1;
  setsockopt(socket.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return socket;
}

bool SendAll(int fd, std::string_view data, int64_t until_us, const std::atomic<bool>* stop,
             std::string* error) {
  while (!data.empty()) {
    // MSG_NOSIGNAL: a peer that closed must not kill the process with SIGPIPE.
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n >= 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      *error = "send: " + ErrnoText(errno);
      return false;
    }
    if (WaitFor(fd, POLLOUT, until_us, stop) != Wait::kReady) {
      *error = "could not send the request";
      return false;
    }
  }
  return true;
}

// What became of one attempt to read.
enum class Read { kData, kClosed, kTimeout, kStopped, kError };

Read ReceiveSome(int fd, char* buffer, size_t size, int64_t until_us, const std::atomic<bool>* stop,
                 size_t* received, std::string* error) {
  for (;;) {
    const ssize_t n = recv(fd, buffer, size, 0);
    if (n > 0) {
      *received = static_cast<size_t>(n);
      return Read::kData;
    }
    if (n == 0) return Read::kClosed;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      *error = "recv: " + ErrnoText(errno);
      return Read::kError;
    }
    switch (WaitFor(fd, POLLIN, until_us, stop)) {
      case Wait::kReady:
        continue;
      case Wait::kTimeout:
        return Read::kTimeout;
      case Wait::kStopped:
        return Read::kStopped;
      case Wait::kError:
        *error = "poll: " + ErrnoText(errno);
        return Read::kError;
    }
  }
}

// The stream after the response head: transfer decoding, multipart parsing,
// strip reading, counting.
class StreamReader {
 public:
  StreamReader(std::string boundary, bool chunked, ClientRun* run)
      : body_(std::move(boundary), chunked), run_(run) {}

  // Handles bytes that arrived at `now_us`. False (and *error set) if the
  // stream is broken or over.
  bool OnBytes(std::string_view bytes, int64_t now_us, std::string* error) {
    switch (body_.Feed(bytes, [&](std::string_view part) { OnPart(part, now_us); })) {
      case httpclient::MultipartBody::Status::kMore:
        return true;
      case httpclient::MultipartBody::Status::kEnded:
        *error = "server ended the stream (" + std::string(body_.ended_by()) + ")";
        return false;
      case httpclient::MultipartBody::Status::kBroken:
        *error = body_.error();
        return false;
    }
    return false;
  }

 private:
  void OnPart(std::string_view body, int64_t now_us) {
    ++run_->report.frames;
    // The strip alone decides; the server's X-Frame-Timestamp is not trusted.
    const auto reading = decoder_.Read(body, now_us);
    if (!reading) {
      ++run_->report.no_strip;
      return;
    }
    run_->latency.Add(static_cast<double>(now_us - reading->t_us) / 1000.0);
  }

  httpclient::MultipartBody body_;
  StripDecoder decoder_;
  ClientRun* run_;
};

// Reads and checks the response head; on success returns a reader for the
// body and leaves in *rest the body bytes that came with the head.
std::optional<StreamReader> ReadHead(int fd, int64_t connected_us, int64_t deadline_us,
                                     const std::atomic<bool>* stop, ClientRun* run,
                                     std::string* rest, std::string* error) {
  std::string head;
  std::vector<char> buffer(kReadBytes);
  const int64_t until = std::min(connected_us + kResponseTimeoutUs, deadline_us);
  size_t head_end = std::string::npos;
  while (head_end == std::string::npos) {
    size_t n = 0;
    switch (ReceiveSome(fd, buffer.data(), buffer.size(), until, stop, &n, error)) {
      case Read::kData:
        break;
      case Read::kClosed:
        *error = "connection closed before a response";
        return std::nullopt;
      case Read::kTimeout:
        *error = until == deadline_us ? "no response before the end of the run"
                                      : "no response within 2 s";
        return std::nullopt;
      case Read::kStopped:
        *error = "stopped before a response";
        return std::nullopt;
      case Read::kError:
        return std::nullopt;
    }
    head.append(buffer.data(), n);
    head_end = httpclient::FindHeadEnd(head);
    if (head_end == std::string::npos && head.size() > httpclient::kMaxResponseHeadBytes) {
      *error = "response head too long";
      return std::nullopt;
    }
  }
  std::string why;
  const auto response =
      httpclient::ParseResponseHead(std::string_view(head).substr(0, head_end), &why);
  if (!response) {
    *error = "bad response: " + why;
    return std::nullopt;
  }
  if (response->status != 200) {
    *error = "HTTP " + std::to_string(response->status) + " " + response->reason;
    return std::nullopt;
  }
  const std::string* type = response->Find("content-type");
  auto boundary = type != nullptr ? httpclient::MultipartBoundary(*type) : std::nullopt;
  if (!boundary) {
    *error = "not a multipart stream (Content-Type: " + (type != nullptr ? *type : "none") + ")";
    return std::nullopt;
  }
  bool chunked = false;
  if (const std::string* te = response->Find("transfer-encoding")) {
    const std::string coding = httpclient::AsciiLower(*te);
    if (coding == "chunked") {
      chunked = true;
    } else if (coding != "identity") {
      *error = "unsupported Transfer-Encoding: " + *te;
      return std::nullopt;
    }
  }
  if (const std::string* ce = response->Find("content-encoding")) {
    if (httpclient::AsciiLower(*ce) != "identity") {
      *error = "unsupported Content-Encoding: " + *ce;
      return std::nullopt;
    }
  }
  rest->assign(head, head_end);
  return std::optional<StreamReader>(std::in_place, std::move(*boundary), chunked, run);
}

}  // namespace

bool Resolve(const httpclient::Url& url, std::vector<Address>* addresses, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* list = nullptr;
  const int rc = getaddrinfo(url.host.c_str(), std::to_string(url.port).c_str(), &hints, &list);
  if (rc != 0) {
    *error = "cannot resolve " + url.host + ": " + gai_strerror(rc);
    return false;
  }
  for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
    Address address;
    std::copy_n(reinterpret_cast<const char*>(ai->ai_addr), ai->ai_addrlen,
                reinterpret_cast<char*>(&address.storage));
    address.length = ai->ai_addrlen;
    char host[NI_MAXHOST] = {};
    if (getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof(host), nullptr, 0, NI_NUMERICHOST) !=
        0) {
      continue;
    }
    const std::string text(host);
    address.text =
        (ai->ai_family == AF_INET6 ? "[" + text + "]" : text) + ":" + std::to_string(url.port);
    addresses->push_back(std::move(address));
  }
  freeaddrinfo(list);
  if (addresses->empty()) {
    *error = "no address for " + url.host;
    return false;
  }
  return true;
}

void RunClient(const httpclient::Url& url, const std::vector<Address>& addresses,
               int64_t deadline_us, const std::atomic<bool>* stop, ClientRun* run) {
  ClientReport& report = run->report;
  Socket socket;
  std::string errors;
  for (const Address& address : addresses) {
    std::string why;
    socket = Connect(address, deadline_us, stop, &why);
    if (socket.valid()) break;
    errors += (errors.empty() ? "connect to " : "; ") + why;
    if (StopRequested(stop) || MonotonicMicros() >= deadline_us) break;
  }
  if (!socket.valid()) {
    report.error = errors;
    return;
  }
  // fps is measured from here: the connection is up and the request goes
  // out at once, so any time after this is the server's (and the network's).
  const int64_t start_us = MonotonicMicros();
  int64_t end_us = start_us;
  auto finish = [&](std::string error) {
    end_us = std::max(MonotonicMicros(), start_us);
    report.error = std::move(error);
    const double seconds = static_cast<double>(end_us - start_us) / 1e6;
    report.fps = seconds > 0 ? static_cast<double>(report.frames) / seconds : 0.0;
  };

  const std::string request = "GET " + url.target + " HTTP/1.1\r\nHost: " + url.HostHeader() +
                              "\r\n" + url.AuthorizationHeader() +
                              "User-Agent: freshframe-probe\r\n"
                              "Accept: multipart/x-mixed-replace, */*\r\n"
                              "Cache-Control: no-cache\r\nConnection: close\r\n\r\n";
  std::string error;
  if (!SendAll(socket.fd(), request, deadline_us, stop, &error)) return finish(error);

  std::string rest;
  auto reader = ReadHead(socket.fd(), start_us, deadline_us, stop, run, &rest, &error);
  if (!reader) return finish(error);
  if (!rest.empty() && !reader->OnBytes(rest, MonotonicMicros(), &error)) return finish(error);
  rest = std::string();  // give back the head's memory

  std::vector<char> buffer(kReadBytes);
  for (;;) {
    // While data keeps coming ReceiveSome never waits, so look here too.
    if (StopRequested(stop)) return finish("");
    size_t n = 0;
    switch (ReceiveSome(socket.fd(), buffer.data(), buffer.size(), deadline_us, stop, &n, &error)) {
      case Read::kData:
        break;
      case Read::kClosed:
        return finish("server closed the connection");
      case Read::kTimeout:
      case Read::kStopped:
        return finish("");  // the run is over; this client did its job
      case Read::kError:
        return finish(error);
    }
    // The bytes' arrival time, taken before any decoding so that the probe's
    // own work does not count as latency of these frames.
    const int64_t now_us = MonotonicMicros();
    if (!reader->OnBytes(std::string_view(buffer.data(), n), now_us, &error)) {
      return finish(error);
    }
    if (now_us >= deadline_us) return finish("");
  }
}

}  // namespace freshframe::probe
