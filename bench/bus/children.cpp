#include "children.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <sstream>

#include "bus/bus.h"
#include "common.h"

namespace busbench {

volatile std::sig_atomic_t g_interrupted = 0;
std::vector<std::string> g_files;
std::vector<std::string> g_buses;

namespace {

void OnInterrupt(int) { g_interrupted = 1; }

std::vector<pid_t> g_live;  // children started and not reaped yet

void Forget(pid_t pid) {
  g_live.erase(std::remove(g_live.begin(), g_live.end(), pid), g_live.end());
}

}  // namespace

std::string SelfExe() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  return std::string(buf, static_cast<size_t>(n));
}

bool Spawn(const std::string& exe, const std::vector<std::string>& args, bool with_stdin,
           Child* c) {
  int out[2] = {-1, -1};
  int in[2] = {-1, -1};
  if (pipe2(out, O_CLOEXEC) != 0) return false;
  if (with_stdin && pipe2(in, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    return false;
  }
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(exe.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    // Own process group: the terminal's Ctrl-C reaches the driver only,
    // which stops its children by pid. Dies with the driver.
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    dup2(out[1], STDOUT_FILENO);
    dup2(with_stdin ? in[0] : devnull, STDIN_FILENO);
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
  if (devnull >= 0) close(devnull);
  close(out[1]);
  if (with_stdin) close(in[0]);
  if (pid < 0) {
    close(out[0]);
    if (with_stdin) close(in[1]);
    return false;
  }
  c->pid = pid;
  c->out = out[0];
  c->in = with_stdin ? in[1] : -1;
  g_live.push_back(pid);
  return true;
}

bool Pump(const std::vector<Child*>& kids, int64_t deadline_ns, const std::function<bool()>& done) {
  for (;;) {
    if (done()) return true;
    if (g_interrupted) return false;
    const int64_t now = NowNs();
    if (now >= deadline_ns) return false;
    std::vector<pollfd> fds;
    std::vector<Child*> who;
    for (Child* k : kids) {
      if (!k->eof) {
        fds.push_back(pollfd{k->out, POLLIN, 0});
        who.push_back(k);
      }
    }
    if (fds.empty()) return done();
    const auto timeout =
        static_cast<int>(std::min<int64_t>((deadline_ns - now) / 1'000'000 + 1, 200));
    const int r = poll(fds.data(), fds.size(), timeout);
    if (r < 0 && errno != EINTR) return false;
    for (size_t i = 0; r > 0 && i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      char buf[65536];
      const ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        who[i]->text.append(buf, static_cast<size_t>(n));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        who[i]->eof = true;
        close(who[i]->out);
        who[i]->out = -1;
      }
    }
  }
}

bool AllEof(const std::vector<Child*>& kids) {
  return std::all_of(kids.begin(), kids.end(), [](const Child* k) { return k->eof; });
}

bool Ready(const Child* k) { return k->text.rfind("ready\n", 0) == 0; }

void Reap(const std::vector<Child*>& kids, int64_t grace_ns) {
  auto wait_all = [&](int64_t until) {
    for (;;) {
      bool pending = false;
      for (Child* k : kids) {
        if (k->pid <= 0) continue;
        int status = 0;
        const pid_t r = waitpid(k->pid, &status, WNOHANG);
        if (r == k->pid) {
          k->status = status;
          Forget(k->pid);
          k->pid = -1;
        } else {
          pending = true;
        }
      }
      if (!pending) return true;
      if (NowNs() >= until) return false;
      usleep(5000);
    }
  };
  if (!wait_all(NowNs() + grace_ns)) {
    for (Child* k : kids) {
      if (k->pid > 0) kill(k->pid, SIGTERM);
    }
    if (!wait_all(NowNs() + 2 * kSecond)) {
      for (Child* k : kids) {
        if (k->pid > 0) kill(k->pid, SIGKILL);
      }
      wait_all(NowNs() + 10 * kSecond);
    }
  }
  for (Child* k : kids) {
    if (k->out >= 0) close(k->out);
    if (k->in >= 0) close(k->in);
    k->out = k->in = -1;
  }
}

bool ExitedOk(const Child& k) { return WIFEXITED(k.status) && WEXITSTATUS(k.status) == 0; }

std::vector<std::string> Lines(const Child& k) {
  std::vector<std::string> lines;
  std::istringstream in(k.text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line != "ready") lines.push_back(line);
  }
  return lines;
}

void Cleanup() {
  for (pid_t pid : g_live) kill(pid, SIGKILL);
  for (pid_t pid : g_live) waitpid(pid, nullptr, 0);
  g_live.clear();
  for (const auto& f : g_files) unlink(f.c_str());
  g_files.clear();
  for (const auto& b : g_buses) freshframe::bus::BusWriter::Unlink(b);
  g_buses.clear();
}

void InstallInterruptHandler() {
  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

}  // namespace busbench
