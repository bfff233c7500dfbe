// The service manager's readiness protocol (sd_notify(3), written here
// without libsystemd): under systemd with Type=notify, $NOTIFY_SOCKET names
// a datagram socket, and the process sends "READY=1" once it serves,
// "RELOADING=1" ... "READY=1" around a SIGHUP reload and "STOPPING=1" when
// it stops. `systemctl start` then returns when the server really serves,
// and fails (with the process's error in `systemctl status`) when it
// cannot start. Without the variable every call does nothing.
//
// Thread-safety: a ServiceNotifier is immutable after construction; Notify
// may be called from any thread (one datagram per call).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/expected.h"

namespace freshframe::app {

class ServiceNotifier {
 public:
  // From $NOTIFY_SOCKET: a path, or "@name" for an abstract socket.
  static ServiceNotifier FromEnvironment();
  explicit ServiceNotifier(std::optional<std::string> socket) : socket_(std::move(socket)) {}

  bool enabled() const { return socket_.has_value(); }
  // Sends `state` ("READY=1", "STATUS=...\nREADY=1"); an error says why
  // it could not (the service manager then times the start out).
  Expected<bool> Notify(std::string_view state) const;

 private:
  std::optional<std::string> socket_;
};

}  // namespace freshframe::app
