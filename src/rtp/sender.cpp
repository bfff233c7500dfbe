#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "rtp/packetizer.h"
#include "rtp/rtcp.h"
#include "rtp/rtp.h"

namespace freshframe::rtp {
namespace {

using namespace std::chrono_literals;

// How long the thread waits for an access unit before it looks at RTCP and
// the clock again: a PLI waits at most this long (plus the next frame).
constexpr auto kPollInterval = 20ms;
constexpr int64_t kSenderReportIntervalUs = 1'000'000;
// Access units sent without an ICMP error coming back before the target
// counts as reached: the error for the first one arrives (an RTT later)
// before the second is sent, one frame period later.
constexpr int kUnitsToConnect = 2;
// A connection that lasted this long resets the backoff.
constexpr int64_t kLastedUs = 10'000'000;
// RTCP datagrams read per turn, so that a flood cannot hold the sender.
constexpr int kMaxRtcpPerTurn = 64;
constexpr std::string_view kCname = "freshframe";

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

std::string Errno(int error) { return std::strerror(error); }

struct Address {
  sockaddr_storage storage{};
  socklen_t size = 0;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  int family() const { return storage.ss_family; }
  void set_port(uint16_t port) {
    if (family() == AF_INET6) {
      reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port = htons(port);
    } else {
      reinterpret_cast<sockaddr_in*>(&storage)->sin_port = htons(port);
    }
  }
  uint16_t port() const {
    return ntohs(family() == AF_INET6 ? reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port
                                      : reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  }
  // The same host (the port aside).
  bool SameHost(const sockaddr_storage& other) const {
    if (other.ss_family != storage.ss_family) return false;
    if (family() == AF_INET6) {
      return std::memcmp(&reinterpret_cast<const sockaddr_in6*>(&other)->sin6_addr,
                         &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr,
                         sizeof(in6_addr)) == 0;
    }
    return reinterpret_cast<const sockaddr_in*>(&other)->sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr.s_addr;
  }
};

Expected<Address> Resolve(const std::string& host, int family, bool passive) {
  addrinfo hints{};
  hints.ai_family = family;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo* found = nullptr;
  const int status = getaddrinfo(host.empty() ? nullptr : host.c_str(), "0", &hints, &found);
  if (status != 0) return Error{"cannot resolve '" + host + "': " + gai_strerror(status)};
  Address address;
  std::memcpy(&address.storage, found->ai_addr, found->ai_addrlen);
  address.size = found->ai_addrlen;
  freeaddrinfo(found);
  return address;
}

// The RTP socket (connected to the target, so that an ICMP "port
// unreachable" comes back as ECONNREFUSED) and the RTCP socket on the next
// local port when it is free (RFC 3550's pair; receivers do not rely on
// it), not connected: it sends to the target's RTCP port and hears the
// target host from any port.
struct Sockets {
  Fd rtp;
  Fd rtcp;
  Address target_rtp;
  Address target_rtcp;
};

Expected<Fd> BoundSocket(const Address& local) {
  Fd fd(socket(local.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return Error{"socket: " + Errno(errno)};
  if (bind(fd.get(), local.get(), local.size) != 0) return Error{"bind: " + Errno(errno)};
  return fd;
}

Expected<Sockets> OpenSockets(const RtpOptions& options) {
  Sockets sockets;
  Expected<Address> target = Resolve(options.target.host, AF_UNSPEC, false);
  if (!target) return target.error();
  sockets.target_rtp = *target;
  sockets.target_rtp.set_port(options.target.port);
  sockets.target_rtcp = *target;
  sockets.target_rtcp.set_port(static_cast<uint16_t>(options.target.port + 1));
  Expected<Address> local = Resolve(options.bind_address, target->family(), true);
  if (!local) return local.error();
  for (int attempt = 0; attempt < 8 && !sockets.rtcp; ++attempt) {
    Expected<Fd> rtp = BoundSocket(*local);
    if (!rtp) return rtp.error();
    Address bound;
    bound.size = sizeof(bound.storage);
    getsockname(rtp->get(), reinterpret_cast<sockaddr*>(&bound.storage), &bound.size);
    Address pair = *local;
    pair.set_port(static_cast<uint16_t>(bound.port() + 1));
    Expected<Fd> rtcp = BoundSocket(pair);
    sockets.rtp = std::move(*rtp);
    if (rtcp) sockets.rtcp = std::move(*rtcp);
  }
  if (!sockets.rtcp) {
    Expected<Fd> rtcp = BoundSocket(*local);
    if (!rtcp) return rtcp.error();
    sockets.rtcp = std::move(*rtcp);
  }
  if (connect(sockets.rtp.get(), sockets.target_rtp.get(), sockets.target_rtp.size) != 0) {
    return Error{"connect: " + Errno(errno)};
  }
  return sockets;
}

// Errors a connected UDP socket reports for ICMP coming back: the target
// host has no one on the port, or cannot be reached.
bool Unreachable(int error) {
  return error == ECONNREFUSED || error == EHOSTUNREACH || error == ENETUNREACH ||
         error == EHOSTDOWN;
}

}  // namespace

struct RtpSender::Impl {
  Impl(RtpOptions opts, egress::SubscribeFn subscribe, Demand& demand,
       h264::KeyframeRequests& requests)
      : options(std::move(opts)),
        keyframes(requests),
        status("rtp", ToString(options.target)),
        feed(std::move(subscribe), demand, requests) {
    std::random_device random;
    ssrc = random();
    first_sequence = static_cast<uint16_t>(random());
    timestamp_offset = random();
  }

  void Run(const std::stop_token& stop);
  // One access unit; false if the target went away (state set).
  bool SendUnit(const encode::EncodedFrame& unit);
  void ReadRtcp();
  void SendSenderReport();
  void GoDown(const std::string& why);
  // Waits for the next access unit and drops it: nothing is sent until the
  // next attempt (a feed left full would skip and ask for an IDR every
  // time, making the encoder send IDRs nobody receives).
  void DropOne() {
    if (feed.Next(kPollInterval)) dropped_while_down.fetch_add(1, std::memory_order_relaxed);
  }
  uint32_t RtpTime(int64_t monotonic_us) const {
    // 90 kHz from CLOCK_MONOTONIC microseconds (wraps, as RTP time does).
    return timestamp_offset + static_cast<uint32_t>(static_cast<uint64_t>(monotonic_us) * 9 / 100);
  }

  const RtpOptions options;
  h264::KeyframeRequests& keyframes;
  egress::OutputStatus status;
  egress::Feed feed;
  uint32_t ssrc = 0;
  uint16_t first_sequence = 0;
  uint32_t timestamp_offset = 0;

  // The thread's own state.
  std::optional<Sockets> sockets;
  std::optional<Packetizer> packetizer;
  egress::Backoff backoff;
  bool down = false;     // the target refused: waiting to try again
  bool probing = false;  // trying again: the feed restarted at an IDR
  int good_units = 0;    // sent without error since (re)connecting
  int64_t retry_at_us = 0;
  int64_t connected_since_us = 0;
  int64_t next_report_us = 0;
  int64_t last_stamp_us = 0;   // of the last access unit sent
  int64_t stamp_shift_us = 0;  // added to capture stamps (see SendUnit)
  std::string last_error;

  // Read by Stats from any thread. Relaxed: independent counters.
  std::atomic<uint64_t> packets{0};
  std::atomic<uint64_t> octets{0};
  std::atomic<uint64_t> send_overflows{0};
  std::atomic<uint64_t> dropped_while_down{0};
  std::atomic<uint64_t> sr_sent{0};
  std::atomic<uint64_t> pli_received{0};
  std::atomic<uint64_t> fir_received{0};
  std::atomic<uint64_t> rr_received{0};
  std::atomic<uint64_t> rtcp_malformed{0};
  std::atomic<uint64_t> rtcp_foreign{0};
  std::atomic<uint16_t> rtcp_port{0};  // local; where the target's PLIs come to
  mutable std::mutex report_mutex;
  std::optional<ReceptionReport> last_report;

  std::jthread thread;  // last: joined before the members it uses go
};

void RtpSender::Impl::GoDown(const std::string& why) {
  if (!down || why != last_error) {
    spdlog::warn("rtp: {}: {}; retrying", status.target(), why);
  }
  last_error = why;
  down = true;
  probing = false;
  good_units = 0;
  const std::chrono::milliseconds wait = backoff.Next();
  retry_at_us =
      MonotonicMicros() + std::chrono::duration_cast<std::chrono::microseconds>(wait).count();
  status.Set(egress::OutputStatus::State::kRetrying, why);
}

bool RtpSender::Impl::SendUnit(const encode::EncodedFrame& unit) {
  // Capture time, shifted so that it never goes back: receivers take an
  // RTP timestamp that goes back (a source whose clock was corrected) as a
  // late frame and drop it. After a step back the shift keeps the frames'
  // spacing; a frame lands at least one tick (11.1 us) after the previous.
  constexpr int64_t kOneTickUs = 12;
  const int64_t captured =
      unit.meta.stamps.capture_us != 0 ? unit.meta.stamps.capture_us : MonotonicMicros();
  if (last_stamp_us != 0 && captured + stamp_shift_us < last_stamp_us + kOneTickUs) {
    stamp_shift_us = last_stamp_us + kOneTickUs - captured;
  }
  const int64_t stamp = captured + stamp_shift_us;
  last_stamp_us = stamp;
  int error = 0;
  size_t bytes = 0;
  const size_t sent =
      packetizer->Packetize(unit.bytes, RtpTime(stamp), [&](std::span<const uint8_t> packet) {
        if (send(sockets->rtp.get(), packet.data(), packet.size(), MSG_DONTWAIT | MSG_NOSIGNAL) <
            0) {
          error = errno;
          return false;
        }
        bytes += packet.size();
        return true;
      });
  packets.fetch_add(sent, std::memory_order_relaxed);
  octets.fetch_add(bytes - sent * kRtpHeaderSize, std::memory_order_relaxed);
  if (error == 0) {
    status.CountSent(bytes, unit.keyframe);
    return true;
  }
  if (error == EAGAIN || error == EWOULDBLOCK || error == ENOBUFS) {
    // The socket's buffer is full: the rest of this access unit is lost,
    // and everything after it until an IDR is useless.
    send_overflows.fetch_add(1, std::memory_order_relaxed);
    feed.Restart(h264::KeyReason::kGap);
    return true;
  }
  if (Unreachable(error)) {
    GoDown(Errno(error) + " (nothing receives on the port, or the host is unreachable)");
  } else {
    GoDown("send: " + Errno(error));
    sockets.reset();  // made again at the next attempt
  }
  return false;
}

void RtpSender::Impl::ReadRtcp() {
  uint8_t buffer[1500];
  for (int i = 0; i < kMaxRtcpPerTurn; ++i) {
    sockaddr_storage from{};
    socklen_t from_size = sizeof(from);
    const ssize_t got = recvfrom(sockets->rtcp.get(), buffer, sizeof(buffer), MSG_DONTWAIT,
                                 reinterpret_cast<sockaddr*>(&from), &from_size);
    if (got < 0) return;  // EAGAIN, or an ICMP error for an SR: nothing to read
    if (!sockets->target_rtcp.SameHost(from)) {
      rtcp_foreign.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    const RtcpSummary summary =
        ParseRtcp(std::span<const uint8_t>(buffer, static_cast<size_t>(got)), ssrc);
    if (summary.malformed) rtcp_malformed.fetch_add(1, std::memory_order_relaxed);
    pli_received.fetch_add(summary.pli, std::memory_order_relaxed);
    fir_received.fetch_add(summary.fir, std::memory_order_relaxed);
    rr_received.fetch_add(summary.receiver_reports, std::memory_order_relaxed);
    if (summary.report) {
      std::lock_guard lock(report_mutex);
      last_report = summary.report;
    }
    // KeyframeRequests coalesces and rate-limits: a flood costs nothing.
    if (summary.pli + summary.fir > 0) keyframes.Request(h264::KeyReason::kPli, MonotonicMicros());
  }
}

void RtpSender::Impl::SendSenderReport() {
  const int64_t monotonic = MonotonicMicros();
  const auto unix_us = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  SenderInfo info;
  info.ssrc = ssrc;
  info.ntp = NtpFromUnixMicros(unix_us);
  info.rtp_timestamp = RtpTime(monotonic + stamp_shift_us);  // as the frames' (SendUnit)
  info.packets = static_cast<uint32_t>(packets.load(std::memory_order_relaxed));
  info.octets = static_cast<uint32_t>(octets.load(std::memory_order_relaxed));
  const std::vector<uint8_t> report = BuildSenderReport(info, kCname);
  const Address& to = sockets->target_rtcp;
  if (sendto(sockets->rtcp.get(), report.data(), report.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
             to.get(), to.size) == static_cast<ssize_t>(report.size())) {
    sr_sent.fetch_add(1, std::memory_order_relaxed);
  }
}

void RtpSender::Impl::Run(const std::stop_token& stop) {
  using State = egress::OutputStatus::State;
  status.Set(State::kConnecting);
  while (!stop.stop_requested()) {
    const int64_t now = MonotonicMicros();
    if (!sockets) {
      if (now < retry_at_us) {
        DropOne();
        continue;
      }
      Expected<Sockets> opened = OpenSockets(options);
      if (!opened) {
        GoDown(opened.error().message);
        continue;
      }
      sockets = std::move(*opened);
      Address local;
      local.size = sizeof(local.storage);
      getsockname(sockets->rtcp.get(), reinterpret_cast<sockaddr*>(&local.storage), &local.size);
      rtcp_port.store(local.port(), std::memory_order_relaxed);
      // New sockets, same stream: the sequence numbers go on.
      if (!packetizer) packetizer.emplace(ssrc, first_sequence, options.payload_type, options.mtu);
    }
    ReadRtcp();
    if (now >= next_report_us) {
      SendSenderReport();
      next_report_us = now + kSenderReportIntervalUs;
    }
    if (down && now < retry_at_us) {
      DropOne();
      continue;
    }
    if (down && !probing) {
      // Try again from an IDR: if the target is back, its first frame is
      // decodable (Janus keeps it for new viewers with videobufferkf).
      feed.Restart(h264::KeyReason::kJoin);
      probing = true;
    }
    const encode::EncodedFramePtr unit = feed.Next(kPollInterval);
    if (!unit || !SendUnit(*unit)) continue;
    if (status.state() != State::kConnected && ++good_units >= kUnitsToConnect) {
      if (down) spdlog::info("rtp: {}: receiving again", status.target());
      down = false;
      probing = false;
      connected_since_us = now;
      status.Set(State::kConnected);
    }
    if (connected_since_us != 0 && now - connected_since_us > kLastedUs) {
      backoff.Reset();
      connected_since_us = 0;
    }
  }
  sockets.reset();
}

RtpSender::RtpSender(RtpOptions options, egress::SubscribeFn subscribe, Demand& demand,
                     h264::KeyframeRequests& keyframes)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(subscribe), demand, keyframes)) {}

RtpSender::~RtpSender() { Stop(); }

void RtpSender::Start() {
  if (impl_->thread.joinable()) return;
  impl_->feed.Start();
  impl_->thread =
      std::jthread([impl = impl_.get()](const std::stop_token& stop) { impl->Run(stop); });
}

void RtpSender::Stop() {
  if (!impl_->thread.joinable()) return;
  impl_->thread.request_stop();
  impl_->feed.Interrupt();
  impl_->thread.join();
  impl_->thread = {};
  impl_->feed.Stop();
  impl_->status.Set(egress::OutputStatus::State::kStopped);
}

nlohmann::json RtpSender::Stats() const {
  const Impl& impl = *impl_;
  nlohmann::json out = impl.status.Json(&impl.feed);
  const auto load = [](const std::atomic<uint64_t>& value) {
    return value.load(std::memory_order_relaxed);
  };
  out["ssrc"] = impl.ssrc;
  out["packets"] = load(impl.packets);
  out["send_overflows"] = load(impl.send_overflows);
  out["dropped_while_retrying"] = load(impl.dropped_while_down);
  nlohmann::json rtcp = {
      {"sr_sent", load(impl.sr_sent)},           {"pli_received", load(impl.pli_received)},
      {"fir_received", load(impl.fir_received)}, {"rr_received", load(impl.rr_received)},
      {"malformed", load(impl.rtcp_malformed)},  {"foreign", load(impl.rtcp_foreign)}};
  rtcp["port"] = impl.rtcp_port.load(std::memory_order_relaxed);
  {
    std::lock_guard lock(impl.report_mutex);
    if (impl.last_report) {
      rtcp["fraction_lost"] = impl.last_report->fraction_lost / 256.0;
      rtcp["cumulative_lost"] = impl.last_report->cumulative_lost;
      rtcp["jitter"] = impl.last_report->jitter;
    }
  }
  out["rtcp"] = std::move(rtcp);
  return out;
}

}  // namespace freshframe::rtp
