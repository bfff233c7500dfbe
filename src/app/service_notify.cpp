#include "app/service_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace freshframe::app {

ServiceNotifier ServiceNotifier::FromEnvironment() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  if (socket == nullptr || socket[0] == '\0') return ServiceNotifier(std::nullopt);
  return ServiceNotifier(std::string(socket));
}

Expected<bool> ServiceNotifier::Notify(std::string_view state) const {
  if (!socket_) return false;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string& name = *socket_;
  // systemd's own are paths or abstract ("@..."); anything else is refused
  // rather than truncated.
  if ((name[0] != '/' && name[0] != '@') || name.size() >= sizeof address.sun_path) {
    return Error{"NOTIFY_SOCKET is not a socket path: " + name};
  }
  std::memcpy(address.sun_path, name.data(), name.size());
  if (name[0] == '@') address.sun_path[0] = '\0';
  const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());

  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error{std::string("notify socket: ") + std::strerror(errno)};
  const ssize_t sent = sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                              reinterpret_cast<const sockaddr*>(&address), length);
  const int send_errno = errno;
  close(fd);
  if (sent != static_cast<ssize_t>(state.size())) {
    return Error{"cannot notify " + name + ": " + std::strerror(send_errno)};
  }
  return true;
}

}  // namespace freshframe::app
