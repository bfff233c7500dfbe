#!/usr/bin/python3
"""freshframe fan-out benchmark: many MJPEG viewers of one stream, beside the
fan-out floor.

For each case (a picture size and a viewer count; by default 1, 50, 200, 500
and 1000 viewers at 1280x720@30 and 1 and 1000 at 640x480@30) it

1. starts `freshframe run --source pattern:WxH@30 --detector none --port 0`
   on loopback, opens N-1 viewers with fanout_client (one epoll thread,
   counts multipart parts per connection) and runs `freshframe probe URL
   --json` as the N-th viewer (it reads the timecode strip in the pixels:
   capture-to-client latency); over the window it reads the server's CPU
   (utime+stime from /proc/PID/stat) and RSS (/proc/PID/status);
2. starts fanout_floor (fanout_floor.cpp: one epoll thread writing one shared
   part to every client with writev, the floor of ../shared/MEASUREMENTS.md)
   with a JPEG freshframe encoded in step 1, so its parts are the same size,
   and measures it with N fanout_client viewers in the same way.

Each row prints both and the CPU ratio. Then a churn phase: viewers join and
leave for ~20 s (fanout_client --mode churn) next to a few steady ones, and
the server's RSS is compared before and after.

Standard library only; run with Debian's /usr/bin/python3. See
bench/fanout/README.md. Exit status: 0 all checks PASS, 1 a check FAILed,
2 usage error / missing binary.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.realpath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO_ROOT, "bench"))
sys.path.insert(0, HERE)
from procstat import cpu_seconds, status_mb  # noqa: E402
from procs import (Server, Viewers, floor_server, get_bytes, get_json,  # noqa: E402
                   probe_result, run_flags, start_probe)

DEFAULT_BUILD = os.path.join(REPO_ROOT, "build", "release")
CASES = "1280x720:1,1280x720:50,1280x720:200,1280x720:500,1280x720:1000,640x480:1,640x480:1000"
FPS = 30

# Targets of issue 6, at 1280x720 with 1, 50 and 200 viewers.
MIN_FPS = 29.0        # every viewer
MAX_P99_MS = 40.0     # probe's capture-to-client p99
MAX_CPU_CORES = 0.7   # server user+sys per wall second
TARGET_CLIENTS = (1, 50, 200)
# Targets of issue 19, against the floor measured in the same run, from
# FLOOR_FROM viewers up (below that the floor's CPU is too small to divide by).
FLOOR_FROM = 200
MAX_FLOOR_RATIO = 1.5   # freshframe's fan-out CPU / the floor's
FPS_SLACK = 0.2         # counting noise of a 10 s window (one part is 0.1 fps)
MAX_KIB_PER_VIEWER = 64.0  # RSS per viewer beyond the one-viewer row's
# Churn: memory is "flat" if the server's RSS after the churn (clients gone,
# settled) is within CHURN_RSS_SLACK_MB of before it, and the RSS did not keep
# climbing during the churn (last third's peak within CHURN_TREND_MB of the
# middle third's peak). Sessions must all be gone afterwards.
CHURN_RSS_SLACK_MB = 16.0
CHURN_TREND_MB = 4.0


def dig(d, *path, default=None):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return default
        d = d[p]
    return d


def measure(pid, viewers, seconds):
    """Server CPU (cores) over a window of `seconds` that the viewers count."""
    if viewers:
        viewers.say("go")
    c0, w0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    c1, w1 = cpu_seconds(pid), time.monotonic()
    if viewers:
        viewers.say("stop")
    return (c1 - c0) / (w1 - w0)


def limit_flags(flags, n):
    """run_flags' names, with room for n viewers and a snapshot request."""
    return [f if f.startswith("--") else str(max(1000, n + 16)) for f in flags]


def run_fanout(binary, client, flags, size, n, seconds, warmup, jpeg_path):
    """freshframe with n viewers (n-1 fanout_client connections + the probe).
    Saves one of its JPEGs to jpeg_path for the floor."""
    row = {"size": size, "clients": n, "error": None}
    server = Server(binary, ["--source", f"pattern:{size}@{FPS}", "--detector", "none"] +
                    limit_flags(flags, n))
    viewers = probe = None
    try:
        url = server.wait_ready()
        with open(jpeg_path, "wb") as f:
            f.write(get_bytes(server.port, "/snapshot.jpg", timeout=10))
        if n > 1:
            viewers = Viewers(client, url, ["--clients", str(n - 1), "--stdin-control"])
            row["ready"] = viewers.wait_line("ready", 60)
        time.sleep(warmup)
        lead = 1.5  # the probe connects and settles before the window
        probe = start_probe(binary, url, seconds + lead + 0.5)
        time.sleep(lead)
        row["server_cpu"] = measure(server.pid, viewers, seconds)
        row["rss_mb"] = status_mb(server.pid, "VmRSS")
        row["hwm_mb"] = status_mb(server.pid, "VmHWM")
        row["probe"] = probe_result(probe, seconds + 30)
        row["viewers"] = viewers.result() if viewers else None
        row["alive"] = server.alive()
    except Exception as e:
        row["error"] = str(e)
    finally:
        if probe is not None and probe.poll() is None:
            probe.kill()
            probe.communicate()
        if viewers is not None:
            viewers.kill()
        row["server_exit"] = server.stop()
        if row["error"]:
            row["stderr_tail"] = tail(server)
    summarize(row)
    return row


def run_floor(floor, client, jpeg_path, n, seconds, warmup, row):
    """fanout_floor with n fanout_client viewers; its figures go into `row`."""
    server = floor_server(floor, jpeg_path, FPS)
    viewers = None
    try:
        url = server.wait_ready()
        viewers = Viewers(client, url, ["--clients", str(n), "--stdin-control"])
        viewers.wait_line("ready", 60)
        time.sleep(warmup + 1.5)  # as long as freshframe's viewers had
        row["floor_cpu"] = measure(server.pid, viewers, seconds)
        row["floor_rss_mb"] = status_mb(server.pid, "VmRSS")
        v = viewers.result()
        fps = [c.get("fps", 0.0) for c in v.get("per_client", [])]
        row["floor_fps_min"] = min(fps) if fps else None
        row["floor_fps_median"] = statistics.median(fps) if fps else None
        row["floor_failed"] = v.get("failed") or 0
        row["floor_hdr_p99"] = dig(v, "header_latency_ms", "p99")
    except Exception as e:
        row["floor_error"] = str(e)
    finally:
        if viewers is not None:
            viewers.kill()
        server.stop()
    return row


def summarize(row):
    p = row.get("probe") or {}
    v = row.get("viewers") or {}
    fps = [c.get("fps", 0.0) for c in v.get("per_client", [])]
    if p:
        fps.append(dig(p, "fps", "min", default=0.0) if p.get("failed_clients") == 0 else 0.0)
    row["fps_all"] = fps
    row["fps_min"] = min(fps) if fps else None
    row["fps_median"] = statistics.median(fps) if fps else None
    row["below"] = sum(1 for f in fps if f < MIN_FPS)
    row["failed"] = (v.get("failed") or 0) + (p.get("failed_clients") or 0)
    row["p50"] = dig(p, "latency_ms", "p50")
    row["p99"] = dig(p, "latency_ms", "p99")
    row["hdr_p99"] = dig(v, "header_latency_ms", "p99")


def derive(rows):
    """Figures that need other rows: memory per viewer against the one-viewer
    row of the same size, and the fan-out's own CPU (the server's minus that
    row's: the pattern, the encoder and the probe's viewer, which the floor
    does not have)."""
    single = {r["size"]: r for r in rows if r["clients"] == 1 and r.get("rss_mb")}
    for r in rows:
        base = single.get(r["size"])
        if r["clients"] > 1 and base and r.get("rss_mb") is not None:
            r["kib_per_viewer"] = (r["rss_mb"] - base["rss_mb"]) * 1024 / (r["clients"] - 1)
        floor_cpu = r.get("floor_cpu")
        if floor_cpu and r["clients"] >= FLOOR_FROM:
            r["ratio"] = r["server_cpu"] / floor_cpu if r.get("server_cpu") is not None else None
            if base and base.get("server_cpu") is not None and r.get("server_cpu") is not None:
                r["fanout_cpu"] = r["server_cpu"] - base["server_cpu"]
                r["fanout_ratio"] = r["fanout_cpu"] / floor_cpu


def check(row):
    reasons = []
    if row.get("error"):
        reasons.append(row["error"])
    if row.get("floor_error"):
        reasons.append("floor: " + row["floor_error"])
    p = row.get("probe")
    if p is not None:
        if p.get("failed_clients"):
            reasons.append("probe failed: " + "; ".join(
                c.get("error", "") for c in p.get("per_client", []) if c.get("error")))
        if p.get("no_strip"):
            reasons.append(f"probe: {p['no_strip']} frames without a readable strip")
    v = row.get("viewers")
    if v and v.get("failed"):
        reasons.append(f"{v['failed']} viewers failed: {v.get('errors')}")
    if row.get("server_exit") not in (0, None):
        reasons.append(f"server exited {row['server_exit']} on SIGTERM")
    n = row["clients"]
    if row["size"] == "1280x720" and n in TARGET_CLIENTS:
        if row.get("below"):
            reasons.append(f"{row['below']} of {n} viewers below {MIN_FPS:g} fps "
                           f"(min {fmt(row.get('fps_min')).strip()})")
        if row.get("p99") is None or row["p99"] > MAX_P99_MS:
            reasons.append(f"p99 {fmt(row.get('p99')).strip()} ms > {MAX_P99_MS:g} ms")
        if row.get("server_cpu") is None or row["server_cpu"] >= MAX_CPU_CORES:
            reasons.append(f"server cpu {fmt(row.get('server_cpu'), '.2f').strip()} >= "
                           f"{MAX_CPU_CORES:g} cores")
    if n >= FLOOR_FROM and "floor_cpu" in row:
        ratio = row.get("fanout_ratio")
        if ratio is None or ratio > MAX_FLOOR_RATIO:
            reasons.append(f"fan-out cpu {fmt(ratio, '.2f').strip()}x the floor's "
                           f"(> {MAX_FLOOR_RATIO:g}x)")
        floor_min = row.get("floor_fps_min") or 0.0
        if floor_min >= MIN_FPS and (row.get("fps_min") or 0.0) < MIN_FPS:
            reasons.append(f"the floor holds {floor_min:.1f} fps, freshframe's slowest viewer "
                           f"{fmt(row.get('fps_min')).strip()}")
        if (row.get("fps_median") or 0.0) < (row.get("floor_fps_median") or 0.0) - FPS_SLACK:
            reasons.append(f"median fps {fmt(row.get('fps_median')).strip()} below the floor's "
                           f"{fmt(row.get('floor_fps_median')).strip()}")
        kib = row.get("kib_per_viewer")
        if kib is not None and kib > MAX_KIB_PER_VIEWER:
            reasons.append(f"{kib:.0f} KiB per viewer > {MAX_KIB_PER_VIEWER:g}")
    row["pass"] = not reasons
    row["reasons"] = reasons


def tail(server):
    try:
        return server.stderr()[-1500:]
    except Exception:
        return ""


def run_churn(binary, client, flags, clients, steady, seconds, min_life, max_life):
    """Viewers join and leave for `seconds` next to `steady` steady viewers."""
    res = {"error": None, "clients": clients, "steady_count": steady, "seconds": seconds,
           "samples": []}
    server = Server(binary, ["--source", f"pattern:1280x720@{FPS}", "--detector", "none"] +
                    limit_flags(flags, clients + steady))
    base = churn = None
    try:
        url = server.wait_ready()
        base = Viewers(client, url, ["--clients", str(steady), "--stdin-control"])
        base.wait_line("ready", 30)
        base.say("go")
        time.sleep(3.0)
        res["rss_before_mb"] = status_mb(server.pid, "VmRSS")
        churn = Viewers(client, url, ["--mode", "churn", "--clients", str(clients), "--seconds",
                                      f"{seconds:g}", "--min-life-ms", str(min_life),
                                      "--max-life-ms", str(max_life)])
        churn.wait_line("ready", 30)
        t0 = time.monotonic()
        while churn.proc.poll() is None and time.monotonic() - t0 < seconds + 10:
            res["samples"].append((round(time.monotonic() - t0, 2), status_mb(server.pid, "VmRSS")))
            time.sleep(0.5)
        res["churn"] = churn.result()
        time.sleep(2.0)  # the server notices the last departures
        res["rss_after_mb"] = status_mb(server.pid, "VmRSS")
        res["hwm_mb"] = status_mb(server.pid, "VmHWM")
        stats = get_json(server.port, "/api/stats")
        res["sessions_after"] = stats.get("client_count")
        res["healthz"] = get_json(server.port, "/healthz").strip()
        base.say("stop")
        res["steady"] = base.result()
        res["alive"] = server.alive()
    except Exception as e:
        res["error"] = str(e)
    finally:
        for v in (churn, base):
            if v is not None:
                v.kill()
        res["server_exit"] = server.stop()
        if res["error"]:
            res["stderr_tail"] = tail(server)
    check_churn(res)
    return res


def check_churn(res):
    reasons = []
    if res.get("error"):
        reasons.append(res["error"])
    before, after = res.get("rss_before_mb"), res.get("rss_after_mb")
    samples = [mb for t, mb in res.get("samples", []) if mb is not None]
    if before is None or after is None or len(samples) < 6:
        reasons.append("no RSS figures")
    else:
        third = len(samples) // 3
        res["mid_peak_mb"] = max(samples[third:2 * third])
        res["late_peak_mb"] = max(samples[2 * third:])
        res["peak_mb"] = max(samples)
        if after - before > CHURN_RSS_SLACK_MB:
            reasons.append(f"RSS grew {after - before:.1f} MB (> {CHURN_RSS_SLACK_MB:g})")
        if res["late_peak_mb"] - res["mid_peak_mb"] > CHURN_TREND_MB:
            reasons.append(f"RSS still climbing: last third peak {res['late_peak_mb']:.1f} MB vs "
                           f"middle third {res['mid_peak_mb']:.1f} MB")
    if res.get("sessions_after") not in (None, res["steady_count"]):
        reasons.append(f"{res.get('sessions_after')} sessions after the churn, expected the "
                       f"steady ones only")
    steady = res.get("steady")
    if steady and steady.get("failed"):
        reasons.append(f"{steady['failed']} steady viewers failed: {steady.get('errors')}")
    churn = res.get("churn") or {}
    if churn and churn.get("streamed", 0) == 0:
        reasons.append("no churn connection streamed")
    if res.get("server_exit") not in (0, None):
        reasons.append(f"server exited {res['server_exit']} on SIGTERM")
    res["pass"] = not reasons
    res["reasons"] = reasons


def fmt(v, spec=".1f", width=6):
    if v is None:
        return "-".rjust(width)
    try:
        return format(v, spec).rjust(width)
    except (TypeError, ValueError):
        return str(v).rjust(width)


COLUMNS = [("size", 8), ("clients", 7), ("fps min/med", 11), ("floor fps", 11),
           ("<29fps", 6), ("failed", 6), ("p50 ms", 6), ("p99 ms", 6), ("hdr p99", 11),
           ("cpu", 5), ("floor", 5), ("ratio", 5), ("fan-out", 7), ("f.ratio", 7),
           ("rss MB", 6), ("KiB/v", 5), ("result", 6)]


def header():
    return " ".join(name.rjust(w) for name, w in COLUMNS)


def pair(a, b, width):
    return f"{fmt(a, '.1f', 0)}/{fmt(b, '.1f', 0)}".rjust(width)


def line(row):
    cells = [
        row["size"].rjust(8),
        fmt(row["clients"], "d", 7),
        pair(row.get("fps_min"), row.get("fps_median"), 11),
        pair(row.get("floor_fps_min"), row.get("floor_fps_median"), 11),
        fmt(row.get("below"), "d", 6),
        fmt(row.get("failed"), "d", 6),
        fmt(row.get("p50"), ".1f", 6),
        fmt(row.get("p99"), ".1f", 6),
        pair(row.get("hdr_p99"), row.get("floor_hdr_p99"), 11),
        fmt(row.get("server_cpu"), ".2f", 5),
        fmt(row.get("floor_cpu"), ".2f", 5),
        fmt(row.get("ratio"), ".2f", 5),
        fmt(row.get("fanout_cpu"), ".2f", 7),
        fmt(row.get("fanout_ratio"), ".2f", 7),
        fmt(row.get("rss_mb"), ".0f", 6),
        fmt(row.get("kib_per_viewer"), ".0f", 5),
        ("PASS" if row["pass"] else "FAIL").rjust(6),
    ]
    return " ".join(cells)


def churn_lines(res):
    c = res.get("churn") or {}
    s = res.get("steady") or {}
    series = " ".join(f"{mb:.0f}" for t, mb in res.get("samples", [])[::2] if mb is not None)
    return [
        f"churn: {res['clients']} viewers at a time for {res['seconds']:g} s (lives "
        f"{res['min_life']}-{res['max_life']} ms, leaving by close/RST/mid-request/head-only) "
        f"next to {res['steady_count']} steady viewers",
        f"  connections {c.get('connects', '-')}, streamed {c.get('streamed', '-')}, "
        f"exits {c.get('exits', '-')}, unexpected {c.get('unexpected', {}) or 0}",
        f"  steady viewers during churn: fps min {fmt(dig(s, 'fps', 'min'), '.1f', 0)}, "
        f"failed {s.get('failed', '-')}; sessions after: {res.get('sessions_after', '-')}, "
        f"/healthz {res.get('healthz', '-')!r}",
        f"  RSS MB: before {fmt(res.get('rss_before_mb'), '.1f', 0)}, peak "
        f"{fmt(res.get('peak_mb'), '.1f', 0)}, after {fmt(res.get('rss_after_mb'), '.1f', 0)} "
        f"(middle-third peak {fmt(res.get('mid_peak_mb'), '.1f', 0)}, last-third peak "
        f"{fmt(res.get('late_peak_mb'), '.1f', 0)}); every 1 s: {series}",
        f"  target: after-before <= {CHURN_RSS_SLACK_MB:g} MB, no climb > {CHURN_TREND_MB:g} MB, "
        f"sessions released -> {'PASS' if res['pass'] else 'FAIL'}",
    ]


def parse_cases(text):
    cases = []
    for item in text.split(","):
        size, _, n = item.partition(":")
        w, _, h = size.partition("x")
        if not (w.isdigit() and h.isdigit() and n.isdigit() and int(n) >= 1):
            raise ValueError(item)
        cases.append((size, int(n)))
    return cases


def main():
    ap = argparse.ArgumentParser(
        description="freshframe MJPEG fan-out benchmark beside the floor (bench/fanout/README.md)")
    ap.add_argument("--binary", default=os.environ.get("FRESHFRAME_BINARY",
                                                      os.path.join(DEFAULT_BUILD, "freshframe")),
                    help="freshframe binary (default build/release/freshframe)")
    ap.add_argument("--client", default=None,
                    help="fanout_client binary (default: bench/fanout_client next to the binary)")
    ap.add_argument("--floor", default=None,
                    help="fanout_floor binary (default: bench/fanout_floor next to the binary)")
    ap.add_argument("--cases", default=CASES,
                    help=f"SIZE:VIEWERS,... (default {CASES})")
    ap.add_argument("--clients", default=None,
                    help="viewer counts at 1280x720, comma-separated (instead of --cases)")
    ap.add_argument("--no-floor", action="store_true", help="skip the floor rows")
    ap.add_argument("--seconds", type=float, default=10.0, help="measurement window (10)")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds before the window (2)")
    ap.add_argument("--churn-seconds", type=float, default=20.0, help="churn phase length (20); 0 skips it")
    ap.add_argument("--churn-clients", type=int, default=200, help="churning viewers at a time (200)")
    ap.add_argument("--churn-steady", type=int, default=10, help="steady viewers during churn (10)")
    ap.add_argument("--min-life-ms", type=int, default=200)
    ap.add_argument("--max-life-ms", type=int, default=2000)
    ap.add_argument("--json", metavar="FILE", help="also save everything as JSON")
    args = ap.parse_args()

    binary = os.path.abspath(args.binary)
    bench_dir = os.path.join(os.path.dirname(binary), "bench")
    client = os.path.abspath(args.client or os.path.join(bench_dir, "fanout_client"))
    floor = os.path.abspath(args.floor or os.path.join(bench_dir, "fanout_floor"))
    needed = [(binary, "freshframe"), (client, "fanout_client")]
    if not args.no_floor:
        needed.append((floor, "fanout_floor"))
    for path, what in needed:
        if not os.access(path, os.X_OK):
            print(f"{what} binary not found: {path} (cmake --build build/release --target "
                  f"freshframe fanout_client fanout_floor, or pass --binary/--client/--floor)",
                  file=sys.stderr)
            return 2
    try:
        cases = (parse_cases(",".join(f"1280x720:{n}" for n in args.clients.split(",") if n))
                 if args.clients else parse_cases(args.cases))
    except ValueError as e:
        print(f"--cases/--clients: want SIZE:VIEWERS (1280x720:200) or counts, got {e}",
              file=sys.stderr)
        return 2
    if args.seconds < 2 or not cases:
        print("--seconds must be >= 2, and at least one case", file=sys.stderr)
        return 2

    flags = run_flags(binary)
    print(f"# freshframe fan-out bench: {binary}")
    print(f"# source pattern:SIZE@{FPS}, --detector none, extra flags: "
          f"{' '.join(flags) or '(none)'} (values: max(1000, viewers + 16))")
    print(f"# {os.cpu_count()} CPUs, {platform.platform()}; {args.warmup:g} s warm-up, "
          f"{args.seconds:g} s window; freshframe's viewers = fanout_client connections + 1 "
          f"freshframe probe; the floor's = fanout_client connections")
    print("# fps min/med: per-viewer parts/s in the window (floor fps: the same for the floor "
          "writer); p50/p99: probe capture-to-client ms (timecode strip); hdr p99: "
          "X-Frame-Timestamp to part received, freshframe/floor; cpu, floor: server cores; "
          "ratio: cpu/floor; fan-out: cpu minus the 1-viewer row's (pattern + encoder); "
          "f.ratio: fan-out/floor; rss: VmRSS at the end; KiB/v: RSS per viewer beyond the "
          "1-viewer row")
    print(f"# targets: 1280x720 1/50/200 viewers fps>={MIN_FPS:g} p99<={MAX_P99_MS:g} "
          f"cpu<{MAX_CPU_CORES:g}; from {FLOOR_FROM} viewers f.ratio<={MAX_FLOOR_RATIO:g}, every "
          f"viewer >={MIN_FPS:g} fps where the floor's slowest is, median fps >= the floor's, "
          f"<={MAX_KIB_PER_VIEWER:g} KiB/viewer")
    print(header(), flush=True)
    rows = []
    churn = None
    workdir = tempfile.mkdtemp(prefix="fanout-bench-")
    try:
        for size, n in cases:
            jpeg = os.path.join(workdir, f"{size}.jpg")
            row = run_fanout(binary, client, flags, size, n, args.seconds, args.warmup, jpeg)
            if not args.no_floor and os.path.exists(jpeg):
                run_floor(floor, client, jpeg, n, args.seconds, args.warmup, row)
            rows.append(row)
            derive(rows)
            check(row)
            print(line(row), flush=True)
        if args.churn_seconds > 0:
            churn = run_churn(binary, client, flags, args.churn_clients, args.churn_steady,
                              args.churn_seconds, args.min_life_ms, args.max_life_ms)
            churn["min_life"], churn["max_life"] = args.min_life_ms, args.max_life_ms
            for text in churn_lines(churn):
                print(text, flush=True)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    failed = [r for r in rows if not r["pass"]]
    for r in failed:
        print(f"FAIL {r['size']} {r['clients']} viewers: " + "; ".join(r["reasons"]))
        if r.get("stderr_tail"):
            print("  server stderr tail: " + r["stderr_tail"].strip().replace("\n", "\n  "))
    if churn is not None and not churn["pass"]:
        print("FAIL churn: " + "; ".join(churn["reasons"]))
        if churn.get("stderr_tail"):
            print("  server stderr tail: " + churn["stderr_tail"].strip().replace("\n", "\n  "))
    checks = len(rows) + (1 if churn is not None else 0)
    bad = len(failed) + (1 if churn is not None and not churn["pass"] else 0)
    print(f"# {checks - bad}/{checks} PASS")
    if args.json:
        for r in rows:
            if r.get("viewers"):
                r["viewers"].pop("per_client", None)  # fps_all has them
        doc = {"binary": binary, "flags": flags, "seconds": args.seconds, "warmup": args.warmup,
               "cpus": os.cpu_count(), "platform": platform.platform(),
               "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "rows": rows, "churn": churn}
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
        print(f"# saved {args.json}")
    expected = len(cases) + (1 if args.churn_seconds > 0 else 0)
    return 1 if bad or checks < expected else 0


if __name__ == "__main__":
    sys.exit(main())
