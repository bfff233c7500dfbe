// http:// multipart MJPEG (another freshframe's /stream.mjpg, an IP camera),
// read natively: one plain HTTP/1.1 connection, httpclient's multipart parser, and
// a TurboJPEG decode of only the newest complete part. Going through
// cv::VideoCapture/FFmpeg instead would add its own buffering, which is
// exactly the hidden latency freshframe exists to avoid.
//
// Capture stamps: a part whose picture carries a readable timecode strip is
// stamped with the strip's time, the capture time at the origin, so latency
// is measured end to end across hops. The strip is in the origin's
// CLOCK_MONOTONIC: when the origin is another host (freshframe's parts carry
// X-Server-Timestamp, from which RemoteClock learns how its clock relates to
// ours), the stamp is translated into this host's clock and the strip is
// rewritten with it, so that everything downstream (stages, viewers, the
// page's meter) sees one clock. Anything else is stamped at receipt: a
// server's X-Frame-Timestamp is never trusted.
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "capture/capture.h"
#include "capture/mjpeg_stream.h"
#include "capture/remote_clock.h"
#include "core/clock.h"
#include "core/timecode.h"
#include "httpclient/http_response.h"
#include "httpclient/multipart_body.h"
#include "httpclient/redact.h"
#include "httpclient/url.h"
#include "jpeg/jpeg.h"

namespace freshframe::capture {
namespace {

constexpr int64_t kConnectTimeoutUs = 2'000'000;   // per resolved address
constexpr int64_t kResponseTimeoutUs = 2'000'000;  // request sent to end of the response head
constexpr int64_t kStallUs = 2'000'000;            // no bytes this long: the stream is dead
constexpr int64_t kPollSliceUs = 100'000;          // how often Read looks at its stop token
constexpr int64_t kFpsWindowUs = 1'000'000;
constexpr size_t kReadBytes = 64u << 10;
// Bytes taken from the socket before a Read looks at what it has: bounds the
// time one Read spends draining a server that sends faster than we read.
constexpr size_t kMaxDrainBytes = 8u << 20;
// A single corrupt part (a network glitch) is skipped; a stream of parts that
// are not JPEGs at all is a failure, so the grabber shows why.
constexpr int kMaxBadPartsInARow = 3;

// Thread-safe, unlike strerror.
std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() { Reset(); }
  Socket(Socket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Socket& operator=(Socket&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  int fd() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// Waits up to `timeout_us` for `events` on `fd`. True if ready (POLLERR and
// POLLHUP count: the recv/send that follows says what happened), false on
// timeout; *error is set if poll itself failed.
bool PollFor(int fd, short events, int64_t timeout_us, std::string* error) {
  const int64_t until = MonotonicMicros() + timeout_us;
  for (;;) {
    const int64_t left = std::max<int64_t>(0, until - MonotonicMicros());
    pollfd p{fd, events, 0};
    const int ready = poll(&p, 1, static_cast<int>((left + 999) / 1000));
    if (ready > 0) return true;
    if (ready == 0) return false;
    if (errno != EINTR) {
      *error = "poll: " + ErrnoText(errno);
      return false;
    }
  }
}

// "HOST:PORT" of a resolved address, for messages.
std::string AddressText(const addrinfo& ai) {
  char host[NI_MAXHOST] = {};
  char port[NI_MAXSERV] = {};
  if (getnameinfo(ai.ai_addr, ai.ai_addrlen, host, sizeof host, port, sizeof port,
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return "?";
  }
  const std::string text(host);
  return (ai.ai_family == AF_INET6 ? "[" + text + "]" : text) + ":" + port;
}

// A non-blocking connection to `ai`, or an invalid Socket and *error.
Socket ConnectTo(const addrinfo& ai, std::string* error) {
  const std::string where = AddressText(ai);
  Socket socket(::socket(ai.ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!socket.valid()) {
    *error = where + ": socket: " + ErrnoText(errno);
    return {};
  }
  if (connect(socket.fd(), ai.ai_addr, ai.ai_addrlen) != 0) {
    if (errno != EINPROGRESS) {
      *error = where + ": " + ErrnoText(errno);
      return {};
    }
    std::string poll_error;
    if (!PollFor(socket.fd(), POLLOUT, kConnectTimeoutUs, &poll_error)) {
      *error = where + ": " + (poll_error.empty() ? "connection timed out (2 s)" : poll_error);
      return {};
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(socket.fd(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) {
      *error = where + ": " + ErrnoText(err);
      return {};
    }
  }
  return socket;
}

bool SendAll(int fd, std::string_view data, int64_t until_us, std::string* error) {
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
    if (!PollFor(fd, POLLOUT, until_us - MonotonicMicros(), error)) {
      if (error->empty()) *error = "could not send the request";
      return false;
    }
  }
  return true;
}

class MjpegSource final : public FrameSource {
 public:
  MjpegSource(SourceSpec spec, std::string bearer_token)
      : spec_(std::move(spec)),
        shown_(httpclient::RedactUrl(spec_.location)),
        bearer_token_(std::move(bearer_token)) {}

  Expected<bool> Open() override {
    Close();
    // Every message names the URL as shown_: redacted, never with secrets.
    const std::string& url_text = shown_;
    std::string why;
    const auto url = httpclient::ParseUrl(spec_.location, &why);
    if (!url) return Error{"bad URL " + url_text + ": " + why};

    // Resolved on every (re)open: the name may point elsewhere by now.
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* list = nullptr;
    const int rc = getaddrinfo(url->host.c_str(), std::to_string(url->port).c_str(), &hints, &list);
    if (rc != 0) {
      return Error{"cannot open " + url_text + ": cannot resolve " + url->host + ": " +
                   gai_strerror(rc)};
    }
    Socket socket;
    std::string errors;
    for (const addrinfo* ai = list; ai != nullptr && !socket.valid(); ai = ai->ai_next) {
      std::string error;
      socket = ConnectTo(*ai, &error);
      if (!socket.valid()) errors += (errors.empty() ? "" : "; ") + error;
    }
    freeaddrinfo(list);
    if (!socket.valid()) return Error{"cannot open " + url_text + ": " + errors};

    const int64_t sent_us = MonotonicMicros();
    // Credentials travel in a header: user info as Basic, --source-token as
    // Bearer. A ?token= in the URL still goes in the target (and is redacted
    // wherever the URL is shown).
    const std::string request = "GET " + url->target + " HTTP/1.1\r\nHost: " + url->HostHeader() +
                                "\r\n" + url->AuthorizationHeader(bearer_token_) +
                                "User-Agent: freshframe\r\n"
                                "Accept: multipart/x-mixed-replace\r\n"
                                "Cache-Control: no-cache\r\nConnection: close\r\n\r\n";
    if (!SendAll(socket.fd(), request, sent_us + kResponseTimeoutUs, &why)) {
      return Error{"cannot open " + url_text + ": " + why};
    }
    std::string head;
    std::string rest;
    if (auto error = ReadHead(socket.fd(), sent_us + kResponseTimeoutUs, &head, &rest)) {
      return Error{"cannot open " + url_text + ": " + *error};
    }
    auto format = ParseMjpegResponse(head, url_text);
    if (!format) return format.error();

    socket_ = std::move(socket);
    body_.emplace(std::move(format->boundary), format->chunked, kMaxMjpegPartBytes);
    remote_clock_.Reset();  // the name may lead to another origin, or it restarted
    last_data_us_ = MonotonicMicros();
    fps_window_start_us_ = last_data_us_;
    fps_window_parts_ = 0;
    if (!rest.empty()) Feed(rest);
    return true;
  }

  ReadResult Read(std::stop_token stop) override {
    if (!socket_.valid()) return ReadResult::Failed(shown_ + " is not open");
    for (;;) {
      if (stop.stop_requested()) return ReadResult::Stopped();
      Drain();
      if (latest_ready_) {
        latest_ready_ = false;
        std::string why;
        if (auto frame = DecodeLatest(&why)) {
          bad_parts_in_a_row_ = 0;
          return ReadResult::Of(std::move(*frame));
        }
        if (++bad_parts_in_a_row_ >= kMaxBadPartsInARow) {
          return ReadResult::Failed(shown_ + " sends parts that are not JPEG (" + why + ")");
        }
        continue;  // skip one bad part; the stream may recover
      }
      // Only once the frames that arrived before it are delivered.
      if (!failure_.empty()) return ReadResult::Failed(failure_);
      if (MonotonicMicros() - last_data_us_ >= kStallUs) {
        return ReadResult::Failed("no data from " + shown_ + " for 2 s");
      }
      const int64_t until_stall = last_data_us_ + kStallUs - MonotonicMicros();
      std::string error;
      PollFor(socket_.fd(), POLLIN, std::clamp<int64_t>(until_stall, 0, kPollSliceUs), &error);
      if (!error.empty()) return ReadResult::Failed(shown_ + ": " + error);
    }
  }

  void Close() override {
    socket_.Reset();
    body_.reset();
    latest_.clear();
    latest_ready_ = false;
    failure_.clear();
    bad_parts_in_a_row_ = 0;
    // Relaxed: a figure for /api/stats; nothing else is published with it.
    fps_.store(0, std::memory_order_relaxed);
  }

  std::string Describe() const override { return httpclient::RedactUrl(spec_.text); }
  // Relaxed: sizes and rate are status figures read by other threads
  // (Grabber::Status); frames carry their own sizes.
  int width() const override { return width_.load(std::memory_order_relaxed); }
  int height() const override { return height_.load(std::memory_order_relaxed); }
  double fps() const override { return fps_.load(std::memory_order_relaxed); }
  bool reconnects() const override { return true; }

 private:
  // Reads the response head until its blank line or `until_us`. Returns an
  // error, or nullopt with the head in *head and the body bytes that came
  // with it in *rest.
  static std::optional<std::string> ReadHead(int fd, int64_t until_us, std::string* head,
                                             std::string* rest) {
    std::vector<char> buffer(kReadBytes);
    for (;;) {
      const ssize_t n = recv(fd, buffer.data(), buffer.size(), 0);
      if (n > 0) {
        head->append(buffer.data(), static_cast<size_t>(n));
        const size_t end = httpclient::FindHeadEnd(*head);
        if (end != std::string::npos) {
          rest->assign(*head, end);
          head->resize(end);
          return std::nullopt;
        }
        if (head->size() > httpclient::kMaxResponseHeadBytes) return "response head too long";
        continue;
      }
      if (n == 0) return "connection closed before a response";
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return "recv: " + ErrnoText(errno);
      std::string error;
      if (!PollFor(fd, POLLIN, until_us - MonotonicMicros(), &error)) {
        return error.empty() ? "no response within 2 s" : error;
      }
    }
  }

  // Takes every byte the socket already holds (up to kMaxDrainBytes) without
  // waiting, and keeps the newest complete part in latest_. Sets failure_ if
  // the stream ended or broke.
  void Drain() {
    if (!failure_.empty()) return;
    if (buffer_.size() != kReadBytes) buffer_.resize(kReadBytes);
    size_t drained = 0;
    while (drained < kMaxDrainBytes && failure_.empty()) {
      const ssize_t n = recv(socket_.fd(), buffer_.data(), buffer_.size(), 0);
      if (n > 0) {
        drained += static_cast<size_t>(n);
        last_data_us_ = MonotonicMicros();
        Feed(std::string_view(buffer_.data(), static_cast<size_t>(n)));
        continue;
      }
      if (n == 0) {
        failure_ = shown_ + " closed the connection";
      } else if (errno == EINTR) {
        continue;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
        failure_ = shown_ + ": " + ErrnoText(errno);
      }
      return;
    }
  }

  // Parses bytes received now (last_data_us_) and keeps the newest complete
  // part. Older parts completed by the same bytes are dropped undecoded: the
  // freshest frame wins, and decoding frames nobody will see costs CPU.
  void Feed(std::string_view bytes) {
    const auto status = body_->Feed(bytes, [this](const httpclient::MultipartParser::Part& part) {
      if (const std::string* sent = part.Find("x-server-timestamp")) {
        if (const std::optional<int64_t> sent_us = ParseStampSeconds(*sent)) {
          remote_clock_.Sample(last_data_us_, *sent_us);
        }
      }
      latest_.assign(part.body);
      latest_ready_ = true;
      latest_received_us_ = last_data_us_;
      // Numbered by part, so that the grabber sees dropped parts as gaps in
      // the sequence and counts them as skipped.
      ++parts_;
      CountForFps();
    });
    if (status == httpclient::MultipartBody::Status::kEnded) {
      failure_ = shown_ + " ended the stream";
    } else if (status == httpclient::MultipartBody::Status::kBroken) {
      failure_ = shown_ + ": " + body_->error();
    }
  }

  void CountForFps() {
    ++fps_window_parts_;
    const int64_t elapsed = last_data_us_ - fps_window_start_us_;
    if (elapsed >= kFpsWindowUs) {
      fps_.store(static_cast<double>(fps_window_parts_) * 1e6 / static_cast<double>(elapsed),
                 std::memory_order_relaxed);
      fps_window_start_us_ = last_data_us_;
      fps_window_parts_ = 0;
    }
  }

  std::optional<Frame> DecodeLatest(std::string* why) {
    if (std::string problem = JpegPartProblem(latest_); !problem.empty()) {
      *why = std::move(problem);
      return std::nullopt;
    }
    auto image =
        jpeg::DecodeJpeg(reinterpret_cast<const unsigned char*>(latest_.data()), latest_.size());
    if (!image) {
      *why = image.error().message;
      return std::nullopt;
    }
    Frame frame;
    frame.meta.sequence = parts_;
    frame.meta.width = image->cols;
    frame.meta.height = image->rows;
    frame.meta.format = PixelFormat::kBgr24;
    frame.meta.stamps.capture_us = latest_received_us_;
    // The strip's time is when the origin captured the picture, in the
    // origin's clock: read against the origin's now, then translated. A stamp
    // after our own receipt cannot be a capture time (a clock we could not
    // relate to ours, that happened to look plausible): then receipt time.
    const int64_t offset = remote_clock_.offset().value_or(0);
    bool translated = false;
    if (const auto reading = timecode::Read(*image, latest_received_us_ - offset)) {
      const int64_t capture_us = reading->t_us + offset;
      if (capture_us <= latest_received_us_) {
        frame.meta.stamps.capture_us = capture_us;
        translated = offset != 0;
      }
    }
    frame.image = std::move(image).value();
    if (translated) timecode::Write(frame.image, frame.meta.stamps.capture_us);
    width_.store(frame.image.cols, std::memory_order_relaxed);
    height_.store(frame.image.rows, std::memory_order_relaxed);
    return frame;
  }

  const SourceSpec spec_;
  const std::string shown_;         // spec_.location redacted, for every message
  const std::string bearer_token_;  // --source-token, sent as Bearer; may be empty
  Socket socket_;
  std::optional<httpclient::MultipartBody> body_;  // de-chunking and parts, while open
  RemoteClock remote_clock_;  // the origin's clock; learnt anew on every connection
  std::vector<char> buffer_;  // recv buffer, kept between reads
  std::string latest_;        // the newest complete part's body, not yet decoded
  bool latest_ready_ = false;
  int64_t latest_received_us_ = 0;
  std::string failure_;  // why the stream is over, reported after its last frame
  int64_t last_data_us_ = 0;
  int bad_parts_in_a_row_ = 0;
  uint64_t parts_ = 0;  // parts received over the source's life: its sequence numbers
  int64_t fps_window_start_us_ = 0;
  uint64_t fps_window_parts_ = 0;
  std::atomic<int> width_{0};
  std::atomic<int> height_{0};
  std::atomic<double> fps_{0};
};

}  // namespace

std::unique_ptr<FrameSource> MakeMjpegSource(const SourceSpec& spec, const SourceOptions& options) {
  return std::make_unique<MjpegSource>(spec, options.token);
}

}  // namespace freshframe::capture
