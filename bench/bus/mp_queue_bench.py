#!/usr/bin/python3
"""Python multiprocessing.Queue carrying numpy frames: the bus_bench comparison row.

The design in the guide (a Flask + multiprocessing.Queue pipeline): one
producer process puts each frame (a numpy BGR array) into one
multiprocessing.Queue(maxsize=2) per consumer process; each consumer get()s.
put() blocks while that consumer's queue is full, so every frame reaches every
consumer and the producer waits for the slowest one.

Latency: the producer stamps time.monotonic_ns() (CLOCK_MONOTONIC, the clock
the C++ rows use) just before the put() calls of a frame; a consumer records
monotonic_ns() - stamp as soon as get() has returned the unpickled array.
Throughput: the producer puts as fast as it can for --seconds.

Prints one JSON object on stdout (bus_bench reads it); progress on stderr.
Without numpy it prints {"skipped": "..."} and exits 0.
Run by bench/bus's bus_bench; standalone: /usr/bin/python3 bench/bus/mp_queue_bench.py --quick
"""

import argparse
import json
import os
import queue
import signal
import sys
import time

PRIME, WARM, MEASURE, END = 0, 1, 2, 3


def die_with_parent():
    """Linux: SIGKILL this process when its parent (the producer) dies."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort; get() times out anyway
        pass


def consumer(q, results, index, latency):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()
    lat = []
    received = 0
    timed_out = False
    results.put(("ready", index))
    while True:
        try:
            item = q.get(timeout=20)
        except queue.Empty:
            timed_out = True
            break
        t = time.monotonic_ns()
        kind, seq, stamp, frame = item
        if kind == END:
            break
        if kind != MEASURE:
            continue
        received += 1
        if latency:
            lat.append(t - stamp)
        del frame
    results.put(("done", index, received, lat, timed_out))


def percentiles(values_ns):
    if not values_ns:
        return None
    v = sorted(values_ns)
    n = len(v)

    def rank(q):
        i = -(-int(q * n * 1000) // 1000)  # ceil without float surprises
        return v[min(n - 1, max(0, i - 1))] / 1e3

    return {"n": n, "p50_us": rank(0.50), "p99_us": rank(0.99), "max_us": v[-1] / 1e3}


def run(ctx, np, width, height, readers, latency, frames, rate, seconds, maxsize):
    frame = np.random.randint(0, 256, (height, width, 3), dtype=np.uint8)
    queues = [ctx.Queue(maxsize=maxsize) for _ in range(readers)]
    results = ctx.Queue()
    procs = [ctx.Process(target=consumer, args=(queues[i], results, i, latency), daemon=True)
             for i in range(readers)]
    for p in procs:
        p.start()
    try:
        for _ in range(readers):
            msg = results.get(timeout=30)
            assert msg[0] == "ready"

        def put_all(kind, seq):
            stamp = time.monotonic_ns()
            for q in queues:
                q.put((kind, seq, stamp, frame))
            return stamp

        period = 1e9 / rate
        seq = 0
        for _ in range(5):  # warm-up: pipes, pickling, first allocations
            seq += 1
            put_all(WARM, seq)
            time.sleep(period / 1e9)
        published = 0
        if latency:
            nxt = time.monotonic_ns() + period
            start = end = None
            for _ in range(frames):
                delay = (nxt - time.monotonic_ns()) / 1e9
                if delay > 0:
                    time.sleep(delay)
                nxt = max(nxt + period, time.monotonic_ns())  # late: do not burst
                seq += 1
                stamp = put_all(MEASURE, seq)
                start = stamp if start is None else start
                end = time.monotonic_ns()
                published += 1
            window = (end - start) / 1e9 if published > 1 else 0
        else:
            start = time.monotonic_ns()
            deadline = start + seconds * 1e9
            while time.monotonic_ns() < deadline:
                seq += 1
                put_all(MEASURE, seq)
                published += 1
            window = (time.monotonic_ns() - start) / 1e9
        seq += 1
        put_all(END, seq)
        done = [results.get(timeout=120) for _ in range(readers)]
        for p in procs:
            p.join(timeout=10)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
    received = [d[2] for d in done]
    lat = [x for d in done for x in d[3]]
    return {
        "published": published,
        "window_s": window,
        "rate": published / window if window > 0 else 0.0,
        "received_min": min(received),
        "latency": percentiles(lat) if latency else None,
        "timed_out": any(d[4] for d in done),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="640x480,1280x720,1920x1080")
    ap.add_argument("--readers", default="1,8")
    ap.add_argument("--frames", type=int, default=150, help="measured frames per latency run")
    ap.add_argument("--rate", type=float, default=10, help="latency runs: put rate, Hz")
    ap.add_argument("--seconds", type=float, default=2.0, help="throughput runs: seconds")
    ap.add_argument("--maxsize", type=int, default=2, help="each consumer's Queue(maxsize)")
    ap.add_argument("--quick", action="store_true", help="30 frames, 0.5 s")
    args = ap.parse_args()
    if args.quick:
        args.frames, args.seconds = 30, 0.5

    try:
        import numpy as np
    except Exception as e:  # noqa: BLE001 - any import failure means "skip"
        print(json.dumps({"skipped": "numpy is not importable by %s (%s); install python3-numpy"
                          % (sys.executable, e)}))
        return 0
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    # bus_bench stops us with SIGTERM: take the consumers down with us.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    sizes = [tuple(int(x) for x in s.split("x")) for s in args.sizes.split(",") if s]
    reader_counts = [int(r) for r in args.readers.split(",") if r]
    rows = []
    for (w, h) in sizes:
        for n in reader_counts:
            print("  py-mp-queue %dx%d, %d reader(s) ..." % (w, h, n), end="", file=sys.stderr,
                  flush=True)
            row = {"transport": "py-mp-queue", "width": w, "height": h, "readers": n,
                   "error": None}
            try:
                lat = run(ctx, np, w, h, n, True, args.frames, args.rate, args.seconds,
                          args.maxsize)
                thr = run(ctx, np, w, h, n, False, args.frames, args.rate, args.seconds,
                          args.maxsize)
                row.update({
                    "latency": lat["latency"],
                    "latency_run_rate_hz": lat["rate"],
                    "latency_run_got_min": (lat["received_min"] / lat["published"]
                                            if lat["published"] else 0.0),
                    "pub_fps": thr["rate"],
                    "recv_fps_min": thr["received_min"] / thr["window_s"] if thr["window_s"] else 0,
                    "published": thr["published"],
                })
                print(" p99 %.0f us, %.0f fps" % (lat["latency"]["p99_us"], thr["rate"]),
                      file=sys.stderr)
            except Exception as e:  # noqa: BLE001 - reported in the row
                row["error"] = "%s: %s" % (type(e).__name__, e)
                print(" FAILED: " + row["error"], file=sys.stderr)
            rows.append(row)
    print(json.dumps({
        "skipped": None,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "pid": os.getpid(),
        "frames": args.frames,
        "rate_hz": args.rate,
        "seconds": args.seconds,
        "maxsize": args.maxsize,
        "rows": rows,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
