// Internal to src/http: the pieces every streaming session (MJPEG, WebSocket,
// SSE) shares to follow newest-only towards its client.
//
// - NewestOnly: at most one item in flight; while it is, only the newest
//   offered item waits, older ones are skipped, and the skips are counted
//   from the gaps in the items' order.
// - RateCap: a per-client rate limit (?fps=N) decided on send times.
// - DeadlineTimer: one timer whose deadlines replace each other (the write
//   stall, the next due part, a keep-alive).
// - HoldBackUnsent: TCP_NOTSENT_LOWAT, so data does not age in the kernel.
//
// Thread-safety: none; each instance belongs to one session's strand.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

namespace freshframe::http {

// `kOrder` is the item's position in its stream: increasing, gaps = items
// the stream's producer published that this client never got.
template <typename T, uint64_t T::*kOrder>
class NewestOnly {
 public:
  using Ptr = std::shared_ptr<const T>;

  // Whether `item` is newer than everything sent, in flight or waiting.
  bool IsNew(const Ptr& item) const {
    const uint64_t order = Order(item);
    return order > last_sent_ && (!in_flight_ || order > Order(in_flight_)) &&
           (!pending_ || order > Order(pending_));
  }
  // Keeps `item` as the one waiting if it is new (the older one waiting is
  // then skipped).
  void Hold(Ptr item) {
    if (IsNew(item)) pending_ = std::move(item);
  }
  // The item waiting, if any (and it is no longer waiting).
  Ptr TakePending() { return std::exchange(pending_, nullptr); }

  // `item` is being written; one waiting that is not newer is dropped.
  void Begin(Ptr item) {
    if (pending_ && Order(pending_) <= Order(item)) pending_.reset();
    in_flight_ = std::move(item);
  }
  bool busy() const { return in_flight_ != nullptr; }
  const Ptr& in_flight() const { return in_flight_; }
  // The item in flight has been sent. Returns how many items the client
  // skipped between the previous one sent and this one.
  uint64_t Finish() {
    const uint64_t order = Order(in_flight_);
    const uint64_t skipped = last_sent_ == 0 ? 0 : order - last_sent_ - 1;
    last_sent_ = order;
    in_flight_.reset();
    return skipped;
  }
  void Clear() {
    in_flight_.reset();
    pending_.reset();
  }

 private:
  static uint64_t Order(const Ptr& item) { return (*item).*kOrder; }

  Ptr in_flight_;
  Ptr pending_;
  uint64_t last_sent_ = 0;
};

// At most `fps` sends per second, on send times (CLOCK_MONOTONIC us). Sends
// are due on a grid 1/fps apart, so the average is the cap even when each
// send happens a little before or after its due time; a send that comes late
// moves the grid, and the next one is due at least half an interval after it
// (being late earns no burst). Frames arrive with jitter, so one that comes
// less than a quarter interval before its due time counts as due; one that
// comes earlier waits, and is sent a quarter interval after the due time
// unless a newer one has come by then (which is fresher, and sent instead).
// fps 0: no cap.
class RateCap {
 public:
  explicit RateCap(double fps)
      : interval_us_(fps > 0 ? std::max<int64_t>(1, static_cast<int64_t>(1e6 / fps)) : 0),
        slack_us_(interval_us_ / 4) {}

  bool Due(int64_t now_us) const { return interval_us_ == 0 || now_us >= next_due_us_ - slack_us_; }
  // When a part that came too early is sent if nothing newer came.
  int64_t deadline_us() const { return next_due_us_ + slack_us_; }
  void Sent(int64_t now_us) {
    if (interval_us_ == 0) return;
    next_due_us_ = next_due_us_ == 0
                       ? now_us + interval_us_
                       : std::max(next_due_us_ + interval_us_, now_us + interval_us_ / 2);
  }

 private:
  int64_t interval_us_;
  int64_t slack_us_;
  int64_t next_due_us_ = 0;
};

// A steady_timer for deadlines that replace each other. Arm cancels the
// previous wait; a handler runs only if its wait was neither replaced nor
// disarmed, even if the wait had already completed (its handler queued) when
// that happened. Once closed (the owner's session has ended) Arm drops its
// handler at once: a handler keeps its owner alive, and a late Arm on an
// ended session must not hold the connection's places for the interval.
class DeadlineTimer {
 public:
  explicit DeadlineTimer(const boost::asio::any_io_executor& executor) : timer_(executor) {}

  // Runs `handler()` on the timer's executor after `after`. The handler must
  // keep the timer's owner alive (capture its shared_ptr).
  template <typename Handler>
  void Arm(std::chrono::steady_clock::duration after, Handler handler) {
    if (closed_) return;
    const uint64_t arm = ++arm_;
    timer_.expires_after(after);
    timer_.async_wait(
        [this, arm, handler = std::move(handler)](const boost::system::error_code& ec) mutable {
          if (!ec && arm == arm_) handler();
        });
  }
  void Disarm() {
    ++arm_;
    timer_.cancel();
  }
  // Disarms for good.
  void Close() {
    closed_ = true;
    Disarm();
  }

 private:
  boost::asio::steady_timer timer_;
  uint64_t arm_ = 0;
  bool closed_ = false;
};

// Sets TCP_NOTSENT_LOWAT: the socket reports writable (and takes more data)
// only while fewer than `bytes` unsent bytes are queued. False if the kernel
// does not support it.
bool HoldBackUnsent(boost::asio::ip::tcp::socket& socket, int bytes);

}  // namespace freshframe::http
