// Test helpers for src/bus (included by *_test.cpp only): unique bus names,
// frames, a second mapping of a bus object to inspect or corrupt it, a
// watchdog that ends a spinning read, and helper processes started with
// posix_spawn (a fresh exec of this test binary, never a fork of it).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "bus/bus.h"
#include "bus/bus_layout.h"

extern char** environ;

namespace freshframe::bus::testing {

// A bus name unique to this process and test; unlinked when done.
class TestBus {
 public:
  explicit TestBus(const std::string& tag) : name_("test." + tag + "." + std::to_string(getpid())) {
    BusWriter::Unlink(name_);
  }
  ~TestBus() { BusWriter::Unlink(name_); }
  const std::string& name() const { return name_; }
  std::string path() const { return "/dev/shm/freshframe." + name_; }

 private:
  std::string name_;
};

inline Frame MakeFrame(int width, int height, uint64_t sequence, int channels = 3) {
  Frame frame;
  frame.meta.sequence = sequence;
  frame.meta.width = width;
  frame.meta.height = height;
  frame.meta.stamps.capture_us = static_cast<int64_t>(1000 + sequence);
  frame.image.create(height, width, channels == 3 ? CV_8UC3 : CV_8UC1);
  cv::randu(frame.image, cv::Scalar::all(0), cv::Scalar::all(256));
  return frame;
}

// Options for a bus this test creates with `slots` slots.
inline BusOptions WithSlots(uint32_t slots) {
  BusOptions options;
  options.slots = slots;
  return options;
}

inline uint64_t Checksum(const cv::Mat& image) {
  return PixelChecksum(image.data, image.total() * image.elemSize());
}

// The object now behind a bus name, mapped read/write by the test itself
// (what another process with access could do to it).
class ObjectImage {
 public:
  explicit ObjectImage(const std::string& path) {
    const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st {};
    if (fstat(fd, &st) == 0 && st.st_size > 0) {
      size_ = static_cast<size_t>(st.st_size);
      void* base = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (base != MAP_FAILED) base_ = static_cast<unsigned char*>(base);
    }
    close(fd);
  }
  ~ObjectImage() {
    if (base_ != nullptr) munmap(base_, size_);
  }
  ObjectImage(const ObjectImage&) = delete;
  ObjectImage& operator=(const ObjectImage&) = delete;

  bool ok() const { return base_ != nullptr; }
  layout::Header& header() const { return *reinterpret_cast<layout::Header*>(base_); }
  // Slot `index` by the header's geometry as written at creation.
  layout::SlotHeader& slot(uint32_t index) const {
    return *reinterpret_cast<layout::SlotHeader*>(base_ + header().slots_offset +
                                                  index * header().slot_stride);
  }
  uint32_t newest_slot() const {
    return layout::SlotOf(header().newest.load(std::memory_order_acquire));
  }

 private:
  unsigned char* base_ = nullptr;
  size_t size_ = 0;
};

// Runs `repair` if the test has not called Disarm() within `after`: a read
// that spins (the bug a test checks for) then ends, and the test fails on
// fired() instead of hanging. The bound is generous; no test relies on it
// for anything but ending a spin.
class Watchdog {
 public:
  Watchdog(std::chrono::milliseconds after, std::function<void()> repair)
      : thread_([this, after, repair = std::move(repair)] {
          std::unique_lock lock(mutex_);
          if (!cv_.wait_for(lock, after, [this] { return disarmed_; })) {
            fired_ = true;
            repair();
          }
        }) {}
  ~Watchdog() {
    Disarm();
    thread_.join();
  }
  void Disarm() {
    std::lock_guard lock(mutex_);
    disarmed_ = true;
    cv_.notify_all();
  }
  bool fired() {
    std::lock_guard lock(mutex_);
    return fired_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool disarmed_ = false;
  bool fired_ = false;
  std::thread thread_;
};

// A helper process: this test binary run afresh (posix_spawn of
// /proc/self/exe) with --gtest_filter=`test` and `variable`=`value` in its
// environment. The helper test reports on its descriptor 3, which is the
// pipe read by ReadLine(); its stdout goes to /dev/null.
class HelperProcess {
 public:
  HelperProcess(const std::string& test, const std::string& variable, const std::string& value) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 3);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
    env_strings.push_back(variable + "=" + value);
    std::vector<char*> envp;
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::string exe = "/proc/self/exe";
    std::string filter = "--gtest_filter=" + test;
    char* argv[] = {exe.data(), filter.data(), nullptr};
    if (posix_spawn(&pid_, exe.c_str(), &actions, nullptr, argv, envp.data()) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    fd_ = fds[0];
  }
  ~HelperProcess() {
    Kill();
    if (fd_ >= 0) close(fd_);
  }
  HelperProcess(const HelperProcess&) = delete;
  HelperProcess& operator=(const HelperProcess&) = delete;

  pid_t pid() const { return pid_; }

  // The next line the helper wrote on its descriptor 3, or "" if it wrote
  // none within `timeout` (or exited).
  std::string ReadLine(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (const auto end = buffer_.find('\n'); end != std::string::npos) {
        std::string line = buffer_.substr(0, end);
        buffer_.erase(0, end + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || fd_ < 0) return "";
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[256];
      const ssize_t n = read(fd_, chunk, sizeof chunk);
      if (n <= 0) return "";
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

  // SIGKILLs and reaps the helper; its wait status (-1 if there is none).
  int Kill() {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buffer_;
};

// What a helper test writes on its descriptor 3.
inline void ReportToParent(const std::string& line) {
  const std::string text = line + "\n";
  (void)!write(3, text.data(), text.size());
}

}  // namespace freshframe::bus::testing
