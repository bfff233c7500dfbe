// fanout_floor: the MJPEG fan-out floor of ../shared/MEASUREMENTS.md, as a
// server that fanout_client and `freshframe probe` can read like freshframe.
//
// One thread, one epoll set. It accepts connections on 127.0.0.1, answers
// any request with the multipart response head freshframe sends, and then,
// --fps times a second (a timerfd), formats one part header (Content-Length,
// X-Frame-Timestamp, X-Frame-Sequence) and writes the shared part (header,
// the JPEG given with --jpeg, the delimiter) to every client with one
// writev. A client whose previous part is still partly unwritten skips the
// new one; its remainder goes out when epoll reports the socket writable.
// Nothing else: no per-client timers, no strands, no per-client formatting,
// no statistics beyond a count. It is what any fan-out of one shared part
// must at least pay, so bench/fanout/run.py prints freshframe's CPU as a
// ratio of this one's, measured with the same clients in the same run.
//
// It prints "fanout_floor: serving on http://127.0.0.1:PORT/" on stdout once
// listening, and runs until SIGTERM or SIGINT.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <unordered_map>

#include <CLI/CLI.hpp>

#include "file_limit.h"

namespace {

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

constexpr std::string_view kHead =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: multipart/x-mixed-replace; boundary=freshframe-boundary\r\n"
    "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
    "--freshframe-boundary\r\n";
constexpr std::string_view kTrailer = "\r\n--freshframe-boundary\r\n";

int64_t NowUs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

// One part as every client gets it; a client that is still writing one
// keeps it alive.
struct Part {
  std::string header;
  const std::string* jpeg = nullptr;
  size_t size() const { return header.size() + jpeg->size() + kTrailer.size(); }
};

struct Client {
  int fd = -1;
  std::string request;               // until the blank line
  bool streaming = false;            // the response head went out
  std::string head_left;             // response head not yet written
  std::shared_ptr<const Part> part;  // being written
  size_t offset = 0;                 // bytes of `part` written
};

class Floor {
 public:
  Floor(std::string jpeg, double fps) : jpeg_(std::move(jpeg)), fps_(fps) {}

  int Run(int port) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(listen_fd_, 4096) != 0) {
      std::fprintf(stderr, "fanout_floor: cannot listen on port %d: %s\n", port,
                   std::strerror(errno));
      return 1;
    }
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    timer_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    const auto period_ns = static_cast<int64_t>(1e9 / fps_);
    itimerspec spec{};
    spec.it_interval.tv_sec = period_ns / 1'000'000'000;
    spec.it_interval.tv_nsec = period_ns % 1'000'000'000;
    spec.it_value = spec.it_interval;
    timerfd_settime(timer_, 0, &spec, nullptr);
    Watch(listen_fd_, EPOLLIN);
    Watch(timer_, EPOLLIN);
    std::printf("fanout_floor: serving on http://127.0.0.1:%d/\n", ntohs(addr.sin_port));
    std::fflush(stdout);

    epoll_event events[256];
    while (!g_stop) {
      const int n = epoll_wait(epoll_, events, 256, 200);
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == listen_fd_) {
          Accept();
        } else if (fd == timer_) {
          uint64_t expirations = 0;
          if (read(timer_, &expirations, sizeof expirations) > 0) Publish();
        } else {
          OnClient(fd, events[i].events);
        }
      }
    }
    for (auto& [fd, client] : clients_) close(fd);
    std::fprintf(stderr, "fanout_floor: %llu parts published, %llu written, %llu skipped\n",
                 static_cast<unsigned long long>(sequence_),
                 static_cast<unsigned long long>(written_),
                 static_cast<unsigned long long>(skipped_));
    return 0;
  }

 private:
  void Watch(int fd, uint32_t events) {
    epoll_event event{};
    event.events = events;
    event.data.fd = fd;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &event);
  }

  void Accept() {
    for (;;) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      const int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      // Edge-triggered: a readable edge for the request (and the client
      // going away), a writable edge whenever a remainder can move.
      Watch(fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
      clients_[fd].fd = fd;
    }
  }

  void Drop(int fd) {
    epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
    clients_.erase(fd);
  }

  void OnClient(int fd, uint32_t events) {
    auto it = clients_.find(fd);
    if (it == clients_.end()) return;
    Client& c = it->second;
    if (events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) return Drop(fd);
    if (events & EPOLLIN) {
      char buffer[2048];
      for (;;) {
        const ssize_t got = read(fd, buffer, sizeof buffer);
        if (got == 0) return Drop(fd);
        if (got < 0) {
          if (errno == EAGAIN) break;
          return Drop(fd);
        }
        if (c.streaming || !c.head_left.empty()) continue;  // nothing more is expected
        c.request.append(buffer, static_cast<size_t>(got));
        if (c.request.size() > 8192) return Drop(fd);
        if (c.request.find("\r\n\r\n") != std::string::npos) {
          c.request.clear();
          c.head_left = kHead;
        }
      }
    }
    if (!Flush(c)) Drop(fd);
  }

  // Writes what `c` still owes (the response head, a part's remainder).
  // False if the connection broke.
  bool Flush(Client& c) {
    while (!c.head_left.empty()) {
      const ssize_t n = send(c.fd, c.head_left.data(), c.head_left.size(), MSG_NOSIGNAL);
      if (n < 0) return errno == EAGAIN;
      c.head_left.erase(0, static_cast<size_t>(n));
      c.streaming = c.head_left.empty();
    }
    if (c.part) return WritePart(c);
    return true;
  }

  bool WritePart(Client& c) {
    const Part& part = *c.part;
    const size_t total = part.size();
    while (c.offset < total) {
      iovec io[3];
      int count = 0;
      size_t skip = c.offset;
      const std::string_view pieces[3] = {part.header, *part.jpeg, kTrailer};
      for (const auto& piece : pieces) {
        if (skip >= piece.size()) {
          skip -= piece.size();
          continue;
        }
        io[count].iov_base = const_cast<char*>(piece.data() + skip);
        io[count].iov_len = piece.size() - skip;
        ++count;
        skip = 0;
      }
      const ssize_t n = writev(c.fd, io, count);
      if (n < 0) return errno == EAGAIN;
      c.offset += static_cast<size_t>(n);
    }
    c.part.reset();
    c.offset = 0;
    ++written_;
    return true;
  }

  void Publish() {
    auto part = std::make_shared<Part>();
    part->jpeg = &jpeg_;
    char header[256];
    const int64_t now = NowUs();
    const int n = std::snprintf(
        header, sizeof header,
        "Content-Type: image/jpeg\r\nContent-Length: %zu\r\nX-Frame-Timestamp: %lld.%06lld\r\n"
        "X-Frame-Sequence: %llu\r\n\r\n",
        jpeg_.size(), static_cast<long long>(now / 1'000'000),
        static_cast<long long>(now % 1'000'000), static_cast<unsigned long long>(++sequence_));
    part->header.assign(header, static_cast<size_t>(n));
    std::shared_ptr<const Part> shared = std::move(part);
    for (auto it = clients_.begin(); it != clients_.end();) {
      Client& c = it->second;
      ++it;
      if (!c.streaming) continue;
      if (c.part) {  // the previous part has not drained: this one is skipped
        ++skipped_;
        continue;
      }
      c.part = shared;
      c.offset = 0;
      if (!WritePart(c)) Drop(c.fd);
    }
  }

  const std::string jpeg_;
  const double fps_;
  int listen_fd_ = -1;
  int epoll_ = -1;
  int timer_ = -1;
  std::unordered_map<int, Client> clients_;
  uint64_t sequence_ = 0;
  uint64_t written_ = 0;
  uint64_t skipped_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "fanout_floor: the MJPEG fan-out floor; one epoll thread writes one shared part to "
      "every client (see bench/fanout/README.md)"};
  std::string jpeg_path;
  int port = 0;
  double fps = 30;
  app.add_option("--jpeg", jpeg_path, "the JPEG every part carries")->required();
  app.add_option("--port", port, "port on 127.0.0.1 (0: any free one)")->capture_default_str();
  app.add_option("--fps", fps, "parts per second")->check(CLI::Range(1.0, 240.0));
  CLI11_PARSE(app, argc, argv);
  std::ifstream in(jpeg_path, std::ios::binary);
  std::string jpeg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (jpeg.size() < 4 || static_cast<unsigned char>(jpeg[0]) != 0xFF ||
      static_cast<unsigned char>(jpeg[1]) != 0xD8) {
    std::fprintf(stderr, "fanout_floor: %s is not a JPEG\n", jpeg_path.c_str());
    return 2;
  }
  fanout_bench::RaiseFileLimit();
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  return Floor(std::move(jpeg), fps).Run(port);
}
