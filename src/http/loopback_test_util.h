// Test helper: a TCP connection to 127.0.0.1:port for the http tests that
// drive a real Server, with a 5 s receive timeout so that a reply that never
// comes fails the test instead of hanging it.
//
// Header-only, for the http *_test.cpp files. The caller owns the socket
// (close it); it is returned even when connect() failed.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cstdint>

namespace freshframe::http {

struct LoopbackSocket {
  int fd = -1;
  bool connected = false;
};

// `rcvbuf` > 0 sets SO_RCVBUF before connecting (a small advertised window,
// to play a slow reader).
inline LoopbackSocket ConnectLoopback(uint16_t port, int rcvbuf = 0) {
  LoopbackSocket s;
  s.fd = socket(AF_INET, SOCK_STREAM, 0);
  if (rcvbuf > 0) setsockopt(s.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  timeval timeout{5, 0};
  setsockopt(s.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  s.connected = connect(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  return s;
}

}  // namespace freshframe::http
