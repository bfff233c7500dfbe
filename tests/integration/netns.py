"""Hosts as network namespaces, for the multi-host tests (issue 18).

A `Hosts` test bed makes one hub namespace holding a bridge, and one
namespace per "host", each joined to the bridge by a veth pair, all on
10.89.0.0/24 (host i is 10.89.0.(i+1)). Traffic stays inside these
namespaces: no host has a route anywhere else (each has a default route via
the bridge's subnet only because Chromium gathers no ICE candidate without
one). Names carry the test's PID, so concurrent tests never collide.

    with netns.Hosts(["cam", "infer", "view"]) as hosts:
        addr = hosts.addr("cam")                        # "10.89.0.1"
        proc = hosts.popen("cam", [BINARY, "run", ...])  # runs inside "cam"
        with hosts.inside("view"):                       # this thread's new sockets
            sock = socket.create_connection((addr, 8080))  # are in "view"

Everything is deleted on exit (processes started with popen are killed by
PID first). `skip_reason()` says why the bed cannot be built (not root, no
`ip`), for unittest.skip.

Standard library only (Debian's /usr/bin/python3).
"""

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import threading
import time

SUBNET = "10.89.0"
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_setns_lock = threading.Lock()


def skip_reason():
    """Why a namespace test bed cannot be built here, or None if it can."""
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root): skipped"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed: skipped"
    name = f"ffchk{os.getpid()}"
    try:
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, timeout=10)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        return f"cannot create a network namespace ({e}): skipped"
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)
    return None


def _ip(*args):
    r = subprocess.run(["ip"] + list(args), capture_output=True, text=True, timeout=15)
    if r.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)}: {r.stderr.strip()}")


def _die_with_parent():
    try:
        _libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Hosts:
    def __init__(self, names):
        self.names = list(names)
        tag = os.getpid() % 100000
        self._tag = tag
        self.hub = f"ffhub{tag}"
        self._ns = {n: f"ff{tag}{n}"[:32] for n in self.names}
        self._procs = []
        self._made = []
        self._files = []

    # -- lifecycle
    def __enter__(self):
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _build(self):
        _ip("netns", "add", self.hub)
        self._made.append(self.hub)
        _ip("-n", self.hub, "link", "set", "lo", "up")
        _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.hub, "link", "set", "br0", "up")
        for i, name in enumerate(self.names):
            ns = self._ns[name]
            _ip("netns", "add", ns)
            self._made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            # Both ends are made in the host's namespace (names only need to
            # be unique there), then one end moves to the hub.
            _ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", f"p{i}")
            _ip("-n", ns, "link", "set", f"p{i}", "netns", self.hub)
            _ip("-n", self.hub, "link", "set", f"p{i}", "master", "br0")
            _ip("-n", self.hub, "link", "set", f"p{i}", "up")
            _ip("-n", ns, "addr", "add", f"{self.addr(name)}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            # A default route inside the subnet: Chromium gathers no ICE
            # candidate without one; nothing routes beyond the bridge.
            _ip("-n", ns, "route", "add", "default", "via", self.addr(name), "dev", "eth0")

    def close(self):
        for proc in self._procs:
            stop(proc)
        self._procs = []
        for f in self._files:
            f.close()
        self._files = []
        for ns in reversed(self._made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=15)
        self._made = []

    # -- queries
    def addr(self, name):
        return f"{SUBNET}.{self.names.index(name) + 1}"

    def netns(self, name):
        return self._ns[name]

    def links(self, name):
        """eth0's byte counters in host `name`: {"rx": n, "tx": n}."""
        out = {}
        for key in ("rx", "tx"):
            r = subprocess.run(["ip", "netns", "exec", self._ns[name], "cat",
                                f"/sys/class/net/eth0/statistics/{key}_bytes"],
                               capture_output=True, text=True, timeout=10)
            out[key] = int(r.stdout.strip() or 0)
        return out

    # -- running things inside a host
    def command(self, name, argv):
        return ["ip", "netns", "exec", self._ns[name]] + list(argv)

    def popen(self, name, argv, **kwargs):
        """Starts argv inside host `name`; killed (by PID) at close()."""
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        proc = subprocess.Popen(self.command(name, argv), preexec_fn=_die_with_parent, **kwargs)
        self._procs.append(proc)
        return proc

    def run(self, name, argv, timeout=60, **kwargs):
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(self.command(name, argv), timeout=timeout, **kwargs)

    @contextlib.contextmanager
    def inside(self, name):
        """Sockets this thread creates inside the block live in host `name`
        (setns switches the calling thread only; sockets keep their
        namespace afterwards)."""
        with _setns_lock:
            own = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
            target = os.open(f"/run/netns/{self._ns[name]}", os.O_RDONLY)
            try:
                if _libc.setns(target, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns failed")
                try:
                    yield
                finally:
                    _libc.setns(own, _CLONE_NEWNET)
            finally:
                os.close(target)
                os.close(own)


def stop(proc, timeout=5.0):
    """SIGTERM, then SIGKILL after `timeout`, of a process we started."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def read_all(f):
    """Everything written so far to a temporary file a process writes to."""
    f.flush()
    pos = f.tell()
    f.seek(0)
    data = f.read()
    f.seek(pos)
    return data


def text(f):
    return read_all(f).decode("utf-8", "replace")


def wait_for(what, predicate, timeout, interval=0.1):
    """predicate()'s first true value within `timeout` s; OSError,
    AssertionError, ValueError and KeyError count as "not yet" (a server
    restarting, a partial answer)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (OSError, AssertionError, ValueError, KeyError) as e:
            last = e
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})")


def start_freshframe(hosts, name, argv, startup_timeout=20.0):
    """Runs `argv` (freshframe's binary and its arguments) inside host
    `name`; returns the process once it printed its "serving on" line, with
    its output files as .out and .err (temporary files, closed with the
    process's host bed)."""
    import tempfile
    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    proc = hosts.popen(name, argv, stdout=out, stderr=err)
    proc.out, proc.err = out, err
    hosts._files += [out, err]
    deadline = time.monotonic() + startup_timeout
    while b"freshframe: serving on" not in read_all(out):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"{name}: no 'serving on' line (exit {proc.poll()})\n"
                                 f"argv: {argv}\nstderr:\n{text(err)[-4000:]}")
        time.sleep(0.05)
    return proc


def wait_port(hosts, name, addr, port, timeout=20.0, udp=False):
    """Waits until a TCP port accepts connections from host `name`."""
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with hosts.inside(name):
                s = socket.create_connection((addr, port), timeout=1.0)
            s.close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{addr}:{port} did not accept connections from {name} in {timeout}s")
