"""The processes bench/fanout/run.py starts: a freshframe server, the
fan-out floor (fanout_floor), fanout_client viewers and a freshframe probe.
Standard library only."""

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), ".."))
from procstat import die_with_parent as _die_with_parent  # noqa: E402

SERVING_RE = re.compile(r"^freshframe: serving on http://([0-9.]+|\[[0-9a-fA-F:.]+\]):(\d+)/$")
FLOOR_RE = re.compile(r"^fanout_floor: serving on http://([0-9.]+):(\d+)/$")


def get_bytes(port, path, timeout=5.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{path} -> {resp.status}")
        return body
    finally:
        conn.close()


def get_json(port, path, timeout=5.0):
    body = get_bytes(port, path, timeout)
    return json.loads(body) if path != "/healthz" else body.decode()


def run_flags(binary):
    """The optional `run` flags this binary has (they are newer than the bench)."""
    out = subprocess.run([binary, "run", "--help"], stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=20).stdout
    flags = []
    for flag in ("--max-connections-per-address", "--max-clients"):
        if flag in out:
            flags += [flag, "1000"]
    return flags


class Server:
    """freshframe run (or, with `cmd` and `serving`, another server that
    prints one "serving on" line first)."""

    def __init__(self, binary, args, cmd=None, serving=SERVING_RE):
        self.cmd = cmd or [binary, "run", "--port", "0"] + args
        self.serving = serving
        self.out = tempfile.TemporaryFile()
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=self.err, preexec_fn=_die_with_parent)
        self.pid = self.proc.pid
        self.port = None
        self.url = None

    def _read(self, f):
        f.flush()
        f.seek(0)
        return f.read().decode("utf-8", "replace")

    def wait_ready(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self._read(self.out)
            if "\n" in text:
                line = text.split("\n", 1)[0].rstrip("\r")
                m = self.serving.match(line)
                if not m:
                    raise RuntimeError(f"unexpected stdout line {line!r}")
                self.port = int(m.group(2))
                self.url = f"http://{m.group(1)}:{self.port}/stream.mjpg"
                return self.url
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.stderr()[-1500:]}")
            time.sleep(0.02)
        raise RuntimeError(f"server not serving within {timeout}s: {self.stderr()[-1500:]}")

    def stderr(self):
        return self._read(self.err)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """SIGTERM, then SIGKILL after 5 s. Returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        self.err.close()
        return self.proc.returncode


class Viewers:
    """fanout_client in the background, driven through its stdin."""

    def __init__(self, client, url, args):
        self.proc = subprocess.Popen([client, "--url", url] + args, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     errors="replace", preexec_fn=_die_with_parent)

    def wait_line(self, prefix, timeout):
        deadline = time.monotonic() + timeout
        # readline blocks: a timer kills the client if it hangs.
        timer = threading.Timer(timeout, self.kill)
        timer.start()
        try:
            line = self.proc.stdout.readline()
        finally:
            timer.cancel()
        if not line.startswith(prefix) or time.monotonic() > deadline:
            raise RuntimeError(f"fanout_client: expected {prefix!r}, got {line!r}; stderr: "
                               f"{self.proc.stderr.read()[-1000:] if self.proc.poll() is not None else ''}")
        return line.strip()

    def say(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def result(self, timeout=30.0):
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError("fanout_client did not finish")
        for line in reversed(out.strip().splitlines()):
            if line.startswith("{"):
                return json.loads(line)
        raise RuntimeError(f"fanout_client exited {self.proc.returncode} without JSON: {err[-1000:]}")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()


def start_probe(binary, url, seconds):
    return subprocess.Popen([binary, "probe", url, "--seconds", f"{seconds:g}", "--clients", "1",
                             "--json"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace",
                            preexec_fn=_die_with_parent)


def probe_result(probe, timeout):
    try:
        out, err = probe.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        probe.kill()
        probe.communicate()
        raise RuntimeError("probe did not finish")
    try:
        result = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError(f"probe exited {probe.returncode} without JSON: {err[-1000:]}")
    result["_exit_status"] = probe.returncode
    return result


def floor_server(floor_binary, jpeg_path, fps=30):
    """fanout_floor serving `jpeg_path` at `fps` (bench/fanout/fanout_floor.cpp)."""
    return Server(None, None, cmd=[floor_binary, "--jpeg", jpeg_path, "--port", "0",
                                   "--fps", str(fps)], serving=FLOOR_RE)
