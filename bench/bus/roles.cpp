// bus_bench child processes: the writer and the readers of one run, for each
// transport (the freshframe bus with ReadView or ReadCopy, a Unix domain
// socket, ZeroMQ PUB/SUB over ipc://).
//
// Protocol with the driver:
//   writer: sets up, prints "ready", waits for "go" on stdin (the readers are
//           then attached), publishes, prints result lines and exits:
//             W <seq> <before_ns> <after_ns>   per measured frame (latency)
//             S <published> <window_ns> <dropped> <rate_hz> <minflt> <nivcsw>
//   reader: sets up (and, on the bus, takes the priming frame), prints
//           "ready", reads until the end marker, prints
//             L <seq> <recv_ns> <latency_ns>   per measured frame (latency)
//             R <received> <first_ns> <last_ns> <timed_out> <bad> <minflt> <nivcsw>
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <opencv2/core.hpp>
#include <zmq.hpp>

#include "bus/bus.h"
#include "common.h"

namespace busbench {

volatile std::sig_atomic_t g_stop = 0;

namespace {

void OnStop(int) { g_stop = 1; }

}  // namespace

void InstallStopHandler() {
  struct sigaction sa {};
  sa.sa_handler = OnStop;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: blocking calls return EINTR
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

void Say(const std::string& line) {
  std::fputs(line.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

bool WaitForLine(std::string* line) {
  line->clear();
  char c = 0;
  for (;;) {
    const ssize_t n = read(STDIN_FILENO, &c, 1);
    if (n == 1) {
      if (c == '\n') return true;
      line->push_back(c);
    } else if (n < 0 && errno == EINTR) {
      if (g_stop) return false;
    } else {
      return false;
    }
  }
}

std::string_view TransportName(Transport t) {
  switch (t) {
    case Transport::kBusView:
      return "bus";
    case Transport::kBusCopy:
      return "bus-copy";
    case Transport::kBusPublish:
      return "bus-publish";
    case Transport::kUds:
      return "uds";
    case Transport::kZmq:
      return "zmq-ipc";
  }
  return "?";
}

std::optional<Transport> ParseTransport(std::string_view name) {
  for (Transport t : {Transport::kBusView, Transport::kBusCopy, Transport::kBusPublish,
                      Transport::kUds, Transport::kZmq}) {
    if (TransportName(t) == name) return t;
  }
  return std::nullopt;
}

namespace {

namespace fb = freshframe::bus;

void Fail(const std::string& what) {
  std::fprintf(stderr, "bus_bench[%d]: %s\n", getpid(), what.c_str());
}

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// ------------------------------------------------------------------ writers

class Publisher {
 public:
  virtual ~Publisher() = default;
  // Before "ready": create the transport.
  virtual bool Setup() = 0;
  // After "go": wait until all readers are attached.
  virtual bool Attach() { return true; }
  // Produces the next frame where the transport wants it, before the stamp:
  // the in-place bus renders into a claimed slot; the others already hold
  // the frame in their own buffer.
  virtual bool Prepare() { return true; }
  // Sends one frame; false on a hard error.
  virtual bool Send(Kind kind, uint64_t seq, int64_t stamp_ns) = 0;
  // Makes sure every reader sees the end marker.
  virtual void SendEnd(uint64_t seq) { Send(Kind::kEnd, seq, NowNs()); }
  virtual uint64_t dropped() const { return 0; }
};

cv::Mat TestImage(const RoleArgs& a) {
  cv::Mat image(a.height, a.width, a.channels == 1 ? CV_8UC1 : CV_8UC3);
  cv::randu(image, 0, 256);
  return image;
}

class BusPublisher : public Publisher {
 public:
  // in_place: the frame is produced straight into a claimed slot (Prepare
  // copies the test image there, standing in for a camera or decoder
  // writing its output) and Send only commits it; otherwise Send is the
  // copying Publish().
  BusPublisher(const RoleArgs& a, bool in_place) : args_(a), in_place_(in_place) {
    frame_.image = TestImage(a);
    frame_.meta.width = a.width;
    frame_.meta.height = a.height;
  }
  bool Setup() override {
    fb::BusOptions options;
    options.slots = static_cast<uint32_t>(args_.slots);
    auto writer = fb::BusWriter::Open(args_.endpoint, options);
    if (!writer) {
      Fail("bus writer: " + writer.error().message);
      return false;
    }
    writer_ = std::move(writer).value();
    // Sizes the bus (a reader opening later maps the full-size object) and
    // gives each reader a frame to take before it says "ready".
    return Prepare() && Send(Kind::kPrime, 0, NowNs());
  }
  bool Prepare() override {
    if (!in_place_) return true;
    auto claim = writer_->ClaimSlot(frame_.image.cols, frame_.image.rows, frame_.image.channels());
    if (!claim) {
      Fail("claim: " + claim.error().message);
      return false;
    }
    claim_ = std::move(claim).value();
    if (claim_) frame_.image.copyTo(claim_.image());
    return true;
  }
  bool Send(Kind kind, uint64_t seq, int64_t stamp_ns) override {
    frame_.meta.source_id = static_cast<uint32_t>(kind);
    frame_.meta.sequence = seq;
    frame_.meta.stamps.capture_us = stamp_ns / 1000;
    const auto checksum = static_cast<uint64_t>(stamp_ns);
    auto result = in_place_ ? writer_->Commit(claim_, frame_.meta, checksum)
                            : writer_->Publish(frame_, checksum);
    if (!result) {
      Fail("publish: " + result.error().message);
      return false;
    }
    return true;
  }
  void SendEnd(uint64_t seq) override {
    if (Prepare()) Send(Kind::kEnd, seq, NowNs());
  }
  uint64_t dropped() const override { return writer_->dropped(); }

 private:
  RoleArgs args_;
  bool in_place_;
  freshframe::Frame frame_;
  std::unique_ptr<fb::BusWriter> writer_;
  fb::BusWriter::Claim claim_;  // declared after writer_: abandoned before it goes
};

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

std::unique_ptr<Publisher> MakePublisher(const RoleArgs& a) {
  auto t = ParseTransport(a.transport);
  if (!t) return nullptr;
  switch (*t) {
    case Transport::kBusView:
    case Transport::kBusCopy:
      return std::make_unique<BusPublisher>(a, true);
    case Transport::kBusPublish:
      return std::make_unique<BusPublisher>(a, false);
    case Transport::kUds:
      return std::make_unique<UdsPublisher>(a);
    case Transport::kZmq:
      return std::make_unique<ZmqPublisher>(a);
  }
  return nullptr;
}

// Minor page faults and involuntary context switches (preemptions) so far.
struct Usage {
  long minflt = 0;
  long nivcsw = 0;
};
Usage Now() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return Usage{ru.ru_minflt, ru.ru_nivcsw};
}

void SleepUntil(int64_t t_ns) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(t_ns / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(t_ns % 1'000'000'000);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR && !g_stop) {
  }
}

// ------------------------------------------------------------------ readers

struct Msg {
  Kind kind = Kind::kPrime;
  uint64_t seq = 0;
  int64_t stamp_ns = 0;
  int64_t recv_ns = 0;  // when the whole frame was in the reader's hands
};

enum class Got { kFrame, kTimeout, kError };

class Subscriber {
 public:
  virtual ~Subscriber() = default;
  virtual bool Setup() = 0;
  virtual Got Recv(int timeout_ms, Msg* out) = 0;
};

class BusSubscriber : public Subscriber {
 public:
  BusSubscriber(const RoleArgs& a, bool view) : args_(a), view_mode_(view) {}
  bool Setup() override {
    fb::BusOptions options;
    options.slots = static_cast<uint32_t>(args_.slots);
    auto reader = fb::BusReader::Open(args_.endpoint, options);
    if (!reader) {
      Fail("bus reader: " + reader.error().message);
      return false;
    }
    reader_ = std::move(reader).value();
    // The writer published the priming frame before it said "ready".
    Msg m;
    if (Recv(5000, &m) != Got::kFrame || m.kind != Kind::kPrime) {
      Fail("bus reader: no priming frame");
      return false;
    }
    return true;
  }
  Got Recv(int timeout_ms, Msg* out) override {
    const auto timeout = std::chrono::milliseconds(timeout_ms);
    fb::BusFrame info;
    if (view_mode_) {
      // Held until the next ReadView (which releases it), as a consumer would.
      view_ = reader_->ReadView(timeout);
      if (!view_) return Got::kTimeout;
      out->recv_ns = NowNs();
      info = view_.info();
    } else {
      auto frame = reader_->ReadCopy(timeout, &info);
      if (!frame) return Got::kTimeout;
      out->recv_ns = NowNs();
      frame_ = std::move(*frame);
    }
    out->kind = static_cast<Kind>(info.meta.source_id);
    out->seq = info.meta.sequence;
    out->stamp_ns = static_cast<int64_t>(info.checksum);
    return Got::kFrame;
  }

 private:
  RoleArgs args_;
  bool view_mode_;
  std::unique_ptr<fb::BusReader> reader_;
  fb::BusReader::View view_;
  freshframe::Frame frame_;
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

std::unique_ptr<Subscriber> MakeSubscriber(const RoleArgs& a) {
  auto t = ParseTransport(a.transport);
  if (!t) return nullptr;
  switch (*t) {
    case Transport::kBusView:
    case Transport::kBusPublish:
      return std::make_unique<BusSubscriber>(a, true);
    case Transport::kBusCopy:
      return std::make_unique<BusSubscriber>(a, false);
    case Transport::kUds:
      return std::make_unique<UdsSubscriber>(a);
    case Transport::kZmq:
      return std::make_unique<ZmqSubscriber>(a);
  }
  return nullptr;
}

}  // namespace

int RunWriter(const RoleArgs& a) {
  InstallStopHandler();
  auto pub = MakePublisher(a);
  if (!pub || !pub->Setup()) return 2;
  Say("ready");
  std::string line;
  if (!WaitForLine(&line) || line != "go") return 2;
  if (!pub->Attach()) return 2;

  const bool latency = a.mode == "latency";
  const auto period = static_cast<int64_t>(1e9 / a.rate_hz);
  uint64_t seq = 0;
  // Warm-up: page faults, caches, socket buffers, ZeroMQ's first messages.
  int64_t next = NowNs();
  for (int i = 0; i < a.warm && !g_stop; ++i) {
    if (latency) {
      SleepUntil(next);
      next += period;
    }
    if (!pub->Prepare() || !pub->Send(Kind::kWarm, ++seq, NowNs())) return 2;
  }

  std::vector<int64_t> before;
  std::vector<int64_t> after;
  const Usage usage0 = Now();
  uint64_t published = 0;
  int64_t start = 0;
  int64_t end = 0;
  if (latency) {
    before.reserve(static_cast<size_t>(a.frames));
    after.reserve(static_cast<size_t>(a.frames));
    next = NowNs() + period;
    for (int64_t i = 0; i < a.frames && !g_stop; ++i) {
      SleepUntil(next);
      // A transport slower than the rate makes the writer late: do not burst
      // to catch up (the rate achieved is reported).
      next = std::max(next + period, NowNs());
      if (!pub->Prepare()) return 2;
      const int64_t stamp = NowNs();
      if (!pub->Send(Kind::kMeasure, ++seq, stamp)) return 2;
      const int64_t done = NowNs();
      before.push_back(stamp);
      after.push_back(done);
      if (published == 0) start = stamp;
      end = done;
      ++published;
    }
  } else {
    start = NowNs();
    const auto deadline = start + static_cast<int64_t>(a.seconds * 1e9);
    for (;;) {
      if (NowNs() >= deadline || g_stop) break;
      // Throughput counts producing the frame too (Prepare).
      if (!pub->Prepare()) return 2;
      if (!pub->Send(Kind::kMeasure, ++seq, NowNs())) return 2;
      ++published;
    }
    end = NowNs();
  }
  const Usage usage1 = Now();
  const uint64_t first_seq = seq - published + 1;
  // Let the readers drain before the end marker (UDS is in order anyway).
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  pub->SendEnd(++seq);

  std::string out;
  char buf[160];
  for (size_t i = 0; i < before.size(); ++i) {
    std::snprintf(buf, sizeof buf, "W %llu %lld %lld\n",
                  static_cast<unsigned long long>(first_seq + i), static_cast<long long>(before[i]),
                  static_cast<long long>(after[i]));
    out += buf;
  }
  const double window_s = static_cast<double>(end - start) / 1e9;
  std::snprintf(buf, sizeof buf, "S %llu %lld %llu %.3f %ld %ld",
                static_cast<unsigned long long>(published), static_cast<long long>(end - start),
                static_cast<unsigned long long>(pub->dropped()),
                window_s > 0 ? static_cast<double>(published) / window_s : 0.0,
                usage1.minflt - usage0.minflt, usage1.nivcsw - usage0.nivcsw);
  out += buf;
  Say(out);
  return 0;
}

int RunReader(const RoleArgs& a) {
  InstallStopHandler();
  auto sub = MakeSubscriber(a);
  if (!sub || !sub->Setup()) return 2;
  const bool latency = a.mode == "latency";
  std::vector<Msg> samples;
  if (latency) samples.reserve(static_cast<size_t>(a.frames) + 16);
  Say("ready");

  uint64_t received = 0;
  uint64_t bad = 0;
  int64_t first = 0;
  int64_t last = 0;
  bool timed_out = false;
  int64_t last_activity = NowNs();
  Usage usage0;
  for (;;) {
    Msg m;
    const Got got = sub->Recv(200, &m);
    if (got == Got::kError) {
      bad = 1;
      break;
    }
    if (got == Got::kTimeout) {
      if (g_stop || NowNs() - last_activity > 20'000'000'000LL) {
        timed_out = true;
        break;
      }
      continue;
    }
    last_activity = m.recv_ns;
    if (m.kind == Kind::kEnd) break;
    if (m.kind != Kind::kMeasure) continue;
    ++received;
    if (first == 0) {
      first = m.recv_ns;
      usage0 = Now();
    }
    last = m.recv_ns;
    if (latency) samples.push_back(m);
  }

  std::string out;
  out.reserve(samples.size() * 40 + 100);
  char buf[160];
  for (const Msg& m : samples) {
    std::snprintf(buf, sizeof buf, "L %llu %lld %lld\n", static_cast<unsigned long long>(m.seq),
                  static_cast<long long>(m.recv_ns),
                  static_cast<long long>(m.recv_ns - m.stamp_ns));
    out += buf;
  }
  const Usage usage1 = Now();
  std::snprintf(buf, sizeof buf, "R %llu %lld %lld %d %llu %ld %ld",
                static_cast<unsigned long long>(received), static_cast<long long>(first),
                static_cast<long long>(last), timed_out ? 1 : 0,
                static_cast<unsigned long long>(bad), usage1.minflt - usage0.minflt,
                usage1.nivcsw - usage0.nivcsw);
  out += buf;
  Say(out);
  return 0;
}

}  // namespace busbench
