#!/usr/bin/python3
"""freshframe against the guide's own designs, side by side.

For each frame size and system (systems.py), starts the system on the same
emulated camera, then for 1, 10 and 50 viewers: connects the measuring
viewer (strip_sampler: every part's latency from the timecode strip) and
K-1 other viewers (`freshframe probe --clients K-1`), lets them settle,
measures for --seconds (server CPU and memory over its whole process tree),
and disconnects. Writes results.csv, table.md, run.json, per-part samples
and PNG plots into --out. Optional: a drift run (--drift-minutes: the
guide's first design and freshframe, one viewer, latency over time) and a
soak (--soak-minutes: freshframe with viewers joining and leaving, latency
and memory over time).

Debian's /usr/bin/python3 with python3-matplotlib (plots); the baselines
need python3-opencv, -numpy, -flask, -gunicorn, -eventlet. See
bench/compare/README.md. Exit status: 0 when every system produced figures,
1 otherwise, 2 for a usage error or a missing program.
"""

import argparse
import atexit
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import measure  # noqa: E402
import report  # noqa: E402
import systems  # noqa: E402

DEFAULT_BUILD = os.path.join(measure.REPO_ROOT, "build", "release")
FPS = 30.0
MODES = {  # sizes, viewer counts, window seconds, settle seconds
    "full": (["640x480", "1280x720"], [1, 10, 50], 20.0, 3.0),
    "quick": (["640x480"], [1, 10, 50], 4.0, 2.0),
}


def log(*parts):
    print(*parts, flush=True)


def load1():
    return round(os.getloadavg()[0], 2)


def wait_streaming(running, args, timeout=60.0):
    """Until a viewer gets a frame: the Python systems announce their port
    before their model process has produced anything, and a first viewer
    would otherwise measure their start-up (and drain the queue filled
    before anyone watched)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and running.alive():
        summary, _ = measure.Sampler(args.sampler, running.url, 1.0, os.devnull).result()
        if summary.get("parts", 0) > 0:  # the model has produced a frame
            return
        time.sleep(0.2)  # not listening yet, or nothing to send: try again shortly
    raise RuntimeError(f"{running.name}: no frames within {timeout:g} s\n{running.stderr_tail()}")


def run_phase(running, k, args, sample_dir):
    """One row: k viewers of a running system."""
    row = {"size": running.size, "system": running.name, "clients": k, "seconds": args.seconds,
           "error": "", "load1": load1()}
    path = os.path.join(sample_dir, f"{running.name}_{running.size}_{k}c.csv")
    total = args.settle + args.seconds
    connected = measure.now_us()
    sampler = measure.Sampler(args.sampler, running.url, total, path)
    probe = measure.Probe(args.binary, running.url, total + 0.5, k - 1) if k > 1 else None
    time.sleep(args.settle)
    before = measure.cpu_seconds(running.pids())
    detected0 = running.detector_frames()
    w0 = measure.now_us()
    while measure.now_us() < w0 + args.seconds * 1e6:
        time.sleep(min(0.5, max(0.0, (w0 + args.seconds * 1e6 - measure.now_us()) / 1e6)))
        running.pids()  # note processes that appear meanwhile (e.g. a restarted worker)
    pids = running.pids()
    after = measure.cpu_seconds(set(before) | set(pids))
    w1 = measure.now_us()
    detected1 = running.detector_frames()
    row["detector_frames"] = [detected0, detected1]
    if detected0 and detected1 and detected1[0] >= detected0[0] and detected1[1] > detected0[1]:
        row["detector_fps"] = (detected1[0] - detected0[0]) / (detected1[1] - detected0[1])
    row["cpu"] = measure.cpu_between(before, after) / ((w1 - w0) / 1e6)
    row["hwm_mb"], row["rss_mb"], row["pss_mb"] = measure.memory_mb(pids)
    summary, samples = sampler.result()
    others = probe.result() if probe else None
    row.update(measure.latency_figures(samples, w0, w1))
    row["_series"] = [((r - connected) / 1e6, (r - c) / 1000.0) for r, c, _ in samples if c >= 0]
    row["_window_start_s"] = (w0 - connected) / 1e6
    row["_window_latency"] = sorted((r - c) / 1000.0 for r, c, _ in samples
                                    if c >= 0 and w0 <= r < w1)
    fps = [row["parts_fps"]]
    # A viewer's stream that breaks is a result (a server that dropped it),
    # reported in the row's note; `error` is only for rows without figures.
    errors = []
    notes = [f"measuring viewer: {summary['error']}"] if summary.get("error") else []
    failed = 1 if notes else 0
    if others is not None:
        if others.get("error") and "per_client" not in others:
            notes.append("other viewers: " + others["error"][:200])
            failed += k - 1
        else:
            fps += [c.get("fps", 0.0) for c in others.get("per_client", [])]
            failed += others.get("failed_clients", 0)
            broken = sorted({c["error"] for c in others.get("per_client", []) if c.get("error")})
            if broken:
                notes.append(f"{others.get('failed_clients', 0)} other viewers: "
                             + "; ".join(broken)[:200])
            if measure.dig(others, "latency_ms", "count"):
                row["others_p50"] = measure.dig(others, "latency_ms", "p50")
                row["others_p99"] = measure.dig(others, "latency_ms", "p99")
            row["no_strip"] += others.get("no_strip", 0)
    row["viewer_fps_min"] = min(fps)
    row["viewer_fps_median"] = statistics.median(fps)
    row["failed"] = failed
    if not running.alive():
        notes.append("server died")
    if row.get("p99") is None:
        errors.append("no frame with a readable strip in the window")
    row["error"] = "; ".join(errors)
    row["note"] = "; ".join(notes)
    row["samples_file"] = path
    return row


def progress_line(r):
    f = report.fmt
    parts = [f"{r['size']:>9} {r['system']:<21} {r['clients']:>3} viewers:",
             f"new {f(r.get('new_fps'))} fps, detector {f(r.get('detector_fps'))}/s,",
             f"parts/viewer min {f(r.get('viewer_fps_min'))},",
             f"p50 {f(r.get('p50'))} p99 {f(r.get('p99'))} max {f(r.get('max'))} ms,",
             f"cpu {f(r.get('cpu'), '.2f')}, peak rss {f(r.get('hwm_mb'), '.0f')} MB, load {r['load1']}"]
    if r["error"]:
        parts.append(f" ERROR {r['error']}")
    if r.get("note"):
        parts.append(f" NOTE {r['note']}")
    return " ".join(parts)


def wanted(name, only):
    return all(o in name for o in only)


def run_matrix(args, out):
    rows = []
    sample_dir = os.path.join(out, "samples")
    os.makedirs(sample_dir, exist_ok=True)
    for size in args.sizes:
        for name in args.systems:
            ks = [k for k in args.clients if wanted(f"{size}/{name}/{k}c", args.only)]
            if not ks:
                continue
            try:
                running = systems.Running(name, args.binary, size, FPS)
                try:
                    wait_streaming(running, args)
                except RuntimeError:
                    running.stop()
                    raise
            except RuntimeError as e:
                log(f"{size} {name} did not start: {e}")
                for k in ks:
                    rows.append({"size": size, "system": name, "clients": k,
                                 "error": str(e).splitlines()[0], "load1": load1()})
                    log(progress_line(rows[-1]))
                continue
            try:
                for k in ks:
                    try:
                        row = run_phase(running, k, args, sample_dir)
                    except (OSError, RuntimeError, ValueError) as e:  # a row, not the run
                        row = {"size": size, "system": name, "clients": k, "load1": load1(),
                               "error": f"harness: {type(e).__name__}: {e}"}
                    if not running.alive():
                        log(running.stderr_tail(800))
                    rows.append(row)
                    log(progress_line(row))
                    time.sleep(1.0)  # the server notices the viewers have gone
            finally:
                running.stop()
    return rows


def minute_table(latency, memory, seconds):
    """[(minute, p50, p99, max, rss MB at the end of that minute)] over the
    whole minutes of a run (a run shorter than a minute is one row)."""
    out = []
    for m in range(max(1, int(seconds // 60))):
        lat = sorted(v for t, v in latency if int(t // 60) == m)
        mem = [v for t, v in memory if int(t // 60) == m]
        out.append((m, measure.percentile(lat, 50), measure.percentile(lat, 99),
                    lat[-1] if lat else None, mem[-1] if mem else None))
    return out


def watch(running, sampler, seconds, every=5.0, on_sample=None):
    """Samples the system's memory every `every` s while the sampler runs."""
    start = measure.now_us()
    memory = []
    while (measure.now_us() - start) / 1e6 < seconds:
        time.sleep(every)
        pids = running.pids()
        t = (measure.now_us() - start) / 1e6
        memory.append((t, measure.memory_mb(pids, pss=False)[1]))
        if on_sample:
            on_sample(t)
        if not running.alive():
            break
    summary, samples = sampler.result()
    latency = [((r - start) / 1e6, (r - c) / 1000.0) for r, c, _ in samples if c >= 0]
    return summary, latency, memory


def idle_memory(running, seconds, every=5.0):
    """--drift-idle-seconds: nobody watches for `seconds` before the viewer
    connects (memory sampled; times are negative, the viewer connects at 0).
    The guide's queue is drained only by viewers, so what it fills with
    meanwhile is what the first viewer then sees."""
    memory, start = [], time.monotonic()
    while time.monotonic() - start < seconds and running.alive():
        time.sleep(min(every, max(0.0, seconds - (time.monotonic() - start))))
        memory.append((time.monotonic() - start - seconds,
                       measure.memory_mb(running.pids(), pss=False)[1]))
    if memory:
        log(f"  after {seconds:g} s without a viewer: RSS {memory[-1][1]:.0f} MB")
    return memory


def run_drift(args, out):
    """Each drift system alone, one viewer, --drift-minutes: does latency drift?"""
    seconds = args.drift_minutes * 60
    runs, tables = {}, {}
    for name in args.drift_systems:
        log(f"drift: {name} at {args.drift_size}@{FPS:g}, one viewer, {args.drift_minutes:g} min "
            f"(load {load1()})")
        running = systems.Running(name, args.binary, args.drift_size, FPS)
        try:
            wait_streaming(running, args)
            idle = idle_memory(running, args.drift_idle_seconds)
            sampler = measure.Sampler(args.sampler, running.url, seconds,
                                      os.path.join(out, f"drift_{name}.csv"))
            summary, latency, memory = watch(running, sampler, seconds)
        finally:
            running.stop()
        runs[name] = {"latency": latency, "memory": idle + memory, "summary": summary}
        tables[name] = minute_table(latency, memory, seconds)
        last = tables[name][-1] if tables[name] else None
        log(f"  {len(latency)} frames; " + (f"last minute p50 {report.fmt(last[1])} p99 "
                                           f"{report.fmt(last[2])} ms, RSS {report.fmt(last[4], '.0f')} MB"
                                           if last else "no frames") +
            (f"  ERROR {summary['error']}" if summary.get("error") else ""))
    return runs, tables


def run_soak(args, out):
    """freshframe-run with --soak-clients viewers joining and leaving."""
    seconds = args.soak_minutes * 60
    log(f"soak: freshframe-run at {args.soak_size}@{FPS:g}, one steady viewer + "
        f"{args.soak_clients} joining and leaving, {args.soak_minutes:g} min (load {load1()})")
    running = systems.Running("freshframe-run", args.binary, args.soak_size, FPS)
    viewers = []

    def count_viewers(t):
        try:
            stats = json.loads(measure.ffharness.http_get(running.port, "/api/stats", timeout=5).body)
            viewers.append((t, stats.get("client_count")))
        except (AssertionError, OSError, ValueError):
            pass

    try:
        wait_streaming(running, args)
        sampler = measure.Sampler(args.sampler, running.url, seconds,
                                  os.path.join(out, "soak_freshframe-run.csv"))
        churn = measure.Churn(args.fanout_client, running.url, args.soak_clients, seconds, 500, 20000)
        summary, latency, memory = watch(running, sampler, seconds, on_sample=count_viewers)
        churned = churn.result()
    finally:
        running.stop()
    table = minute_table(latency, memory, seconds)
    brief = {k: churned[k] for k in ("connects", "streamed", "unexpected", "error") if k in churned}
    log(f"  {len(latency)} frames; churn: {json.dumps(brief)}")
    return {"latency": latency, "memory": memory, "viewers": viewers, "summary": summary,
            "churn": churned}, table


def parse_args():
    ap = argparse.ArgumentParser(
        description="freshframe vs the guide's designs (bench/compare/README.md)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="640x480 only, 4 s windows: under 3 minutes")
    mode.add_argument("--full", action="store_true", help="both sizes, 20 s windows (default)")
    ap.add_argument("--binary", default=os.environ.get("FRESHFRAME_BINARY",
                                                      os.path.join(DEFAULT_BUILD, "freshframe")))
    ap.add_argument("--sampler", help="strip_sampler (default: bench/ next to the binary)")
    ap.add_argument("--fanout-client", help="fanout_client (default: bench/ next to the binary)")
    ap.add_argument("--sizes", help="comma-separated WxH (mode's default)")
    ap.add_argument("--clients", help="comma-separated viewer counts (1,10,50)")
    ap.add_argument("--systems", default=",".join(systems.SYSTEMS),
                    help="comma-separated, of: " + ", ".join(systems.SYSTEMS))
    ap.add_argument("--seconds", type=float, help="measurement window per row")
    ap.add_argument("--settle", type=float, help="seconds between viewers connecting and the window")
    ap.add_argument("--only", action="append", default=[], metavar="SUBSTRING",
                    help="rows whose name SIZE/SYSTEM/Kc contains it; repeat to AND")
    ap.add_argument("--skip-matrix", action="store_true", help="only the drift and/or soak runs")
    ap.add_argument("--drift-minutes", type=float, default=0.0, help="drift run length (0: none)")
    ap.add_argument("--drift-systems", default="guide-original,freshframe-run")
    ap.add_argument("--drift-size", default="640x480")
    ap.add_argument("--drift-idle-seconds", type=float, default=0.0,
                    help="seconds without a viewer before the drift viewer connects (0)")
    ap.add_argument("--soak-minutes", type=float, default=0.0, help="soak length (0: none)")
    ap.add_argument("--soak-size", default="1280x720")
    ap.add_argument("--soak-clients", type=int, default=20,
                    help="viewers joining and leaving at a time during the soak (20)")
    ap.add_argument("--out", help="output directory (default bench/results/compare-DATE-TIME)")
    ap.add_argument("--plots-dir", help="where the PNGs go (default OUT/plots)")
    ap.add_argument("--list", action="store_true", help="print the row names and exit")
    args = ap.parse_args()
    sizes, clients, seconds, settle = MODES["quick" if args.quick else "full"]
    args.mode = "quick" if args.quick else "full"
    args.sizes = args.sizes.split(",") if args.sizes else sizes
    args.clients = [int(c) for c in args.clients.split(",")] if args.clients else clients
    args.seconds = args.seconds if args.seconds is not None else seconds
    args.settle = args.settle if args.settle is not None else settle
    args.systems = [s for s in args.systems.split(",") if s]
    args.drift_systems = [s for s in args.drift_systems.split(",") if s]
    bad = [s for s in args.systems + args.drift_systems if s not in systems.SYSTEMS]
    if bad or args.seconds < 1 or args.settle < 0 or min(args.clients) < 1:
        ap.error(f"unknown systems {bad}" if bad else "--seconds >= 1, --settle >= 0, viewers >= 1")
    args.binary = os.path.abspath(args.binary)
    bench_dir = os.path.join(os.path.dirname(args.binary), "bench")
    args.sampler = os.path.abspath(args.sampler or os.path.join(bench_dir, "strip_sampler"))
    args.fanout_client = os.path.abspath(args.fanout_client or os.path.join(bench_dir, "fanout_client"))
    args.out = os.path.abspath(args.out or os.path.join(
        measure.REPO_ROOT, "bench", "results", time.strftime("compare-%Y%m%d-%H%M%S")))
    args.plots_dir = os.path.abspath(args.plots_dir or os.path.join(args.out, "plots"))
    return args


def versions():
    import importlib.metadata as md
    out = {}
    for pkg in ("flask", "werkzeug", "gunicorn", "eventlet", "opencv", "numpy", "matplotlib"):
        try:
            out[pkg] = md.version("opencv-python" if pkg == "opencv" else pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    if out["opencv"] is None:  # Debian's python3-opencv has no distribution metadata
        try:
            import cv2
            out["opencv"] = cv2.__version__
        except ImportError:
            pass
    return out


def main():
    args = parse_args()
    if args.list:
        for size in args.sizes:
            for name in args.systems:
                for k in args.clients:
                    if wanted(f"{size}/{name}/{k}c", args.only):
                        print(f"{size}/{name}/{k}c")
        return 0
    needed = [(args.binary, "freshframe"), (args.sampler, "strip_sampler")]
    if args.soak_minutes > 0:
        needed.append((args.fanout_client, "fanout_client"))
    for path, what in needed:
        if not os.access(path, os.X_OK):
            print(f"{what} not found: {path} (cmake --build build/release)", file=sys.stderr)
            return 2
    os.makedirs(args.out, exist_ok=True)
    # The programs are copied for the run: a rebuild of build/ during a
    # 15-minute run must not swap or break them half-way (a binary being
    # linked cannot be executed).
    private = tempfile.mkdtemp(prefix="ffcompare-bin-")
    atexit.register(shutil.rmtree, private, True)
    built = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(os.path.getmtime(args.binary)))
    binary = f"{args.binary} (built {built})"
    for attr in ("binary", "sampler", "fanout_client"):
        path = getattr(args, attr)
        if os.access(path, os.X_OK):
            setattr(args, attr, shutil.copy2(path, os.path.join(private, os.path.basename(path))))
    os.makedirs(args.plots_dir, exist_ok=True)
    started = time.monotonic()
    meta = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "mode": args.mode,
            "cpus": os.cpu_count(), "platform": platform.platform(), "binary": binary,
            "seconds": args.seconds, "settle": args.settle, "fps": FPS,
            "buffers": systems.BUFFERS, "load_start": os.getloadavg(), "versions": versions()}
    log(f"# bench/compare ({args.mode}): {os.cpu_count()} CPUs, {platform.platform()}, "
        f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    log(f"# {binary}")
    log(f"# camera bufcam {'/'.join(args.sizes)}@{FPS:g} with {systems.BUFFERS} driver buffers; "
        f"{args.settle:g} s settle + {args.seconds:g} s window per row; output {args.out}")
    rows, drift, soak = [], None, None
    if not args.skip_matrix:
        rows = run_matrix(args, args.out)
    if args.drift_minutes > 0:
        drift = run_drift(args, args.out)
    if args.soak_minutes > 0:
        soak = run_soak(args, args.out)
    meta["load_end"] = os.getloadavg()
    meta["wall_s"] = round(time.monotonic() - started, 1)

    window = "" if args.skip_matrix else f"; {args.seconds:g} s window after {args.settle:g} s settle"
    md = [f"Measured {meta['time']} ({'drift/soak' if args.skip_matrix else args.mode}), "
          f"{meta['cpus']} CPUs, load average at start {meta['load_start'][0]:.2f}, at end "
          f"{meta['load_end'][0]:.2f}{window}; wall time {meta['wall_s']:g} s.", ""]
    plots = []
    if rows:
        report.write_csv(rows, os.path.join(args.out, "results.csv"))
        md += [report.matrix_markdown(rows, args.sizes, FPS), "p99 relative to freshframe-run:", "",
               report.ratio_markdown(rows, args.sizes)]
        plots += report.plot_matrix(rows, args.sizes, args.clients, FPS, args.plots_dir)
    if drift:
        runs, tables = drift
        idle = (f", connected after {args.drift_idle_seconds:g} s without a viewer"
                if args.drift_idle_seconds else "")
        md += [f"Drift, {args.drift_size}@{FPS:g}, one viewer{idle}:", "",
               report.series_markdown("drift", tables)]
        plots.append(report.plot_timeline(runs, os.path.join(args.plots_dir, "drift.png"),
                                          f"one viewer for {args.drift_minutes:g} min, "
                                          f"{args.drift_size}@{FPS:g}{idle}", 5.0))
    if soak:
        run, table = soak
        md += [f"Soak, freshframe-run {args.soak_size}@{FPS:g}:", "",
               report.series_markdown("soak", {"freshframe-run": table})]
        plots.append(report.plot_timeline(
            {"freshframe-run": run}, os.path.join(args.plots_dir, "soak.png"),
            f"freshframe-run {args.soak_size}@{FPS:g}, {args.soak_clients} viewers joining and "
            f"leaving + 1 steady", 10.0,
            extra=("viewers connected", {"freshframe-run": run["viewers"]})))
    text = "\n".join(md)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(text + "\n")
    doc = {"meta": meta, "rows": [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows],
           "drift": {n: {"minutes": t, "summary": drift[0][n]["summary"]} for n, t in drift[1].items()}
           if drift else None,
           "soak": {"minutes": soak[1], "churn": soak[0]["churn"], "summary": soak[0]["summary"]}
           if soak else None, "plots": plots}
    with open(os.path.join(args.out, "run.json"), "w") as f:
        json.dump(doc, f, indent=1)
    log("")
    log(text)
    written = (["results.csv"] if rows else []) + ["table.md", "run.json"]
    log(f"# wrote {', '.join(written)} in {args.out}; plots in {args.plots_dir}: "
        + ", ".join(os.path.basename(p) for p in plots))
    incomplete = [r for r in rows if r.get("error") or r.get("p99") is None]
    return 1 if incomplete else 0


if __name__ == "__main__":
    sys.exit(main())
