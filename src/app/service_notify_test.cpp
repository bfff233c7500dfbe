#include "app/service_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include <gtest/gtest.h>

namespace freshframe::app {
namespace {

// A datagram socket standing in for systemd's, bound at `name` ("/path" or
// "@abstract").
class FakeServiceManager {
 public:
  explicit FakeServiceManager(const std::string& name) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, name.data(), name.size());
    if (name[0] == '@') address.sun_path[0] = '\0';
    if (name[0] == '/') unlink(name.c_str());
    const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
    bound_ = bind(fd_, reinterpret_cast<const sockaddr*>(&address), length) == 0;
    timeval timeout{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  ~FakeServiceManager() { close(fd_); }
  bool bound() const { return bound_; }
  std::string Receive() {
    char buffer[256];
    const ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
    return n < 0 ? std::string() : std::string(buffer, static_cast<size_t>(n));
  }

 private:
  int fd_ = -1;
  bool bound_ = false;
};

TEST(ServiceNotifyTest, SendsEachStateAsOneDatagramToAPath) {
  const std::string path = ::testing::TempDir() + "notify." + std::to_string(getpid());
  FakeServiceManager manager(path);
  ASSERT_TRUE(manager.bound());
  const ServiceNotifier notifier(path);
  EXPECT_TRUE(notifier.enabled());
  ASSERT_TRUE(notifier.Notify("READY=1").ok());
  EXPECT_EQ(manager.Receive(), "READY=1");
  ASSERT_TRUE(notifier.Notify("RELOADING=1").ok());
  EXPECT_EQ(manager.Receive(), "RELOADING=1");
  unlink(path.c_str());
}

TEST(ServiceNotifyTest, AbstractSocket) {
  const std::string name = "@freshframe-notify-test-" + std::to_string(getpid());
  FakeServiceManager manager(name);
  ASSERT_TRUE(manager.bound());
  ASSERT_TRUE(ServiceNotifier(name).Notify("STOPPING=1").ok());
  EXPECT_EQ(manager.Receive(), "STOPPING=1");
}

TEST(ServiceNotifyTest, WithoutASocketNothingIsSent) {
  const ServiceNotifier notifier(std::nullopt);
  EXPECT_FALSE(notifier.enabled());
  auto sent = notifier.Notify("READY=1");
  ASSERT_TRUE(sent.ok());
  EXPECT_FALSE(*sent);
}

TEST(ServiceNotifyTest, BadOrAbsentSocketsAreErrors) {
  EXPECT_NE(ServiceNotifier(std::string("relative/path"))
                .Notify("READY=1")
                .error()
                .message.find("not a socket path"),
            std::string::npos);
  EXPECT_FALSE(ServiceNotifier(std::string(200, '/')).Notify("READY=1").ok());
  const auto absent = ServiceNotifier(::testing::TempDir() + "no-such-socket").Notify("READY=1");
  ASSERT_FALSE(absent.ok());
  EXPECT_NE(absent.error().message.find("cannot notify"), std::string::npos);
}

}  // namespace
}  // namespace freshframe::app
