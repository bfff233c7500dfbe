"""A booted systemd to test the service against, on a machine whose own init
is not systemd: systemd-nspawn boots this machine's own system in a
container whose root is an overlay of / with a tmpfs on top. Everything the
test does inside (installing the package, users, files in /etc, buses in
/dev/shm) lands in the tmpfs and is gone when the container stops; the
container has its own network namespace (loopback only).

    with Booted("fftest") as machine:
        machine.run(["dpkg", "-i", "/var/tmp/fftest/freshframe.deb"])
        machine.run(["systemctl", "is-active", "freshframe"])

Commands run inside through nsenter into the container's PID 1. Root only.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

from debpkg import run


def _children(pid):
    """PIDs whose parent is pid."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


class Booted:
    def __init__(self, name, boot_timeout=90.0):
        self.name = name
        self.boot_timeout = boot_timeout
        self.base = tempfile.mkdtemp(prefix="ffboot.")
        self.layers = os.path.join(self.base, "layers")
        self.root = os.path.join(self.base, "root")
        self.log_path = os.path.join(self.base, "console.log")
        self.nspawn = None
        self.leader = None
        self._mounted = []

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        if shutil.which("systemd-nspawn") is None:
            raise AssertionError("systemd-nspawn is not installed "
                                 "(scripts/install-deps.sh installs systemd-container)")
        os.makedirs(self.layers)
        os.makedirs(self.root)
        self._mount(["-t", "tmpfs", "-o", "size=2g,mode=755", "tmpfs", self.layers])
        for sub in ("upper", "work"):
            os.makedirs(os.path.join(self.layers, sub))
        self._mount(["-t", "overlay", "overlay", "-o",
                     f"lowerdir=/,upperdir={self.layers}/upper,workdir={self.layers}/work",
                     self.root])
        # Its own machine id (journald refuses to link the host's), and
        # nothing that would keep the package scripts from starting units.
        with open(os.path.join(self.root, "etc/machine-id"), "w") as f:
            f.write(uuid.uuid4().hex + "\n")
        policy = os.path.join(self.root, "usr/sbin/policy-rc.d")
        if os.path.lexists(policy):
            os.remove(policy)
        self.console = open(self.log_path, "w")
        # basic.target: journald, D-Bus and udev's part, not the services
        # this machine happens to have enabled (nginx, Janus...).
        self.nspawn = subprocess.Popen(
            ["systemd-nspawn", "--quiet", "--directory", self.root, "--machine", self.name,
             "--private-network", "--register=no", "--keep-unit", "--boot", "--",
             "--unit=basic.target"],
            stdin=subprocess.DEVNULL, stdout=self.console, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + self.boot_timeout
        while self.leader is None:
            self._check_alive()
            for child in self._descendants(self.nspawn.pid):
                if _comm(child) == "systemd":
                    self.leader = child
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"no systemd in the container: {self.console_text()}")
            time.sleep(0.1)
        while True:
            self._check_alive()
            rc, out, _ = self.run(["systemctl", "is-system-running"], check=False, timeout=20)
            if out.strip() in ("running", "degraded"):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"the container did not finish booting ({out.strip()}): "
                                     f"{self.console_text()}")
            time.sleep(0.2)

    def _descendants(self, pid):
        found, todo = [], [pid]
        while todo:
            for child in _children(todo.pop()):
                found.append(child)
                todo.append(child)
        return found

    def _check_alive(self):
        if self.nspawn.poll() is not None:
            raise AssertionError(f"systemd-nspawn exited {self.nspawn.returncode}: "
                                 f"{self.console_text()}")

    def console_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def path(self, inside):
        """The host's path of a file inside the container."""
        return os.path.join(self.root, inside.lstrip("/"))

    def run(self, args, timeout=120, check=True):
        return run(["nsenter", "--target", str(self.leader), "--all", *args],
                   timeout=timeout, check=check)

    def stop(self):
        if self.nspawn is not None and self.nspawn.poll() is None:
            # nspawn's SIGTERM is a clean shutdown of the container.
            self.nspawn.send_signal(signal.SIGTERM)
            try:
                self.nspawn.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.nspawn.pid, signal.SIGKILL)
                self.nspawn.wait(timeout=10)
        if getattr(self, "console", None):
            self.console.close()
        for target in reversed(self._mounted):
            if subprocess.run(["umount", target], capture_output=True).returncode != 0:
                subprocess.run(["umount", "--lazy", target], capture_output=True)
        self._mounted = []
        shutil.rmtree(self.base, ignore_errors=True)

    def _mount(self, args):
        subprocess.run(["mount", *args], check=True, capture_output=True, timeout=30)
        self._mounted.append(args[-1])
