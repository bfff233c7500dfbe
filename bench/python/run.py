#!/usr/bin/python3
"""bench/python: freshframe's Python package against the guide's designs (issue 15).

Part 1, hand-off: a frame from a publish to a Python process holding it as
a numpy array, p50/p99/max microseconds at 640x480, 1280x720 and 1920x1080,
for freshframe (Publisher -> C++ bus -> Subscriber view), the guide's
multiprocessing.Queue of numpy frames and its multiprocessing.shared_memory
ring with a Queue of names (handoff.py says exactly what is timed).

Part 2, end to end at 640x480@30 with the Haar face model: `freshframe run
--publish B --detector bus:B.detections` with examples/python/run_ml.py
against the built-in `--detector faces --detector-threads 1`: stream fps and
capture-to-client latency from `freshframe probe`, the detector's rate from
/api/stats (e2e.py).

Debian's /usr/bin/python3 with python3-numpy (and python3-opencv for part 2).
Exit status: 0 every target PASS, 1 a target FAIL or a row failed, 2 usage
error. See bench/python/README.md.
"""
import argparse
import json
import multiprocessing as mp
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)

SIZES = ((640, 480), (1280, 720), (1920, 1080))
HANDOFF_P99_TARGET_US = 200.0  # at 1920x1080
HANDOFF_RATIO_TARGET = 100.0  # Queue p99 / freshframe p99, at 1920x1080


def percentiles(values):
    """Nearest-rank p50/p99 and max of `values` (µs), or None if empty."""
    if not values:
        return None
    v = sorted(values)
    n = len(v)

    def rank(q):
        return v[min(n - 1, max(0, -(-int(q * n * 1000) // 1000) - 1))]

    return {"n": n, "p50": rank(0.50), "p99": rank(0.99), "max": v[-1]}


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default=os.environ.get("FRESHFRAME_BINARY") or
                    os.path.join(REPO, "build", "release", "freshframe"))
    ap.add_argument("--python-path", default=None,
                    help="directory holding the freshframe package (default: next to --binary)")
    ap.add_argument("--quick", action="store_true",
                    help="fewer frames and shorter probes (about 1.5 minutes)")
    ap.add_argument("--json", metavar="OUT", help="write every figure as JSON to OUT")
    ap.add_argument("--frames", type=int, help="hand-off: measured frames per row (300)")
    ap.add_argument("--rounds", type=int, help="hand-off: rows of a size run in this many "
                    "interleaved rounds of frames/rounds frames each (3)")
    ap.add_argument("--rate", type=float, default=100.0, help="hand-off: frames per second (100)")
    ap.add_argument("--free-running", action="store_true",
                    help="hand-off: do not wait for the consumer to hold a frame before sending "
                    "the next (slow rows then also measure waiting behind earlier frames)")
    ap.add_argument("--warmup-frames", type=int, default=30,
                    help="hand-off: frames sent before the measured ones, per round (30)")
    ap.add_argument("--seconds", type=float, help="end to end: probe seconds (15)")
    ap.add_argument("--warmup", type=float, default=4.0,
                    help="end to end: seconds from serving to the probe (4)")
    ap.add_argument("--e2e-rounds", type=int,
                    help="end to end: alternate the two systems this many times (3)")
    ap.add_argument("--model-nice", type=int, default=10,
                    help="end to end: nice value of the Python model (10, as freshframe's own "
                    "detector thread; 0 = as started by hand)")
    ap.add_argument("--skip-handoff", action="store_true")
    ap.add_argument("--skip-e2e", action="store_true")
    args = ap.parse_args(argv)
    quick = args.quick
    args.frames = args.frames or (100 if quick else 300)
    args.rounds = args.rounds or (2 if quick else 3)
    args.seconds = args.seconds or (6.0 if quick else 15.0)
    args.e2e_rounds = args.e2e_rounds or (1 if quick else 3)
    if args.python_path is None:
        args.python_path = os.path.join(os.path.dirname(os.path.abspath(args.binary)), "python")
    args.python_path = os.path.abspath(args.python_path)
    return args


def verdict(ok):
    return "PASS" if ok else "FAIL"


# ---------------------------------------------------------------------------
# Part 1

def run_handoff(args, log):
    import handoff
    from multiprocessing import resource_tracker

    ctx = mp.get_context("fork")
    # One resource tracker for every child (started before any fork), not one
    # per shared_memory producer.
    resource_tracker.ensure_running()
    per_round = max(1, args.frames // args.rounds)
    sizes = []
    import freshframe
    for (w, h) in SIZES:
        merged = {k: {"latency_us": [], "total_us": [], "bad": 0, "lost": 0, "sent": 0, "late": 0, "seconds": 0.0}
                  for k in handoff.KINDS}
        extra = {"copy_us": [], "copies": 0, "skipped": 0, "dropped": 0}
        errors = []
        for r in range(args.rounds):
            order = handoff.KINDS[r % 3:] + handoff.KINDS[:r % 3]  # rotate who goes first
            for kind in order:
                bus = f"ffpybench.{os.getpid()}.{w}x{h}.{r}"
                log(f"  hand-off {w}x{h} round {r + 1}/{args.rounds}: {kind} ...")
                try:
                    row = handoff.run_row(ctx, kind, w, h, per_round, args.warmup_frames,
                                          args.rate, bus, lockstep=not args.free_running)
                except Exception as e:  # noqa: BLE001 - reported in the table
                    errors.append(f"{kind} round {r + 1}: {e}")
                    log(f"    FAILED: {e}")
                    continue
                finally:
                    if kind == handoff.FRESHFRAME:
                        freshframe.unlink(bus)
                m = merged[kind]
                m["latency_us"] += row["latency_us"]
                m["total_us"] += row["total_us"]
                m["bad"] += row["bad"]
                m["lost"] += row["lost"]
                m["sent"] += row["sent"]
                m["late"] += row["late"]
                m["seconds"] += row["seconds"]
                if kind == handoff.FRESHFRAME:
                    for k in extra:
                        extra[k] += row[k]
                p = percentiles(row["latency_us"])
                if p:
                    log(f"    p50 {p['p50']:.0f} p99 {p['p99']:.0f} max {p['max']:.0f} us")
        rows = {}
        for kind, m in merged.items():
            rows[kind] = {"stats": percentiles(m["latency_us"]),
                          "total": percentiles(m["total_us"]), "bad": m["bad"],
                          "lost": m["lost"], "sent": m["sent"], "late": m["late"],
                          "rate_hz": ((m["sent"] + args.rounds * args.warmup_frames) / m["seconds"]
                                      if m["seconds"] else None),
                          "latency_us": m["latency_us"], "total_us": m["total_us"]}
        rows[handoff.FRESHFRAME].update({
            "copy": percentiles(extra["copy_us"]),
            "copies": extra["copies"], "skipped": extra["skipped"], "dropped": extra["dropped"]})
        sizes.append({"width": w, "height": h, "rows": rows, "errors": errors})
    return sizes


def run_floor(args, log):
    """This machine's floor in the same run: bench/bus's bus_bench (next to
    the binary) at the same sizes, rate and frame count, 1 reader: a bare
    futex wake-up between two C++ processes, and the bus to a C++ reader's
    view (stamped before Commit of a frame already in its slot). {size: {...}}"""
    import subprocess
    import tempfile
    tool = os.path.join(os.path.dirname(os.path.abspath(args.binary)), "bench", "bus_bench")
    if not os.path.isfile(tool):
        log(f"  floor: no {tool} (build the bus_bench target): floor rows skipped")
        return {}
    sizes = ",".join(f"{w}x{h}" for w, h in SIZES)
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        log(f"  floor: {tool} futex-floor and bus at {sizes} ...")
        done = subprocess.run([tool, "--frames", str(args.frames), "--rate", str(args.rate),
                               "--sizes", sizes, "--readers", "1", "--transports",
                               "futex-floor,bus", "--no-python", "--json", out.name],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              timeout=600)
        if done.returncode not in (0, 1):  # 1: its own targets failed; figures are there
            log(f"  floor: bus_bench exited {done.returncode}: {done.stderr[-500:]}")
            return {}
        rows = json.load(open(out.name))["rows"]
    floor = {}
    for row in rows:
        lat = row.get("latency") or {}
        if row.get("error") or "p50_us" not in lat:
            continue
        floor.setdefault(row["size"], {})[row["transport"]] = {
            "p50": lat["p50_us"], "p99": lat["p99_us"], "max": lat["max_us"], "n": lat["n"],
            "other_cpu_percent": row.get("other_processes_cpu_percent")}
    return floor


ROW_NAMES = {"freshframe": "freshframe bus -> Subscriber view",
             "queue": "mp.Queue(maxsize=2) of numpy frames",
             "shm": "shared_memory ring + Queue of names"}


def handoff_targets(sizes):
    """(description, ok) for the 1920x1080 targets."""
    big = next((s for s in sizes if (s["width"], s["height"]) == (1920, 1080)), None)
    if big is None:
        return []
    ff = big["rows"]["freshframe"]["stats"]
    q = big["rows"]["queue"]["stats"]
    out = []
    ff_p99 = ff["p99"] if ff else None
    out.append((f"hand-off p99 at 1920x1080 < {HANDOFF_P99_TARGET_US:.0f} us "
                f"(freshframe {fmt(ff_p99, '.0f')} us)",
                ff_p99 is not None and ff_p99 < HANDOFF_P99_TARGET_US))
    ratio = q["p99"] / ff_p99 if (q and ff_p99) else None
    out.append((f"hand-off p99 at 1920x1080 >= {HANDOFF_RATIO_TARGET:.0f}x below Queue "
                f"({fmt(ratio, '.0f')}x)",
                ratio is not None and ratio >= HANDOFF_RATIO_TARGET))
    clean = all(not s["errors"] and all(r["bad"] == 0 for r in s["rows"].values()) and
                s["rows"]["freshframe"]["copies"] == 0 for s in sizes)
    out.append(("every hand-off row ran, right pixels, freshframe frames were views", clean))
    return out


def fmt(v, spec=".1f", width=0):
    text = "-" if v is None else format(v, spec)
    return text.rjust(width)


FLOOR_NAMES = {"futex-floor": "floor: futex wake-up, C++ to C++ (no frame)",
               "bus": "floor: bus -> C++ reader's view"}


def print_handoff(sizes, args):
    mode = ("free-running" if args.free_running else
            "lock-step: the next frame once the consumer holds the previous one")
    print(f"\n## Hand-off: frame handed over -> Python holds the numpy array (us), "
          f"{args.frames} frames per row at up to {args.rate:g} Hz ({mode}), in "
          f"{args.rounds} interleaved rounds (+{args.warmup_frames} warm-up frames each)\n")
    print("hand-off: from the frame in the transport (freshframe: the commit into the slot; "
          "shm: after the copy into the buffer; Queue: before put(), pickling is its "
          "transport). total: from before the producer touched the frame (with the one copy "
          "into shared memory). Ratios are the row's p50/p99 hand-off over freshframe's.\n")
    print("| size | row | hand-off p50 us | p99 us | max us | p50 ratio | p99 ratio | "
          "total p50 us | total p99 us | frames | Hz | lost | bad |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for s in sizes:
        ff = s["rows"]["freshframe"]["stats"]
        for kind in ("freshframe", "queue", "shm"):
            r = s["rows"][kind]
            st, tot = r["stats"], r["total"]
            r50 = st["p50"] / ff["p50"] if (st and ff and ff["p50"] > 0) else None
            r99 = st["p99"] / ff["p99"] if (st and ff and ff["p99"] > 0) else None
            print(f"| {s['width']}x{s['height']} | {ROW_NAMES[kind]} | "
                  f"{fmt(st and st['p50'], '.0f')} | {fmt(st and st['p99'], '.0f')} | "
                  f"{fmt(st and st['max'], '.0f')} | {fmt(r50, '.1f')}x | {fmt(r99, '.1f')}x | "
                  f"{fmt(tot and tot['p50'], '.0f')} | {fmt(tot and tot['p99'], '.0f')} | "
                  f"{st['n'] if st else 0} | {fmt(r['rate_hz'], '.0f')} | {r['lost']} | "
                  f"{r['bad']} |")
        for transport, name in FLOOR_NAMES.items():
            f = s.get("floor", {}).get(transport)
            if f:
                r50 = f["p50"] / ff["p50"] if ff and ff["p50"] > 0 else None
                r99 = f["p99"] / ff["p99"] if ff and ff["p99"] > 0 else None
                print(f"| {s['width']}x{s['height']} | {name} | {f['p50']:.0f} | {f['p99']:.0f} | "
                      f"{f['max']:.0f} | {fmt(r50, '.2f')}x | {fmt(r99, '.2f')}x | - | - | "
                      f"{f['n']} | - | - | - |")
    print("\nfreshframe: copy = before publish() -> commit (the C++ copy into the slot); "
          "copies = frames that were not views; skipped = frames the subscriber never saw\n")
    print("| size | copy p50 / p99 us | copies | skipped |")
    print("| --- | ---: | ---: | ---: |")
    for s in sizes:
        r = s["rows"]["freshframe"]
        c = r["copy"]
        print(f"| {s['width']}x{s['height']} | {fmt(c and c['p50'], '.0f')} / "
              f"{fmt(c and c['p99'], '.0f')} | {r['copies']} | {r['skipped']} |")
    for s in sizes:
        for e in s["errors"]:
            print(f"ERROR {s['width']}x{s['height']}: {e}")


# ---------------------------------------------------------------------------

def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not os.path.isfile(os.path.join(args.python_path, "freshframe", "__init__.py")):
        print(f"bench/python: no freshframe package in {args.python_path} (build first, or "
              "pass --python-path)", file=sys.stderr)
        return 2
    sys.path.insert(0, args.python_path)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [args.python_path] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])

    def log(message):
        print(message, file=sys.stderr, flush=True)

    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    result = {"started": started, "python": sys.version.split()[0], "args": vars(args),
              "loadavg_start": os.getloadavg()}
    log(f"bench/python: {started}, load average {os.getloadavg()[0]:.2f} on "
        f"{os.cpu_count()} cores")
    checks = []
    if not args.skip_handoff:
        sizes = run_handoff(args, log)
        floor = run_floor(args, log)
        for s in sizes:
            s["floor"] = floor.get(f"{s['width']}x{s['height']}", {})
        result["handoff"] = sizes
        print_handoff(sizes, args)
        checks += handoff_targets(sizes)
    if not args.skip_e2e:
        import e2e
        if not os.path.isfile(args.binary):
            print(f"bench/python: no binary {args.binary}", file=sys.stderr)
            return 2
        systems = e2e.run_all(args, REPO, log)
        result["e2e"] = systems
        checks += e2e.print_table(systems, args)
    load = os.getloadavg()
    result["loadavg_end"] = load
    print(f"\n## Targets ({started}, Python {result['python']}, {os.cpu_count()} cores, "
          f"load average {result['loadavg_start'][0]:.2f} at the start, {load[0]:.2f} at the end)\n")
    for text, ok in checks:
        print(f"- {verdict(ok)}: {text}")
    result["targets"] = [{"target": t, "pass": ok} for t, ok in checks]
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
