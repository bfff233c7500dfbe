"""The systems bench/compare runs, and how to start and stop them.

Every system reads the same emulated camera: a WxH@FPS sensor with 4 driver
buffers that hands out the oldest frame and drops new captures when full
(freshframe's `--source bufcam:WxH@FPS/4`; bench/baselines/camera.py for the
Python ones). What each does with it is the point of the comparison:
freshframe drains it to the newest frame, the guide's first design reads one
frame per loop, its fix drains before each inference.

- freshframe-run        `freshframe run --source bufcam:... --detector faces`
- freshframe-pipeline   `freshframe capture | infer | serve` over shared-memory buses
- guide-original        bench/baselines/guide_original.py (Flask threaded server)
- guide-fixed-flask     bench/baselines/guide_fixed.py --server flask
- guide-fixed-gunicorn  bench/baselines/guide_fixed.py --server gunicorn (eventlet worker)

Each prints `NAME: serving on http://ADDR:PORT/` when it listens; the stream
is at /stream.mjpg for all of them.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import measure

BASELINES = os.path.join(measure.REPO_ROOT, "bench", "baselines")
PYTHON = "/usr/bin/python3"
RUN_ML_RE = re.compile(r"^run_ml: (\d+) frames processed at ([0-9.]+)$", re.M)
SERVING_RE = re.compile(r"^[\w.-]+: serving on http://([0-9.]+|\[[0-9a-fA-F:.]+\]):(\d+)/$")
BUFFERS = 4  # OpenCV's V4L2 default (DEFAULT_V4L_BUFFERS), freshframe's bufcam default

SYSTEMS = ["freshframe-run", "freshframe-pipeline", "guide-original", "guide-fixed-flask",
           "guide-fixed-gunicorn"]
FRESHFRAME = ("freshframe-run", "freshframe-pipeline")


def commands(name, binary, size, fps, tag):
    """[(argv, stop signal)] in start order; the last one serves HTTP."""
    camera = f"bufcam:{size}@{fps:g}/{BUFFERS}"
    if name == "freshframe-run":
        return [([binary, "run", "--port", "0", "--source", camera, "--detector", "faces"],
                 signal.SIGTERM)]
    if name == "freshframe-pipeline":
        raw, annotated = f"{tag}.raw", f"{tag}.annotated"
        return [([binary, "capture", "--source", camera, "--out", raw], signal.SIGTERM),
                ([binary, "infer", "--in", raw, "--out", annotated, "--detector", "faces"],
                 signal.SIGTERM),
                ([binary, "serve", "--in", annotated, "--port", "0"], signal.SIGTERM)]
    script, server = {"guide-original": ("guide_original.py", None),
                      "guide-fixed-flask": ("guide_fixed.py", "flask"),
                      "guide-fixed-gunicorn": ("guide_fixed.py", "gunicorn")}[name]
    argv = [PYTHON, "-B", os.path.join(BASELINES, script), "--size", size, "--fps", f"{fps:g}",
            "--buffers", str(BUFFERS), "--port", "0"]
    if server:
        argv += ["--server", server]
    # SIGINT: Flask's server stops on KeyboardInterrupt; gunicorn's master
    # shuts down at once (SIGTERM would wait 30 s for streams that never end).
    return [(argv, signal.SIGINT)]


class Running:
    """A started system. stop() is idempotent and always leaves nothing behind."""

    def __init__(self, name, binary, size, fps):
        self.name, self.size, self.fps = name, size, fps
        self.tag = f"ffcmp{os.getpid()}x{int(time.monotonic() * 1000) % 1000000}"
        self.procs = []  # (Popen, stop signal, stdout path, stderr path)
        self.url = self.port = None
        self.known = {}  # pid -> start time, of every process seen in the tree
        # The children append to files that we read through our own file
        # objects: a shared file offset would let our reads move their writes.
        self.logs = tempfile.mkdtemp(prefix="ffcompare-")
        try:
            for i, (argv, sig) in enumerate(commands(name, binary, size, fps, self.tag)):
                out, err = (os.path.join(self.logs, f"{i}.{n}") for n in ("out", "err"))
                with open(out, "ab") as o, open(err, "ab") as e:
                    proc = measure.popen(argv, stdin=subprocess.DEVNULL, stdout=o, stderr=e)
                self.procs.append((proc, sig, out, err))
            self._wait_serving()
        except BaseException:
            self.stop()
            raise

    def roots(self):
        return [p.pid for p, _, _, _ in self.procs]

    def pids(self):
        """The live process tree; remembers every PID seen, for stop()."""
        pids = measure.tree(self.roots())
        for pid in pids:
            if pid not in self.known:
                self.known[pid] = measure.start_time(pid)
        return pids

    def alive(self):
        return all(p.poll() is None for p, _, _, _ in self.procs)

    def stderr_tail(self, chars=1500):
        text = ""
        for proc, _, _, err in self.procs:
            tail = _read(err)[-chars:]
            what = os.path.basename(proc.args[2] if proc.args[0] == PYTHON else proc.args[1])
            text += f"--- {what} (exit {proc.poll()}):\n{tail}\n"
        return text

    def detector_frames(self):
        """(frames the detector has finished, CLOCK_MONOTONIC s of that
        count), or None: freshframe's /api/stats (`infer` stage; `serve`
        sees it in the frames' stamps), the baselines' model process's
        "run_ml: N frames processed at T" line (once a second)."""
        if self.name in FRESHFRAME:
            try:
                body = measure.ffharness.http_get(self.port, "/api/stats", timeout=5).body
                frames = measure.dig(json.loads(body), "stages", "infer", "frames")
                return None if frames is None else (frames, time.monotonic())
            except (AssertionError, OSError, ValueError):
                return None
        found = RUN_ML_RE.findall(_read(self.procs[-1][3]))
        return (int(found[-1][0]), float(found[-1][1])) if found else None

    def _wait_serving(self, timeout=30.0):
        proc, _, out, _ = self.procs[-1]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in _read(out).splitlines():
                m = SERVING_RE.match(line.strip())
                if m:
                    self.port = int(m.group(2))
                    self.url = f"http://{m.group(1)}:{self.port}/stream.mjpg"
                    self.pids()
                    return
            if not self.alive():
                raise RuntimeError(f"{self.name} exited before serving\n{self.stderr_tail()}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.name}: no 'serving on' line within {timeout:g} s\n"
                           f"{self.stderr_tail()}")

    def stop(self, timeout=5.0):
        """Signals the started processes (server first), waits, then SIGKILLs
        whatever of the tree is left, by PID (checked against its start time,
        so a reused PID is never hit). Returns the servers' exit statuses."""
        self.pids()
        for proc, sig, _, _ in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(sig)
        deadline = time.monotonic() + timeout
        for proc, _, _, _ in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for pid, started in self.known.items():
            if started is not None and measure.start_time(pid) == started:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for suffix in ("raw", "annotated", "annotated.detections"):  # freshframe-pipeline's buses
            try:
                os.unlink(f"/dev/shm/freshframe.{self.tag}.{suffix}")
            except FileNotFoundError:
                pass
        codes = [proc.returncode for proc, _, _, _ in self.procs]
        shutil.rmtree(self.logs, ignore_errors=True)
        self.procs = []
        return codes


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""
