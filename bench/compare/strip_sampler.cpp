// strip_sampler: one MJPEG viewer that records every part it receives.
//
// `freshframe probe` reports percentiles only; bench/compare also needs each
// frame's latency with its arrival time (latency over time, CDFs, the
// measurement window cut out of a longer connection). This client is built
// from the probe's own pieces (ParseUrl/Resolve, the response-head parser,
// MultipartBody and StripDecoder), so it reads the pixels
// exactly as the probe does: the part's arrival time is taken when the recv()
// that completed it returns, and the strip alone decides the capture time.
// Werkzeug and gunicorn send an endless response chunked; that is decoded.
//
// Usage:
//   strip_sampler --url http://127.0.0.1:PORT/stream.mjpg --seconds 20 --samples FILE
// FILE gets one CSV line per part: recv_us,capture_us,bytes (CLOCK_MONOTONIC
// microseconds; capture_us is -1 when the part has no readable strip).
// stdout gets one JSON object at the end: parts, no_strip, distinct (parts
// whose capture time differs from the previous part's: new pictures),
// connected_us, end_us, error. Exit status 0, or 1 if the stream failed
// (connect, non-200, not multipart, broken), 2 for a bad command line.
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "httpclient/http_response.h"
#include "httpclient/multipart_body.h"
#include "httpclient/text_util.h"
#include "probe/probe.h"
#include "probe/probe_client.h"
#include "probe/strip_decoder.h"

namespace {

namespace httpclient = freshframe::httpclient;
namespace probe = freshframe::probe;
using freshframe::MonotonicMicros;

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

constexpr size_t kReadBytes = 256u << 10;
constexpr int kRecvSliceMs = 100;  // how often the deadline and signals are looked at

struct Result {
  uint64_t parts = 0;
  uint64_t no_strip = 0;
  uint64_t distinct = 0;
  int64_t connected_us = 0;
  int64_t end_us = 0;
  std::string error;
};

class Sampler {
 public:
  Sampler(std::FILE* out, Result* result) : out_(out), result_(result) {}

  // Connects, checks the head, then records parts until `deadline_us`.
  void Run(const httpclient::Url& url, int64_t deadline_us) {
    std::vector<probe::Address> addresses;
    if (!probe::Resolve(url, &addresses, &result_->error)) return;
    for (const auto& address : addresses) {
      fd_ = socket(address.storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd_ < 0) continue;
      // A blocking connect to loopback; the receive timeout below bounds the rest.
      if (connect(fd_, reinterpret_cast<const sockaddr*>(&address.storage), address.length) == 0) {
        break;
      }
      result_->error = address.text + ": " + std::strerror(errno);
      close(fd_);
      fd_ = -1;
    }
    if (fd_ < 0) return;
    result_->error.clear();
    result_->connected_us = MonotonicMicros();
    timeval slice{0, kRecvSliceMs * 1000};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &slice, sizeof slice);
    const std::string request = "GET " + url.target + " HTTP/1.1\r\nHost: " + url.HostHeader() +
                                "\r\nUser-Agent: freshframe-strip-sampler\r\n\r\n";
    if (send(fd_, request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size())) {
      result_->error = std::string("send: ") + std::strerror(errno);
    } else {
      Receive(deadline_us);
    }
    result_->end_us = MonotonicMicros();
    close(fd_);
  }

 private:
  void Receive(int64_t deadline_us) {
    std::vector<char> buffer(kReadBytes);
    std::string head;
    bool have_head = false;
    while (!g_stop) {
      const int64_t now_before = MonotonicMicros();
      if (now_before >= deadline_us) return;
      const ssize_t n = recv(fd_, buffer.data(), buffer.size(), 0);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
      if (n <= 0) {
        result_->error =
            n == 0 ? "server closed the stream" : std::string("recv: ") + std::strerror(errno);
        return;
      }
      const int64_t now_us = MonotonicMicros();  // as the probe: when the bytes arrived
      std::string_view bytes(buffer.data(), static_cast<size_t>(n));
      if (!have_head) {
        head.append(bytes);
        const size_t end = httpclient::FindHeadEnd(head);
        if (end == std::string::npos) {
          if (head.size() > httpclient::kMaxResponseHeadBytes) {
            result_->error = "response head too long";
            return;
          }
          continue;
        }
        if (!StartBody(std::string_view(head).substr(0, end))) return;
        have_head = true;
        const std::string rest = head.substr(end);
        if (!OnBytes(rest, now_us)) return;
        continue;
      }
      if (!OnBytes(bytes, now_us)) return;
    }
  }

  bool StartBody(std::string_view head) {
    std::string why;
    const auto response = httpclient::ParseResponseHead(head, &why);
    if (!response) {
      result_->error = "bad response: " + why;
      return false;
    }
    if (response->status != 200) {
      result_->error = "HTTP " + std::to_string(response->status);
      return false;
    }
    const std::string* type = response->Find("content-type");
    auto boundary = type != nullptr ? httpclient::MultipartBoundary(*type) : std::nullopt;
    if (!boundary) {
      result_->error = "not a multipart stream";
      return false;
    }
    const std::string* te = response->Find("transfer-encoding");
    body_.emplace(std::move(*boundary), te != nullptr && httpclient::AsciiLower(*te) == "chunked");
    return true;
  }

  bool OnBytes(std::string_view bytes, int64_t now_us) {
    switch (body_->Feed(bytes, [&](std::string_view part) { OnPart(part, now_us); })) {
      case httpclient::MultipartBody::Status::kMore:
        return true;
      case httpclient::MultipartBody::Status::kEnded:
        result_->error = "server ended the stream (" + std::string(body_->ended_by()) + ")";
        return false;
      case httpclient::MultipartBody::Status::kBroken:
        result_->error = body_->error();
        return false;
    }
    return false;
  }

  void OnPart(std::string_view body, int64_t now_us) {
    ++result_->parts;
    const auto reading = decoder_.Read(body, now_us);
    int64_t capture_us = -1;
    if (reading) {
      capture_us = reading->t_us;
      if (capture_us != last_capture_us_) ++result_->distinct;
      last_capture_us_ = capture_us;
    } else {
      ++result_->no_strip;
    }
    std::fprintf(out_, "%lld,%lld,%zu\n", static_cast<long long>(now_us),
                 static_cast<long long>(capture_us), body.size());
  }

  std::FILE* out_;
  Result* result_;
  int fd_ = -1;
  std::optional<httpclient::MultipartBody> body_;
  probe::StripDecoder decoder_;
  int64_t last_capture_us_ = -1;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"One MJPEG viewer that records every part's arrival and timecode strip"};
  std::string url_text;
  double seconds = 10;
  std::string samples_path;
  app.add_option("--url", url_text, "Stream URL, http://HOST:PORT/stream.mjpg")->required();
  app.add_option("--seconds", seconds, "How long to receive")->check(CLI::Range(0.1, 86400.0));
  app.add_option("--samples", samples_path, "CSV file for the per-part lines")->required();
  CLI11_PARSE(app, argc, argv);

  std::string why;
  const auto url = httpclient::ParseUrl(url_text, &why);
  if (!url) {
    std::fprintf(stderr, "strip_sampler: bad --url: %s\n", why.c_str());
    return 2;
  }
  std::FILE* out = std::fopen(samples_path.c_str(), "w");
  if (out == nullptr) {
    std::fprintf(stderr, "strip_sampler: %s: %s\n", samples_path.c_str(), std::strerror(errno));
    return 2;
  }
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGPIPE, SIG_IGN);

  Result result;
  const int64_t deadline_us = MonotonicMicros() + static_cast<int64_t>(seconds * 1e6);
  Sampler(out, &result).Run(*url, deadline_us);
  std::fclose(out);

  const nlohmann::json summary = {
      {"parts", result.parts},       {"no_strip", result.no_strip},
      {"distinct", result.distinct}, {"connected_us", result.connected_us},
      {"end_us", result.end_us},     {"error", result.error}};
  std::printf("%s\n", summary.dump().c_str());
  return result.error.empty() ? 0 : 1;
}
