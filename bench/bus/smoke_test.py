#!/usr/bin/python3
"""ctest bench.bus: bus_bench's harness, cut to tiny frames and a few dozen
frames per run, so that it cannot rot. It asserts that every transport
(the futex floor, the bus's three modes, UDS, ZeroMQ and Python's
multiprocessing.Queue) produced latency and throughput figures and that the
target checks were evaluated; not how fast anything was (that is the
benchmark's job, on a quiet machine).

    /usr/bin/python3 bench/bus/smoke_test.py --binary build/release/bench/bus_bench
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

TRANSPORTS = ["futex-floor", "bus", "bus-copy", "bus-publish", "uds", "zmq-ipc", "py-mp-queue"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out_json = os.path.join(tmp, "bus.json")
        cmd = [args.binary, "--frames", "40", "--rate", "400", "--seconds", "0.2",
               "--sizes", "64x48", "--readers", "1,2", "--py-frames", "5", "--py-rate", "20",
               "--py-seconds", "0.2", "--json", out_json]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
        sys.stdout.write(run.stdout)
        # 0: every check passed, 1: a check failed (figures on a shared machine
        # are not this test's business); 2 or a signal: a run broke.
        if run.returncode not in (0, 1):
            sys.stderr.write(run.stderr)
            sys.exit(f"FAIL: bus_bench exited {run.returncode}")
        with open(out_json) as f:
            report = json.load(f)
    failures = []
    rows = {(r["transport"], r["readers"]): r for r in report["rows"]}
    for transport in TRANSPORTS:
        for readers in (1, 2):
            row = rows.get((transport, readers))
            if row is None:
                failures.append(f"no {transport} row with {readers} reader(s)")
                continue
            if row["error"]:
                failures.append(f"{transport}/{readers}: {row['error']}")
            lat = row["latency"]
            if not lat or lat["n"] <= 0 or not lat["p50_us"] > 0:
                failures.append(f"{transport}/{readers}: no latency samples ({lat})")
            if not row["pub_fps"] > 0 or not row["recv_fps_min"] > 0:
                failures.append(f"{transport}/{readers}: no throughput figures")
            if transport in ("futex-floor", "bus") and not row["wake_after_publish_returned"]:
                failures.append(f"{transport}/{readers}: no wake-up figures")
    checks = report["checks"]
    names = " | ".join(c["name"] for c in checks)
    if not any(c["name"].startswith("bus p99 < 50 us") for c in checks):
        failures.append(f"no latency target check: {names}")
    # The bus checks quote the floor measured in the same run.
    if not all("futex floor" in c["detail"] for c in checks if c["name"].startswith("bus p99 <")):
        failures.append("a bus latency check does not quote the futex floor")
    if failures:
        sys.exit("FAIL:\n  " + "\n  ".join(failures))
    print(f"PASS: {len(report['rows'])} rows, {len(checks)} checks evaluated")


if __name__ == "__main__":
    main()
