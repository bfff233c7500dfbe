#!/usr/bin/python3
"""bench/detectors: what each detector costs, per frame and in the stream.

One command. It builds nothing: it expects a build with the `freshframe` and
`detectors_bench` targets (default build/release:
`cmake --preset release && cmake --build --preset release`).

1. Generates a SYNTHETIC YOLOv8-layout ONNX model (make_bench_model.py,
   random weights, ~yolov8n's GFLOPs; no downloads) at 640 and 320 input into
   a temporary directory, calibrated on test-pattern frames that
   detectors_bench --dump-frames writes.
2. Runs detectors_bench: ms per frame of each detector on pre-rendered
   test-pattern frames, on a moving scene and on one that moves 10% of each
   10 s cycle ("still"), at each frame size.
3. For the stream figures, for each detector and size starts
   `freshframe run --source pattern:WxH@30[,motion=0.1] --detector D --port 0
   --bind 127.0.0.1`, waits --warmup seconds, runs `freshframe probe URL
   --seconds S --json` (stream fps, capture-to-client latency read from the
   timecode strip in the pixels), reads /api/stats before and after the probe
   (detector frames -> detector fps, detection.model_runs -> model ran % in the
   stream, infer work_ms), then stops the server with SIGTERM.
4. Prints one Markdown table (and optionally writes --markdown and --json).

Standard library only; run with Debian's /usr/bin/python3 (the model
generator needs python3-onnx and python3-numpy). See bench/detectors/README.md.
Exit status: 0 all rows measured, 1 some row failed, 2 usage error / no build.
"""

import argparse
import ctypes
import http.client
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.realpath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SERVING_RE = re.compile(r"^freshframe: serving on (http://\S+)$")
STILL_MOTION = 0.1
CYCLE_S = 10.0  # the pattern's motion cycle


def _die_with_parent():
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def loadavg():
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def dig(d, *path, default=None):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return default
        d = d[p]
    return d


def detector_list(models, labels, with_dnn):
    """(display name, freshframe --detector spec, extra run args, stateful)."""
    out = [
        ("none", "none", [], False),
        ("faces", "faces", [], False),
        ("cascade:upperbody", "cascade:upperbody", [], False),
        ("cascade:lbpcascade_frontalface", "cascade:lbpcascade_frontalface", [], False),
    ]
    if with_dnn:
        for size in (640, 320):
            out.append((f"dnn:synthetic@{size}", f"dnn:{models[size]}",
                        ["--labels", labels, "--input-size", str(size)], False))
    out += [("motion", "motion", [], True), ("motion+faces", "motion+faces", [], True)]
    if with_dnn:
        out.append(("motion+dnn:synthetic@640", f"motion+dnn:{models[640]}",
                    ["--labels", labels, "--input-size", "640"], True))
    return out


def bench_entry(name, spec, extra):
    """detectors_bench's --detector form: SPEC;key=value..."""
    entry = spec
    args = dict(zip(extra[::2], extra[1::2]))
    if "--labels" in args:
        entry += ";labels=" + args["--labels"]
    if "--input-size" in args:
        entry += ";input=" + args["--input-size"]
    return entry + ";name=" + name


# ---------------------------------------------------------------- model ----

def model_python():
    """A Python with numpy and onnx: this one, else Debian's."""
    if all(importlib.util.find_spec(m) is not None for m in ("numpy", "onnx")):
        return sys.executable
    return "/usr/bin/python3"


def make_models(tmp, with_dnn, bench, sizes):
    if not with_dnn:
        return {}, None, []
    # Test-pattern frames to calibrate the model's folded-BatchNorm scales and
    # class bias on (see make_bench_model.py), one per frame size.
    frames_dir = os.path.join(tmp, "calibration")
    os.makedirs(frames_dir)
    res = subprocess.run([bench, "--sizes", ",".join(sizes), "--scenes", "moving",
                          "--record-seconds", "0.5", "--detector", "none",
                          "--dump-frames", frames_dir],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ppms = sorted(os.path.join(frames_dir, f) for f in os.listdir(frames_dir))
    if res.returncode != 0 or not ppms:
        raise SystemExit(f"run.py: detectors_bench --dump-frames failed ({res.returncode}): "
                         f"{res.stderr.strip()[-800:]}")
    gen = os.path.join(HERE, "make_bench_model.py")
    labels = os.path.join(tmp, "bench_labels.txt")
    models, infos = {}, []
    for size in (640, 320):
        path = os.path.join(tmp, f"bench_yolo{size}.onnx")
        cmd = [model_python(), gen, path, "--input-size", str(size), "--calibrate"] + ppms
        if size == 640:
            cmd += ["--labels", labels]
        res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if res.returncode != 0:
            raise SystemExit(f"run.py: make_bench_model.py failed ({res.returncode}): "
                             f"{res.stderr.strip()[-800:]}\n(Debian: apt-get install python3-onnx "
                             "python3-numpy; or run with --no-dnn)")
        info = json.loads(res.stdout.strip().splitlines()[-1])
        log("run.py: " + info["note"])
        models[size] = path
        infos.append(info)
    return models, labels, infos


# ------------------------------------------------------- per-frame bench ----

def run_frame_bench(bench, detectors, sizes, args, tmp):
    json_path = os.path.join(tmp, "frames.json")
    cmd = [bench, "--sizes", ",".join(sizes), "--scenes", "moving,still",
           "--stateless-scenes", "moving,still" if args.all_scenes else "moving",
           "--still-motion", str(STILL_MOTION), "--seconds", str(args.frame_seconds),
           "--min-frames", str(args.min_frames), "--threads", str(args.threads),
           "--json", json_path]
    for name, spec, extra, _ in detectors:
        cmd += ["--detector", bench_entry(name, spec, extra)]
    log("run.py: per-frame bench: " + " ".join(cmd))
    t0 = time.monotonic()
    # Its table goes to our stderr as it runs (progress); the JSON is the result.
    res = subprocess.run(cmd, stdout=sys.stderr, stderr=sys.stderr, preexec_fn=_die_with_parent)
    log(f"run.py: per-frame bench took {time.monotonic() - t0:.0f} s")
    try:
        with open(json_path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise SystemExit(f"run.py: detectors_bench exited {res.returncode} without JSON ({e})")
    data["exit_status"] = res.returncode
    return data


# ---------------------------------------------------------- stream runs ----

def get_stats(port, timeout=5.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/api/stats")
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"/api/stats -> {resp.status}")
        return json.loads(body)
    finally:
        conn.close()


class Server:
    """One `freshframe run`; only this process is ever signalled (by PID)."""

    def __init__(self, binary, args):
        self.cmd = [binary, "run", "--port", "0", "--bind", "127.0.0.1"] + args
        self.out = tempfile.TemporaryFile()
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=self.err, preexec_fn=_die_with_parent)
        self.url = None
        self.port = None

    def _read(self, f):
        f.flush()
        f.seek(0)
        return f.read().decode("utf-8", "replace")

    def wait_ready(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self._read(self.out)
            if "\n" in text:
                line = text.split("\n", 1)[0].rstrip("\r")
                m = SERVING_RE.match(line)
                if not m:
                    raise RuntimeError(f"unexpected stdout line {line!r}")
                self.url = m.group(1)
                self.port = int(self.url.rstrip("/").rsplit(":", 1)[1])
                return self.url
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: "
                                   f"{self.stderr()[-1200:]}")
            time.sleep(0.02)
        raise RuntimeError(f"server not serving within {timeout} s: {self.stderr()[-1200:]}")

    def stderr(self):
        return self._read(self.err)

    def stop(self):
        """SIGTERM (this PID only), SIGKILL after 5 s. Returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def close(self):
        self.out.close()
        self.err.close()


def run_stream(binary, name, spec, extra, scene, size, seconds, warmup):
    source = f"pattern:{size}@30" + (f",motion={STILL_MOTION:g}" if scene == "still" else "")
    row = {"detector": name, "scene": scene, "size": size, "source": source,
           "seconds": seconds, "warmup": warmup, "error": None}
    server = Server(binary, ["--source", source, "--detector", spec] + extra)
    row["command"] = " ".join(server.cmd)
    probe = None
    try:
        url = server.wait_ready()
        time.sleep(warmup)
        s0, t0 = get_stats(server.port), time.monotonic()
        probe = subprocess.Popen([binary, "probe", url, "--seconds", f"{seconds:g}", "--json"],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, errors="replace",
                                 preexec_fn=_die_with_parent)
        try:
            out, err = probe.communicate(timeout=seconds + 60)
        except subprocess.TimeoutExpired:
            probe.kill()
            probe.communicate()
            raise RuntimeError("probe did not finish")
        s1, t1 = get_stats(server.port), time.monotonic()
        try:
            result = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise RuntimeError(f"probe exited {probe.returncode} without JSON: {err[-800:]}")
        if probe.returncode != 0:
            row["error"] = f"probe exited {probe.returncode}"
        row["probe"] = result
        row["stream_fps"] = dig(result, "fps", "median")
        row["latency_p50"] = dig(result, "latency_ms", "p50")
        row["latency_p99"] = dig(result, "latency_ms", "p99")
        row["no_strip"] = result.get("no_strip")
        f0 = dig(s0, "stages", "infer", "frames")
        f1 = dig(s1, "stages", "infer", "frames")
        if f0 is not None and f1 is not None:
            row["detector_fps"] = (f1 - f0) / (t1 - t0)
        row["infer_work_ms"] = dig(s1, "stages", "infer", "work_ms")
        row["capture_fps"] = dig(s1, "stages", "capture", "fps")
        d0, d1 = s0.get("detection"), s1.get("detection")
        if d0 and d1 and spec.startswith("motion+"):
            frames = d1["frames"] - d0["frames"]
            runs = d1["model_runs"] - d0["model_runs"]
            row["model_run_share"] = runs / frames if frames > 0 else None
        row["detection"] = d1
    except Exception as e:
        row["error"] = str(e)
    finally:
        if probe is not None and probe.poll() is None:
            probe.kill()
            probe.communicate()
        row["server_exit"] = server.stop()
        if row["server_exit"] not in (0, None) and not row["error"]:
            row["error"] = f"server exited {row['server_exit']} on SIGTERM"
        if row["error"]:
            row["server_stderr_tail"] = server.stderr()[-1200:]
        server.close()
    return row


# ---------------------------------------------------------------- table ----

def fmt(v, spec=".1f"):
    return "—" if v is None else format(v, spec)


def table(frame_rows, stream_rows, detectors, sizes):
    by_frame = {(r["detector"], r["scene"], r["size"]): r for r in frame_rows}
    by_stream = {(r["detector"], r["scene"], r["size"]): r for r in stream_rows}
    lines = ["| detector | scene | size | ms/frame p50 | ms p99 | model ran % (bench / stream) | "
             "stream fps | latency p50 | p99 | detector fps |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for size in sizes:
        for name, _, _, _ in detectors:
            for scene in ("moving", "still"):
                f = by_frame.get((name, scene, size))
                s = by_stream.get((name, scene, size))
                if f is None and s is None:
                    continue
                cells = [name, scene, size]
                if f is None:
                    cells += ["—", "—", "—"]
                elif f.get("error"):
                    cells += ["ERROR", "—", "—"]
                elif not f.get("has_detector", True):
                    cells += ["0", "0", "—"]
                else:
                    share = f.get("model_run_share")
                    cell = fmt(None if share is None else 100 * share, ".0f")
                    if share is not None and s is not None and s.get("model_run_share") is not None:
                        cell += f" / {100 * s['model_run_share']:.0f}"
                    cells += [fmt(f["ms"]["p50"], ".2f"), fmt(f["ms"]["p99"], ".2f"), cell]
                if s is None:
                    cells += ["—", "—", "—", "—"]
                elif s.get("error") and s.get("stream_fps") is None:
                    cells += ["ERROR", "—", "—", "—"]
                else:
                    det_fps = s.get("detector_fps")
                    cells += [fmt(s.get("stream_fps")), fmt(s.get("latency_p50")),
                              fmt(s.get("latency_p99")),
                              "—" if name == "none" else fmt(det_fps)]
                lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(
        description="bench/detectors: ms per frame of each detector, and the stream's fps and "
                    "latency with each (see bench/detectors/README.md). Builds nothing.")
    parser.add_argument("--build-dir", default=os.path.join(REPO_ROOT, "build", "release"),
                        help="build with freshframe and bench/detectors_bench "
                             "(default build/release)")
    parser.add_argument("--quick", action="store_true",
                        help="640x480 only, short measurements (to check that it works)")
    parser.add_argument("--sizes", default="640x480,1280x720", help="frame sizes")
    parser.add_argument("--seconds", type=float, default=None,
                        help="probe seconds per stream row (default 6; rows on the still scene "
                             "use at least one 10 s cycle unless --quick)")
    parser.add_argument("--warmup", type=float, default=None,
                        help="seconds between 'serving' and the probe (default 2)")
    parser.add_argument("--frame-seconds", type=float, default=None,
                        help="detectors_bench: minimum seconds per row (default 2)")
    parser.add_argument("--min-frames", type=int, default=None,
                        help="detectors_bench: minimum frames per row (default 8)")
    parser.add_argument("--threads", type=int, default=1,
                        help="detectors_bench cv::setNumThreads (the server keeps its "
                             "default --detector-threads 1)")
    parser.add_argument("--all-scenes", action="store_true",
                        help="per-frame rows of stateless detectors (cascades, dnn) on the still "
                             "scene too (default: moving only; their cost hardly depends on it)")
    parser.add_argument("--no-dnn", action="store_true", help="skip the synthetic dnn rows")
    parser.add_argument("--no-stream", action="store_true", help="per-frame bench only")
    parser.add_argument("--only", action="append", default=[],
                        help="only detectors whose name contains this (repeatable: any)")
    parser.add_argument("--json", help="write everything (both benches, probe output) as JSON")
    parser.add_argument("--markdown", help="also write the table to this file")
    parser.add_argument("--keep-model", help="copy the generated model and labels to this dir")
    args = parser.parse_args()

    if args.quick:
        args.sizes = "640x480" if args.sizes == parser.get_default("sizes") else args.sizes
    args.seconds = args.seconds if args.seconds is not None else (3.0 if args.quick else 6.0)
    args.warmup = args.warmup if args.warmup is not None else 2.0
    args.frame_seconds = (args.frame_seconds if args.frame_seconds is not None
                          else (0.5 if args.quick else 2.0))
    args.min_frames = args.min_frames if args.min_frames is not None else (
        3 if args.quick else 8)
    sizes = [s for s in args.sizes.split(",") if s]

    build = os.path.abspath(args.build_dir)
    binary = os.path.join(build, "freshframe")
    bench = os.path.join(build, "bench", "detectors_bench")
    missing = [p for p in (binary, bench) if not os.access(p, os.X_OK)]
    if missing:
        print(f"run.py: not built: {', '.join(missing)}\n"
              f"  build first, e.g.: cmake --preset release && cmake --build --preset release\n"
              f"  (or pass --build-dir DIR)", file=sys.stderr)
        return 2

    started = time.monotonic()
    load_before = loadavg()
    tmp = tempfile.mkdtemp(prefix="freshframe-bench-det-")
    try:
        def wanted(dets):
            return [d for d in dets if not args.only or any(o in d[0] for o in args.only)]

        # Names first (placeholder paths): the model is made only if needed.
        names = wanted(detector_list({640: "", 320: ""}, "", not args.no_dnn))
        if not names:
            print("run.py: --only matched no detector", file=sys.stderr)
            return 2
        models, labels, model_infos = {}, None, []
        if any("dnn:" in spec for _, spec, _, _ in names):
            log("run.py: generating the synthetic dnn model (640 and 320 input)...")
            models, labels, model_infos = make_models(tmp, True, bench, sizes)
            if args.keep_model:
                os.makedirs(args.keep_model, exist_ok=True)
                for p in list(models.values()) + [labels]:
                    shutil.copy(p, args.keep_model)
        detectors = wanted(detector_list(models or {640: "", 320: ""}, labels,
                                         not args.no_dnn and bool(models)))

        frames = run_frame_bench(bench, detectors, sizes, args, tmp)
        stream_rows = []
        if not args.no_stream:
            plan = []
            for size in sizes:
                for name, spec, extra, stateful in detectors:
                    # Stateless detectors cost the same on either scene (the
                    # per-frame table shows both); gated ones on both.
                    for scene in (("moving", "still") if stateful else ("moving",)):
                        plan.append((name, spec, extra, scene, size))
            for i, (name, spec, extra, scene, size) in enumerate(plan, 1):
                seconds = args.seconds
                if scene == "still" and not args.quick:
                    seconds = max(seconds, CYCLE_S)
                log(f"run.py: stream {i}/{len(plan)}: {name} {scene} {size} "
                    f"({args.warmup:g} s warm-up + {seconds:g} s probe)")
                row = run_stream(binary, name, spec, extra, scene, size, seconds, args.warmup)
                if row["error"]:
                    log(f"run.py:   error: {row['error']}")
                stream_rows.append(row)

        text = table(frames["rows"], stream_rows, detectors, sizes)
        notes = [
            f"ms/frame: detectors_bench, one thread (cv::setNumThreads({args.threads})), on "
            "pre-rendered test-pattern frames; 'still' = pattern ,motion="
            f"{STILL_MOTION:g} (moves 1 s of every 10 s); stateless detectors (cascades, dnn) "
            "are timed on the moving scene" + (" and the still one" if args.all_scenes else "")
            + ".",
            "model ran % (motion+X only): share of frames on which X ran; bench = every frame "
            "of one 10 s cycle in capture order; stream = frames the detector took during the "
            "probe (it skips frames while busy, and the motion model learns per frame it takes).",
            "stream fps, latency p50/p99 (ms, capture to client, read from the timecode strip): "
            "freshframe probe, 1 client, on the same machine; detector fps: frames the detector "
            "finished per second during the probe (/api/stats); server defaults "
            "(--detector-threads 1, --overlay latest).",
        ]
        for info in model_infos:
            notes.append(info["note"] + ".")
        notes.append(f"{os.cpu_count()} cores; load average (1/5/15 min) {load_before} at the "
                     f"start, {loadavg()} at the end (other processes compete for the CPU).")
        out = text + "\n\n" + "\n".join("- " + n for n in notes) + "\n"
        print(out)
        if args.markdown:
            with open(args.markdown, "w", encoding="utf-8") as f:
                f.write(out)
        failed = [r for r in stream_rows if r.get("error")]
        failed_frames = [r for r in frames["rows"] if r.get("error")]
        for r in failed:
            log(f"run.py: stream row failed: {r['detector']} {r['scene']} {r['size']}: "
                f"{r['error']}\n{r.get('server_stderr_tail', '')}")
        for r in failed_frames:
            log(f"run.py: per-frame row failed: {r['detector']} {r['scene']} {r['size']}: "
                f"{r['error']}")
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump({"models": model_infos, "frames": frames, "stream": stream_rows,
                           "table": text, "elapsed_s": round(time.monotonic() - started, 1)},
                          f, indent=2)
        log(f"run.py: done in {time.monotonic() - started:.0f} s")
        return 1 if failed or failed_frames or frames.get("exit_status") else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
