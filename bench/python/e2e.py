"""Part 2 of bench/python: end to end at 640x480@30 with the Haar face model.

- bus: `freshframe run --source pattern:640x480@30 --publish B --detector
  bus:B.detections` and examples/python/run_ml.py B (Haar faces in Python,
  reading B.raw, publishing B.detections);
- faces: `freshframe run --source pattern:640x480@30 --detector faces
  --detector-threads 1` (the same cascade, built in).

For each, after a warm-up: `freshframe probe URL --seconds N --json` (stream
fps and capture-to-client latency read from the timecode strip) and, half a
second before the probe ends, /api/stats (stages.infer: the detector's fps
and its capture -> detections latency). CPU (user+sys per wall second) of
the server and of the Python model over the probe window from /proc.
The Python model runs at nice --model-nice (10 by default: the priority
freshframe gives its own detector thread, kDetectorNice in
src/infer/detector_stage.cpp, so that it yields the CPU to capture, encoding
and sending); --model-nice 0 shows a model started as users would by hand.
The two systems alternate (bus, faces, faces, bus, ...) over --e2e-rounds
rounds; the targets are checked on the means of the rounds.
"""
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

SOURCE = "pattern:640x480@30"
SERVING_PREFIX = "freshframe: serving on http://"
STARTUP_TIMEOUT_S = 20.0
MODEL_START_TIMEOUT_S = 30.0  # python3 + numpy + cv2 imports on a loaded machine
STOP_TIMEOUT_S = 5.0
P99_DELTA_TARGET_MS = 2.0
DETECTOR_FPS_TOLERANCE = 0.10
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _die_with_parent():
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort
        pass


class Child:
    """A process we started, output in temporary files; stop() signals it by
    its own PID only (SIGTERM, SIGKILL after STOP_TIMEOUT_S)."""

    def __init__(self, argv, env=None, nice=0):
        self.argv = argv
        self.out, self.err = tempfile.TemporaryFile(), tempfile.TemporaryFile()

        def prepare():
            _die_with_parent()
            if nice:
                os.nice(nice)

        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=self.err, env=env, preexec_fn=prepare)

    def _text(self, f):
        f.flush()
        f.seek(0)
        return f.read().decode("utf-8", "replace")

    def stdout(self):
        return self._text(self.out)

    def stderr(self, tail=1500):
        return self._text(self.err)[-tail:]

    def alive(self):
        return self.proc.poll() is None

    def cpu_seconds(self):
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / CLK_TCK
        except (OSError, IndexError, ValueError):
            return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def close(self):
        self.stop()
        self.out.close()
        self.err.close()


def wait_serving(server):
    """The port from `freshframe: serving on http://ADDR:PORT/` (bounded)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        text = server.stdout()
        if "\n" in text:
            line = text.split("\n", 1)[0].rstrip("\r")
            if not line.startswith(SERVING_PREFIX) or not line.endswith("/"):
                raise RuntimeError(f"unexpected first stdout line {line!r}")
            return int(line[:-1].rsplit(":", 1)[1])
        if not server.alive():
            raise RuntimeError(f"server exited {server.proc.returncode}: {server.stderr()}")
        time.sleep(0.02)
    raise RuntimeError(f"server not serving within {STARTUP_TIMEOUT_S} s: {server.stderr()}")


def get_stats(port, timeout=5.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest("GET", "/api/stats", skip_host=True)
        conn.putheader("Host", "127.0.0.1")  # what the server's Host check accepts
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"/api/stats -> {resp.status}: {body[:300]!r}")
        return json.loads(body)
    finally:
        conn.close()


def dig(d, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def probe_json(text):
    text = text.strip()
    try:
        return json.loads(text)
    except ValueError:
        for line in reversed(text.splitlines()):
            if line.strip().startswith("{"):
                try:
                    return json.loads(line)
                except ValueError:
                    pass
    return None


def wait_detector(port, model, timeout):
    """Waits (bounded) until /api/stats counts detector frames: the Python
    model has imported cv2 and published its first sets."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if model is not None and not model.alive():
            raise RuntimeError(f"the Python model exited {model.proc.returncode}: "
                               f"{model.stderr()}")
        try:
            if (dig(get_stats(port), "stages", "infer", "frames") or 0) > 0:
                return
        except (OSError, RuntimeError, ValueError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"no detector frames in /api/stats within {timeout:.0f} s" +
                       (f"; model stderr: {model.stderr()}" if model is not None else ""))


def measure(system, args, repo, log, tag):
    """One system once: returns a dict of figures (or with "error")."""
    binary = args.binary
    bus = f"ffpybench.e2e.{os.getpid()}.{tag}"
    server_args = [binary, "run", "--port", "0", "--source", SOURCE]
    if system == "bus":
        server_args += ["--publish", bus, "--detector", f"bus:{bus}.detections"]
    else:
        server_args += ["--detector", "faces", "--detector-threads", "1"]
    row = {"system": system, "server_args": server_args[1:]}
    server = model = probe = None
    try:
        server = Child(server_args)
        port = wait_serving(server)
        url = f"http://127.0.0.1:{port}/stream.mjpg"
        if system == "bus":
            env = dict(os.environ, PYTHONPATH=args.python_path)
            model_args = ["/usr/bin/python3", os.path.join(repo, "examples", "python", "run_ml.py"),
                          bus]
            row["model_args"] = model_args[1:]
            row["model_nice"] = args.model_nice
            model = Child(model_args, env=env, nice=args.model_nice)
        wait_detector(port, model, MODEL_START_TIMEOUT_S if model else STARTUP_TIMEOUT_S)
        time.sleep(args.warmup)
        log(f"  end to end {system} ({tag}): probing {args.seconds:g} s ...")
        probe = Child([binary, "probe", url, "--seconds", f"{args.seconds:g}", "--json"])
        t0 = time.monotonic()
        cpu0 = {"server": server.cpu_seconds(), "model": model.cpu_seconds() if model else None}
        time.sleep(max(0.5, args.seconds - 0.5))
        stats = get_stats(port)
        t1 = time.monotonic()
        cpu1 = {"server": server.cpu_seconds(), "model": model.cpu_seconds() if model else None}
        try:
            probe.proc.wait(timeout=args.seconds + 30)
        except subprocess.TimeoutExpired:
            raise RuntimeError("probe did not finish") from None
        result = probe_json(probe.stdout())
        if result is None:
            raise RuntimeError(f"probe exited {probe.proc.returncode} without JSON: "
                               f"{probe.stderr()}")
        if probe.proc.returncode != 0:
            row["error"] = f"probe exited {probe.proc.returncode}"
        if model is not None and not model.alive():
            row["error"] = f"the Python model exited {model.proc.returncode}: {model.stderr()}"
        infer = dig(stats, "stages", "infer") or {}
        row.update({
            "stream_fps": dig(result, "fps", "median"),
            "probe_p50_ms": dig(result, "latency_ms", "p50"),
            "probe_p99_ms": dig(result, "latency_ms", "p99"),
            "probe_max_ms": dig(result, "latency_ms", "max"),
            "no_strip": result.get("no_strip"),
            "detector_fps": infer.get("fps"),
            "detector_latency_p50_ms": dig(infer, "latency_ms", "p50"),
            "detector_work_p50_ms": dig(infer, "work_ms", "p50"),
            "cpu_server": ((cpu1["server"] - cpu0["server"]) / (t1 - t0)
                           if None not in (cpu0["server"], cpu1["server"]) else None),
            "cpu_model": ((cpu1["model"] - cpu0["model"]) / (t1 - t0)
                          if model and None not in (cpu0["model"], cpu1["model"]) else None),
            "probe": result, "stats_infer": infer, "stats_detection": stats.get("detection"),
        })
    except Exception as e:  # noqa: BLE001 - reported in the table
        row["error"] = f"{type(e).__name__}: {e}"
        if server is not None:
            row["server_stderr"] = server.stderr()
        log(f"    FAILED: {row['error']}")
    finally:
        for child in (probe, model, server):  # the model first: it reads the server's bus
            if child is not None:
                child.close()
        if system == "bus":
            try:
                sys.path.insert(0, args.python_path)
                import freshframe
                for name in (bus, bus + ".raw", bus + ".detections"):
                    freshframe.unlink(name)
            except Exception as e:  # noqa: BLE001 - a leftover name is harmless but say so
                log(f"    could not unlink the buses {bus}.*: {e}")
    return row


def run_all(args, repo, log):
    systems = {"bus": [], "faces": []}
    for r in range(args.e2e_rounds):
        order = ("bus", "faces") if r % 2 == 0 else ("faces", "bus")
        for system in order:
            systems[system].append(measure(system, args, repo, log, f"r{r + 1}"))
    return systems


KEYS = ("stream_fps", "probe_p50_ms", "probe_p99_ms", "detector_fps", "detector_latency_p50_ms",
        "cpu_server", "cpu_model")


def mean_row(rows):
    ok = [r for r in rows if "error" not in r]
    out = {"n": len(ok)}
    for k in KEYS:
        values = [r[k] for r in ok if r.get(k) is not None]
        out[k] = sum(values) / len(values) if values else None
    return out


def _fmt(v, spec=".1f"):
    return "-" if v is None else format(v, spec)


NAMES = {"bus": "run --detector bus: + Python run_ml.py (Haar)",
         "faces": "run --detector faces --detector-threads 1"}


def print_table(systems, args):
    """Prints the part 2 table; returns [(target description, ok)]."""
    means = {s: mean_row(rows) for s, rows in systems.items()}
    ref = means["faces"]
    print(f"\n## End to end at 640x480@30, Haar faces ({args.e2e_rounds} round(s), probe "
          f"{args.seconds:g} s after {args.warmup:g} s warm-up; mean = mean of the rounds)\n")
    print("| system | round | stream fps | probe p50 ms | p99 ms | detector fps | dp99 ms | "
          "detector fps ratio | detector capture->sets p50 ms | CPU server + model |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")

    def line(system, label, r):
        d99 = (r["probe_p99_ms"] - ref["probe_p99_ms"]
               if None not in (r.get("probe_p99_ms"), ref["probe_p99_ms"]) else None)
        ratio = (r["detector_fps"] / ref["detector_fps"]
                 if r.get("detector_fps") is not None and ref["detector_fps"] else None)
        cpu = _fmt(r.get("cpu_server"), ".2f")
        if r.get("cpu_model") is not None:
            cpu += f" + {r['cpu_model']:.2f}"
        name = NAMES[system] + (f" at nice {args.model_nice}" if system == "bus" else "")
        print(f"| {name} | {label} | {_fmt(r.get('stream_fps'))} | "
              f"{_fmt(r.get('probe_p50_ms'))} | {_fmt(r.get('probe_p99_ms'))} | "
              f"{_fmt(r.get('detector_fps'))} | {_fmt(d99, '+.1f')} | {_fmt(ratio, '.2f')} | "
              f"{_fmt(r.get('detector_latency_p50_ms'), '.0f')} | {cpu} |")

    for system in ("bus", "faces"):
        for i, r in enumerate(systems[system]):
            line(system, str(i + 1) if "error" not in r else f"{i + 1} (error)", r)
        line(system, "mean", means[system])
    for system, rows in systems.items():
        for i, r in enumerate(rows):
            if "error" in r:
                print(f"ERROR {system} round {i + 1}: {r['error']}")
    bus = means["bus"]
    checks = []
    d99 = (bus["probe_p99_ms"] - ref["probe_p99_ms"]
           if None not in (bus["probe_p99_ms"], ref["probe_p99_ms"]) else None)
    checks.append((f"stream p99 with the Python model within {P99_DELTA_TARGET_MS:g} ms of the "
                   f"built-in detector's ({_fmt(bus['probe_p99_ms'])} vs "
                   f"{_fmt(ref['probe_p99_ms'])} ms, {_fmt(d99, '+.1f')} ms)",
                   d99 is not None and d99 <= P99_DELTA_TARGET_MS))
    ratio = (bus["detector_fps"] / ref["detector_fps"]
             if bus["detector_fps"] is not None and ref["detector_fps"] else None)
    checks.append((f"detector fps within {DETECTOR_FPS_TOLERANCE:.0%} ({_fmt(bus['detector_fps'])}"
                   f" vs {_fmt(ref['detector_fps'])} fps, ratio {_fmt(ratio, '.2f')})",
                   ratio is not None and abs(ratio - 1.0) <= DETECTOR_FPS_TOLERANCE))
    clean = all("error" not in r and r.get("no_strip") == 0
                for rows in systems.values() for r in rows)
    checks.append(("every end-to-end round ran (probe ok, model alive, timecode strip read on "
                   "every frame)", clean))
    return checks
