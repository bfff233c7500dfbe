"""bench/compare keeps working: one short configuration of every system.

Runs `bench/compare/run.py --quick` cut down to 640x480, one viewer and a
2 s window, plus a few seconds of the drift and soak runs, and checks that
every system (freshframe run, the three-process pipeline, and the guide's
designs in bench/baselines) produced figures and that every table and plot
was written. It asserts nothing about performance: that is what the
benchmark itself reports (docs/benchmarks.md).

Needs Debian's python3-opencv, python3-flask, python3-gunicorn,
python3-eventlet and python3-matplotlib (scripts/install-deps.sh), and the
strip_sampler and fanout_client programs next to the binary (build/*/bench/).
"""

import csv
import json
import os
import subprocess
import tempfile
import unittest

import ffharness as ff

RUN = os.path.join(ff.REPO_ROOT, "bench", "compare", "run.py")
SYSTEMS = ["freshframe-run", "freshframe-pipeline", "guide-original", "guide-fixed-flask",
           "guide-fixed-gunicorn"]
PLOTS = ["latency_time_640x480.png", "latency_cdf_640x480.png", "cpu_vs_clients.png",
         "fps_vs_clients.png", "parts_vs_clients.png", "drift.png", "soak.png"]
TIMEOUT_S = 270


class CompareQuick(unittest.TestCase):
    def test_every_system_produces_figures_and_plots(self):
        with tempfile.TemporaryDirectory(prefix="ffcompare") as out:
            args = ["/usr/bin/python3", "-B", RUN, "--quick", "--binary", ff.BINARY,
                    "--sizes", "640x480", "--clients", "1", "--seconds", "2", "--settle", "1",
                    "--drift-minutes", "0.1", "--soak-minutes", "0.1", "--soak-size", "640x480",
                    "--soak-clients", "3", "--out", out]
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, errors="replace",
                                    preexec_fn=ff._die_with_parent)
            try:
                log, _ = proc.communicate(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                log, _ = proc.communicate()
                self.fail(f"bench/compare did not finish within {TIMEOUT_S} s:\n{log[-6000:]}")
            print(log[-4000:])
            self.assertEqual(proc.returncode, 0, f"bench/compare failed:\n{log[-6000:]}")

            with open(os.path.join(out, "results.csv")) as f:
                rows = {r["system"]: r for r in csv.DictReader(f)}
            self.assertEqual(sorted(rows), sorted(SYSTEMS))
            for name, row in rows.items():
                for key in ("p50", "p99", "max", "parts_fps", "new_fps", "cpu", "hwm_mb"):
                    self.assertNotEqual(row[key], "", f"{name}: no {key}: {row}")
                    self.assertGreater(float(row[key]), 0.0, f"{name}: {key}: {row}")
                self.assertEqual(row["error"], "", f"{name}: {row}")

            with open(os.path.join(out, "table.md")) as f:
                table = f.read()
            for name in SYSTEMS:
                self.assertIn(f"| {name}", table)
            with open(os.path.join(out, "run.json")) as f:
                doc = json.load(f)
            self.assertEqual(sorted(doc["drift"]), ["freshframe-run", "guide-original"])
            for name, drift in doc["drift"].items():
                self.assertGreater(drift["summary"].get("parts", 0), 0, f"drift {name}: {drift}")
            self.assertGreater(doc["soak"]["summary"].get("parts", 0), 0, doc["soak"])
            self.assertGreater(doc["soak"]["churn"].get("connects", 0), 0, doc["soak"])
            for png in PLOTS:
                path = os.path.join(out, "plots", png)
                self.assertTrue(os.path.isfile(path), f"{png} missing")
                with open(path, "rb") as f:
                    self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", png)
        # The pipeline's buses are removed with it.
        left = [n for n in os.listdir("/dev/shm") if n.startswith("freshframe.ffcmp")]
        self.assertEqual(left, [], "bench/compare left shared-memory buses behind")


if __name__ == "__main__":
    ff.main()
