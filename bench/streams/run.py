#!/usr/bin/python3
"""freshframe multi-stream benchmark: 1, 2, 4 and 8 cameras in one server.

For each count N and each detector (none, faces) it writes a config of N
streams of pattern:640x480@30, starts `freshframe run --config FILE` on
loopback, and runs one `freshframe probe` per stream (one viewer each, reading
the timecode strip: capture-to-client latency) for the measurement window.
Over the window it reads the server's CPU (utime+stime of /proc/PID/stat) and
RSS; at its end /api/streams gives each stream's detection rate. Then the
grid page's cost: 4 streams, first with no viewer at all, then with the
grid's tiles (one WebSocket per stream on ws/stream?width=320&fps=10, as
web/grid.js opens them), CPU and bytes per second side by side.

Targets (issue 16, 2 cores): 4 streams with --detector none all >= 29 fps
with p99 <= 15 ms; with faces every stream keeps >= 29 fps and the detection
rate is shared fairly (max/min across streams <= 1.5).

Standard library only; run with Debian's /usr/bin/python3 (make bench-streams).
Exit status: 0 all checks PASS, 1 a check FAILed, 2 usage error.
"""

import argparse
import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(REPO_ROOT, "bench"))
from procstat import cpu_seconds, die_with_parent as _die_with_parent, status_mb  # noqa: E402
SERVING_RE = re.compile(r"^freshframe: serving on http://([0-9.]+):(\d+)/$")
SOURCE = "pattern:640x480@30"
COUNTS = [1, 2, 4, 8]
MIN_FPS = 29.0
MAX_P99_MS = 15.0
MAX_DETECT_RATIO = 1.5
TARGET_COUNT = 4


def get_json(port, path):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                     headers={"Host": "127.0.0.1"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def write_config(path, count, detector):
    lines = ["[server]", "port = 0", "", "[defaults]", f'source = "{SOURCE}"',
             f'detector = "{detector}"', ""]
    for i in range(count):
        lines += [f"[streams.cam{i}]", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


class ConfigServer:
    def __init__(self, binary, config):
        self.proc = subprocess.Popen([binary, "run", "--config", config],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, preexec_fn=_die_with_parent)
        line = self.proc.stdout.readline().strip()
        match = SERVING_RE.match(line)
        if not match:
            self.stop()
            raise SystemExit(f"freshframe did not start: {line!r}")
        self.port = int(match.group(2))
        self.pid = self.proc.pid

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def probe(binary, url, seconds):
    return subprocess.Popen([binary, "probe", url, "--seconds", str(seconds), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            preexec_fn=_die_with_parent)


def measure(binary, count, detector, seconds, warmup):
    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "streams.toml")
        write_config(config, count, detector)
        server = ConfigServer(binary, config)
        try:
            time.sleep(warmup)
            base = f"http://127.0.0.1:{server.port}/streams/"
            probes = [probe(binary, f"{base}cam{i}/stream.mjpg", seconds) for i in range(count)]
            time.sleep(1.0)  # the probes connect and settle
            cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
            time.sleep(max(1.0, seconds - 2.0))
            cpu1, t1 = cpu_seconds(server.pid), time.monotonic()
            rss = status_mb(server.pid, "VmRSS")
            streams = get_json(server.port, "/api/streams")["streams"]
            results = []
            for p in probes:
                out, _ = p.communicate(timeout=seconds + 30)
                results.append(json.loads(out.strip().splitlines()[-1]))
        finally:
            server.stop()
    fps = [r["fps"]["min"] for r in results]
    p99 = [r["latency_ms"]["p99"] for r in results]
    detect = [s["detection_fps"] for s in streams]
    return {"streams": count, "detector": detector, "fps_min": min(fps),
            "p99_ms_max": max(p99), "detect_fps_min": min(detect),
            "detect_fps_max": max(detect), "cpu_cores": (cpu1 - cpu0) / (t1 - t0),
            "rss_mb": rss}


class WsTile(threading.Thread):
    """One grid tile: a WebSocket on ws/stream?width=320&fps=10, counting bytes."""

    def __init__(self, port, path):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                          .encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(4096)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise SystemExit(f"no WebSocket for {path}: {head[:200]!r}")
        self.bytes = len(head.split(b"\r\n\r\n", 1)[1])
        self.stopped = False

    def run(self):
        try:
            while not self.stopped:
                data = self.sock.recv(1 << 16)
                if not data:
                    return
                self.bytes += len(data)
        except OSError:
            pass

    def stop(self):
        self.stopped = True
        self.sock.close()


def grid_cost(binary, seconds, warmup):
    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "streams.toml")
        write_config(config, TARGET_COUNT, "none")
        server = ConfigServer(binary, config)
        try:
            time.sleep(warmup)
            cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
            time.sleep(seconds)
            idle = (cpu_seconds(server.pid) - cpu0) / (time.monotonic() - t0)
            tiles = [WsTile(server.port, f"/streams/cam{i}/ws/stream?width=320&fps=10")
                     for i in range(TARGET_COUNT)]
            for tile in tiles:
                tile.start()
            time.sleep(1.0)
            bytes0 = sum(t.bytes for t in tiles)
            cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
            time.sleep(seconds)
            elapsed = time.monotonic() - t0
            grid = (cpu_seconds(server.pid) - cpu0) / elapsed
            rate = (sum(t.bytes for t in tiles) - bytes0) / elapsed
            for tile in tiles:
                tile.stop()
        finally:
            server.stop()
    return {"idle_cores": idle, "grid_cores": grid, "grid_kbit_s": rate * 8 / 1000,
            "per_tile_kbit_s": rate * 8 / 1000 / TARGET_COUNT}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", default=os.path.join(REPO_ROOT, "build/release/freshframe"))
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--quick", action="store_true", help="1 and 4 streams, 5 s each")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    if not os.path.exists(args.binary):
        print(f"no binary at {args.binary}", file=sys.stderr)
        return 2
    counts = [1, TARGET_COUNT] if args.quick else COUNTS
    seconds = 5.0 if args.quick else args.seconds
    print(f"freshframe streams benchmark: {SOURCE} per stream, one probe viewer each, "
          f"{seconds:.0f} s, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print(f"{'streams':>7} {'detector':>8} {'fps min':>8} {'p99 ms':>7} {'det fps min/max':>16} "
          f"{'ratio':>6} {'CPU cores':>9} {'RSS MB':>7}")
    rows, failures = [], []
    for detector in ("none", "faces"):
        for count in counts:
            row = measure(args.binary, count, detector, seconds, args.warmup)
            rows.append(row)
            ratio = (row["detect_fps_max"] / row["detect_fps_min"]
                     if row["detect_fps_min"] > 0 else float("inf"))
            row["detect_ratio"] = ratio if detector == "faces" else None
            print(f"{count:>7} {detector:>8} {row['fps_min']:>8.1f} {row['p99_ms_max']:>7.1f} "
                  f"{row['detect_fps_min']:>7.1f}/{row['detect_fps_max']:<8.1f} "
                  f"{(f'{ratio:.2f}' if detector == 'faces' else '-'):>6} "
                  f"{row['cpu_cores']:>9.2f} {row['rss_mb']:>7.0f}", flush=True)
            if count == TARGET_COUNT and detector == "none":
                if row["fps_min"] < MIN_FPS:
                    failures.append(f"{count} streams none: fps min {row['fps_min']:.1f} < {MIN_FPS}")
                if row["p99_ms_max"] > MAX_P99_MS:
                    failures.append(f"{count} streams none: p99 {row['p99_ms_max']:.1f} ms > "
                                    f"{MAX_P99_MS}")
            if count == TARGET_COUNT and detector == "faces":
                if row["fps_min"] < MIN_FPS:
                    failures.append(f"{count} streams faces: fps min {row['fps_min']:.1f} < "
                                    f"{MIN_FPS}")
                if ratio > MAX_DETECT_RATIO:
                    failures.append(f"{count} streams faces: detection max/min {ratio:.2f} > "
                                    f"{MAX_DETECT_RATIO}")
    grid = grid_cost(args.binary, seconds, args.warmup)
    print(f"grid page, {TARGET_COUNT} streams: server {grid['idle_cores']:.2f} cores with no "
          f"viewer, {grid['grid_cores']:.2f} with the grid's {TARGET_COUNT} tiles "
          f"(+{grid['grid_cores'] - grid['idle_cores']:.2f}); "
          f"{grid['per_tile_kbit_s']:.0f} kbit/s per tile, {grid['grid_kbit_s']:.0f} kbit/s in all")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "grid": grid}, f, indent=1)
    for failure in failures:
        print("FAIL", failure)
    print("PASS" if not failures else f"{len(failures)} check(s) FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
