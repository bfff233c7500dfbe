// bus_bench child processes: what the writer and reader loops (roles.cpp)
// need from a transport: the Publisher and Subscriber interfaces, and the
// factories of their implementations (roles_bus.cpp: the freshframe bus;
// roles_sockets.cpp: the Unix domain socket and ZeroMQ; roles_floor.cpp: the
// bare futex wake-up that is the machine's floor).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <opencv2/core.hpp>

#include "common.h"

namespace busbench {

// An error on stderr, with the pid.
void Fail(const std::string& what);
// "<what>: <strerror(errno)>".
std::string Errno(const std::string& what);

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

// The writer's frame: random pixels of the run's size.
cv::Mat TestImage(const RoleArgs& a);

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

std::unique_ptr<Publisher> MakeBusPublisher(const RoleArgs& a, bool in_place);
std::unique_ptr<Subscriber> MakeBusSubscriber(const RoleArgs& a, bool view);
std::unique_ptr<Publisher> MakeUdsPublisher(const RoleArgs& a);
std::unique_ptr<Subscriber> MakeUdsSubscriber(const RoleArgs& a);
std::unique_ptr<Publisher> MakeZmqPublisher(const RoleArgs& a);
std::unique_ptr<Subscriber> MakeZmqSubscriber(const RoleArgs& a);
std::unique_ptr<Publisher> MakeFloorPublisher(const RoleArgs& a);
std::unique_ptr<Subscriber> MakeFloorSubscriber(const RoleArgs& a);

}  // namespace busbench
