// bus_bench child processes: the socket transports: a Unix domain socket
// (UdsPublisher, UdsSubscriber) and ZeroMQ PUB/SUB over ipc://
// (ZmqPublisher, ZmqSubscriber).
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <opencv2/core.hpp>
#include <zmq.hpp>

#include "common.h"
#include "roles.h"

namespace busbench {
namespace {

// ------------------------------------------------------------ Unix domain socket

bool WriteAll(int fd, iovec* iov, int count) {
  while (count > 0) {
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(count);
    const ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR && !g_stop) continue;
      return false;
    }
    auto left = static_cast<size_t>(n);
    while (count > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      ++iov;
      --count;
    }
    if (count > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + left;
      iov->iov_len -= left;
    }
  }
  return true;
}

// One SOCK_STREAM connection per reader; every frame goes to every reader
// in turn (header + pixels in one sendmsg, no copy in user space). Blocking:
// the writer waits for the slowest reader.
class UdsPublisher : public Publisher {
 public:
  explicit UdsPublisher(const RoleArgs& a) : args_(a), image_(TestImage(a)) {}
  ~UdsPublisher() override {
    for (int fd : clients_) close(fd);
    if (listen_fd_ >= 0) close(listen_fd_);
  }
  bool Setup() override {
    listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (args_.endpoint.size() >= sizeof(addr.sun_path)) return false;
    std::memcpy(addr.sun_path, args_.endpoint.c_str(), args_.endpoint.size() + 1);
    unlink(args_.endpoint.c_str());
    if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(listen_fd_, 64) != 0) {
      Fail(Errno("uds listen " + args_.endpoint));
      return false;
    }
    return true;
  }
  bool Attach() override {
    while (static_cast<int>(clients_.size()) < args_.readers) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (poll(&p, 1, 10'000) <= 0) {
        Fail("uds: readers did not connect");
        return false;
      }
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        Fail(Errno("accept"));
        return false;
      }
      clients_.push_back(fd);
    }
    return true;
  }
  bool Send(Kind kind, uint64_t seq, int64_t stamp_ns) override {
    WireHeader h{kWireMagic, static_cast<uint32_t>(kind), seq, stamp_ns, Bytes()};
    for (int fd : clients_) {
      iovec iov[2] = {{&h, sizeof h}, {image_.data, Bytes()}};
      if (!WriteAll(fd, iov, 2)) {
        Fail(Errno("uds send"));
        return false;
      }
    }
    return true;
  }

 private:
  uint64_t Bytes() const { return image_.total() * image_.elemSize(); }
  RoleArgs args_;
  cv::Mat image_;
  int listen_fd_ = -1;
  std::vector<int> clients_;
};

bool ReadAll(int fd, void* to, size_t n) {
  auto* p = static_cast<char*>(to);
  while (n > 0) {
    const ssize_t got = recv(fd, p, n, MSG_WAITALL);
    if (got < 0 && errno == EINTR && !g_stop) continue;
    if (got <= 0) return false;
    p += got;
    n -= static_cast<size_t>(got);
  }
  return true;
}

class UdsSubscriber : public Subscriber {
 public:
  explicit UdsSubscriber(const RoleArgs& a)
      : args_(a),
        buffer_(static_cast<size_t>(a.width) * static_cast<size_t>(a.height) *
                static_cast<size_t>(a.channels)) {}
  ~UdsSubscriber() override {
    if (fd_ >= 0) close(fd_);
  }
  bool Setup() override {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (args_.endpoint.size() >= sizeof(addr.sun_path)) return false;
    std::memcpy(addr.sun_path, args_.endpoint.c_str(), args_.endpoint.size() + 1);
    if (fd_ < 0 || connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      Fail(Errno("uds connect " + args_.endpoint));
      return false;
    }
    // Touch the buffer once so page faults are not measured.
    std::memset(buffer_.data(), 0, buffer_.size());
    return true;
  }
  Got Recv(int timeout_ms, Msg* out) override {
    pollfd p{fd_, POLLIN, 0};
    const int r = poll(&p, 1, timeout_ms);
    if (r == 0 || (r < 0 && errno == EINTR)) return Got::kTimeout;
    WireHeader h{};
    if (r < 0 || !ReadAll(fd_, &h, sizeof h) || h.magic != kWireMagic || h.bytes > buffer_.size() ||
        !ReadAll(fd_, buffer_.data(), h.bytes)) {
      return Got::kError;
    }
    out->recv_ns = NowNs();
    out->kind = static_cast<Kind>(h.kind);
    out->seq = h.seq;
    out->stamp_ns = h.stamp_ns;
    return Got::kFrame;
  }

 private:
  RoleArgs args_;
  std::vector<unsigned char> buffer_;
  int fd_ = -1;
};

// ------------------------------------------------------------ ZeroMQ

void NoFree(void*, void*) {}

// XPUB (PUB with subscription messages visible, so the writer knows when
// every SUB is attached) bound to ipc://. Two-part messages: the 32-byte
// header, then the pixels sent zero-copy from the writer's buffer. SNDHWM 2:
// a subscriber more than 2 messages behind loses frames (PUB never blocks).
class ZmqPublisher : public Publisher {
 public:
  explicit ZmqPublisher(const RoleArgs& a)
      : args_(a), image_(TestImage(a)), context_(1), socket_(context_, zmq::socket_type::xpub) {}
  bool Setup() override {
    try {
      socket_.set(zmq::sockopt::sndhwm, 2);
      socket_.set(zmq::sockopt::xpub_verbose, 1);
      socket_.set(zmq::sockopt::linger, 1000);
      socket_.bind(args_.endpoint);
    } catch (const zmq::error_t& e) {
      Fail(std::string("zmq bind: ") + e.what());
      return false;
    }
    return true;
  }
  bool Attach() override {
    int subscribed = 0;
    while (subscribed < args_.readers) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(10'000)) <= 0) {
        Fail("zmq: subscribers did not attach");
        return false;
      }
      zmq::message_t msg;
      if (!socket_.recv(msg)) continue;
      if (msg.size() >= 1 && static_cast<const unsigned char*>(msg.data())[0] == 1) ++subscribed;
    }
    return true;
  }
  bool Send(Kind kind, uint64_t seq, int64_t stamp_ns) override {
    WireHeader h{kWireMagic, static_cast<uint32_t>(kind), seq, stamp_ns, Bytes()};
    try {
      zmq::message_t header(&h, sizeof h);
      zmq::message_t pixels(image_.data, Bytes(), NoFree, nullptr);
      socket_.send(header, zmq::send_flags::sndmore);
      socket_.send(pixels, zmq::send_flags::none);
    } catch (const zmq::error_t& e) {
      Fail(std::string("zmq send: ") + e.what());
      return false;
    }
    return true;
  }
  // A PUB drops at the HWM, so one end marker may be lost: repeat it.
  void SendEnd(uint64_t seq) override {
    for (int i = 0; i < 100; ++i) {
      Send(Kind::kEnd, seq, NowNs());
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

 private:
  uint64_t Bytes() const { return image_.total() * image_.elemSize(); }
  RoleArgs args_;
  cv::Mat image_;
  zmq::context_t context_;
  zmq::socket_t socket_;
};

class ZmqSubscriber : public Subscriber {
 public:
  explicit ZmqSubscriber(const RoleArgs& a)
      : args_(a), context_(1), socket_(context_, zmq::socket_type::sub) {}
  bool Setup() override {
    try {
      socket_.set(zmq::sockopt::rcvhwm, 2);
      socket_.set(zmq::sockopt::linger, 0);
      socket_.set(zmq::sockopt::subscribe, "");
      socket_.connect(args_.endpoint);
    } catch (const zmq::error_t& e) {
      Fail(std::string("zmq connect: ") + e.what());
      return false;
    }
    return true;
  }
  Got Recv(int timeout_ms, Msg* out) override {
    try {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms)) <= 0) return Got::kTimeout;
      zmq::message_t header;
      if (!socket_.recv(header, zmq::recv_flags::none)) return Got::kTimeout;
      if (!header.more() || header.size() != sizeof(WireHeader)) return Got::kError;
      if (!socket_.recv(pixels_, zmq::recv_flags::none)) return Got::kError;
      out->recv_ns = NowNs();
      WireHeader h{};
      std::memcpy(&h, header.data(), sizeof h);
      if (h.magic != kWireMagic || pixels_.size() != h.bytes) return Got::kError;
      out->kind = static_cast<Kind>(h.kind);
      out->seq = h.seq;
      out->stamp_ns = h.stamp_ns;
      return Got::kFrame;
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) return Got::kTimeout;
      Fail(std::string("zmq recv: ") + e.what());
      return Got::kError;
    }
  }

 private:
  RoleArgs args_;
  zmq::context_t context_;
  zmq::socket_t socket_;
  zmq::message_t pixels_;
};

}  // namespace

std::unique_ptr<Publisher> MakeUdsPublisher(const RoleArgs& a) {
  return std::make_unique<UdsPublisher>(a);
}

std::unique_ptr<Subscriber> MakeUdsSubscriber(const RoleArgs& a) {
  return std::make_unique<UdsSubscriber>(a);
}

std::unique_ptr<Publisher> MakeZmqPublisher(const RoleArgs& a) {
  return std::make_unique<ZmqPublisher>(a);
}

std::unique_ptr<Subscriber> MakeZmqSubscriber(const RoleArgs& a) {
  return std::make_unique<ZmqSubscriber>(a);
}

}  // namespace busbench
