#!/usr/bin/python3
"""The multi-process pipeline: `capture | infer | serve` joined by shared-memory
buses, and `run --publish` with a separate `serve`. Kills and restarts stages.

Run: /usr/bin/python3 tests/integration/test_processes.py --binary build/release/freshframe
"""

import json
import os
import signal
import time
import unittest

import ffharness as ff

P99_LIMIT_MS = 200.0
RECOVERY_LIMIT_S = 5.0  # generous: the target (1 s) is measured in bench


class Stage(ff.Server):
    """A freshframe process that prints 'freshframe: running ...' (capture,
    infer) or 'freshframe: serving on ...' (serve, run)."""

    def __init__(self, *args):
        super().__init__()
        self.args = list(args)

    def start(self, timeout=ff.STARTUP_TIMEOUT_S):
        if self.args[0] in ("serve", "run"):
            return super().start(timeout)
        self._start_process()
        deadline = time.monotonic() + timeout
        while self._first_stdout_line() is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.stderr()
                self.stop()
                raise AssertionError(f"freshframe {' '.join(self.args)} did not start "
                                     f"(rc {self.proc.returncode})\nstderr:\n{err}")
            time.sleep(0.02)
        return self

    def _start_process(self):
        import subprocess
        import tempfile
        self._out = tempfile.TemporaryFile()
        self._err = tempfile.TemporaryFile()
        self.proc = ff.popen(self.args, stdin=subprocess.DEVNULL, stdout=self._out,
                             stderr=self._err)


def unlink_bus(name):
    try:
        os.unlink(f"/dev/shm/freshframe.{name}")
    except FileNotFoundError:
        pass


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"{what} within {timeout}s")


class ThreeProcesses(unittest.TestCase):
    def setUp(self):
        tag = f"it{os.getpid()}"
        self.raw, self.annotated = f"{tag}.raw", f"{tag}.annotated"
        self.stages = []
        self.capture = self.start("capture", "--source", "pattern:640x480@30", "--out", self.raw)
        self.infer = self.start_infer()
        self.serve = self.start("serve", "--port", "0", "--in", self.annotated)

    def tearDown(self):
        for stage in self.stages:
            stage.close()
        unlink_bus(self.raw)
        unlink_bus(self.annotated)
        unlink_bus(self.annotated + ".detections")

    def start(self, *args):
        stage = Stage(*args)
        self.stages.append(stage)
        return stage.start()

    def start_infer(self):
        return self.start("infer", "--in", self.raw, "--out", self.annotated, "--detector", "faces")

    def stale(self):
        return self.serve.stats()["stale"]

    def test_probe_like_run(self):
        wait_for(lambda: not self.stale(), 10, "frames reach serve")
        result = ff.run_probe(self.serve.url, seconds=4)
        ff.assert_probe_ok(self, result, clients=1, p99_ms=P99_LIMIT_MS)
        stats = self.serve.stats()
        self.assertEqual(stats["role"], "serve")
        self.assertEqual(stats["input"]["bus"], self.annotated)
        # The detector runs in `infer`; serve says it runs none.
        self.assertEqual(stats["detector"], "none")
        # Stages that ran in the other processes are visible from their stamps.
        for stage in ("grab", "annotate", f"bus:{self.annotated}", "encode", "send"):
            self.assertIn(stage, stats["stages"])
            self.assertGreater(stats["stages"][stage]["frames"], 0, stage)

    def test_serve_relays_detections(self):
        """infer's detection sets reach serve's /api/detections and /api/events
        through the detections bus next to the annotated frames."""
        def detections():
            status, _, body = self.serve.get("/api/detections")
            self.assertEqual(status, 200, body[:200])
            return json.loads(body)

        # One detector run (about 0.2 s for Haar here) makes a set, face or not.
        wait_for(lambda: detections().get("sequence", 0) > 0, 20, "a detection set in serve")
        data = detections()
        self.assertEqual(data["detector"], "faces")
        self.assertEqual((data["width"], data["height"]), (640, 480))
        self.assertIsInstance(data["detections"], list)
        first = data["sequence"]
        wait_for(lambda: detections()["sequence"] > first, 10, "newer detection sets")
        self.assertGreater(self.serve.stats()["detections_input"]["received"], 0)

        head, body = ff.read_events(self.serve.port, lambda buf: b"event: detections" in buf, 15)
        self.assertIn(b"200", head.split(b"\r\n")[0])
        self.assertIn(b"event: detections", body)
        self.assertIn(b'"detector":"faces"', body)

    def test_kill_and_restart_infer(self):
        wait_for(lambda: not self.stale(), 10, "frames reach serve")
        self.infer.proc.send_signal(signal.SIGKILL)
        self.infer.proc.wait()
        wait_for(self.stale, 5, "serve marks the stream stale")
        # serve keeps answering, with the last frame.
        status, headers, body = self.serve.get("/healthz")
        self.assertEqual(status, 200)
        status, headers, body = self.serve.get("/snapshot.jpg", timeout=5)
        self.assertEqual(status, 200)
        self.assertEqual(ff.jpeg_size(body), (640, 480))
        stats = self.serve.stats()
        self.assertFalse(stats["input"]["live"])
        self.assertGreaterEqual(stats["input"]["stale_s"], 1.0)

        restarted = time.monotonic()
        self.infer = self.start_infer()
        back = wait_for(lambda: not self.stale(), RECOVERY_LIMIT_S, "fresh frames again")
        print(f"fresh frames {back - restarted:.2f}s after infer was restarted")
        result = ff.run_probe(self.serve.url, seconds=3)
        ff.assert_probe_ok(self, result, clients=1, p99_ms=P99_LIMIT_MS)

    def test_kill_and_restart_capture(self):
        wait_for(lambda: not self.stale(), 10, "frames reach serve")
        self.capture.proc.send_signal(signal.SIGKILL)
        self.capture.proc.wait()
        wait_for(self.stale, 5, "serve marks the stream stale")
        status, _, _ = self.serve.get("/healthz")
        self.assertEqual(status, 200)
        self.capture = self.start("capture", "--source", "pattern:640x480@30", "--out", self.raw)
        wait_for(lambda: not self.stale(), RECOVERY_LIMIT_S, "fresh frames again")
        result = ff.run_probe(self.serve.url, seconds=3)
        ff.assert_probe_ok(self, result, clients=1, p99_ms=P99_LIMIT_MS)


class RunPublish(unittest.TestCase):
    def test_serve_attaches_to_run(self):
        name = f"itpub{os.getpid()}"
        run = Stage("run", "--port", "0", "--detector", "none", "--publish", name)
        serve = Stage("serve", "--port", "0", "--in", name)
        try:
            run.start()
            serve.start()
            wait_for(lambda: not serve.stats()["stale"], 10, "frames reach serve")
            result = ff.run_probe(serve.url, seconds=3)
            ff.assert_probe_ok(self, result, clients=1, p99_ms=P99_LIMIT_MS)
            self.assertTrue(os.path.exists(f"/dev/shm/freshframe.{name}.raw"))
        finally:
            serve.close()
            run.close()
            unlink_bus(name)
            unlink_bus(name + ".raw")
            unlink_bus(name + ".detections")


class BadBuses(unittest.TestCase):
    def test_bad_names_exit_2(self):
        for args in (["serve", "--in", "a/b"], ["capture", "--out", "x y"],
                     ["infer", "--in", "ok", "--out", "../x"], ["capture", "--bus-mode", "999",
                                                              "--out", "x"],
                     # world-writable, setuid, no owner write; a bad owner
                     ["capture", "--bus-mode", "0666", "--out", "x"],
                     ["capture", "--bus-mode", "4600", "--out", "x"],
                     ["capture", "--bus-mode", "0400", "--out", "x"],
                     ["serve", "--in", "x", "--bus-allow-owner", "nobody"]):
            proc = ff.run_cli(args)
            self.assertEqual(proc.returncode, 2, f"{args}: {proc.stderr}")
            self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)

    def test_not_a_bus_exits_1(self):
        name = f"itjunk{os.getpid()}"
        path = f"/dev/shm/freshframe.{name}"
        with open(path, "wb") as f:
            f.write(b"not a bus" * 1000)
        try:
            proc = ff.run_cli(["serve", "--port", "0", "--in", name])
            self.assertEqual(proc.returncode, 1, proc.stderr)
            self.assertIn("not a freshframe bus", proc.stderr)
        finally:
            os.unlink(path)

    def test_foreign_and_world_writable_buses_exit_1(self):
        """A bus another user owns, or anyone may write, is refused with one
        clear error (which object, what is wrong, which flag allows it)."""
        name = f"itforeign{os.getpid()}"
        path = f"/dev/shm/freshframe.{name}"
        capture = Stage("capture", "--source", "pattern:64x48@30", "--out", name).start()
        try:
            wait_for(lambda: os.path.exists(path), 15, "capture's bus")
        finally:
            capture.close()
        try:
            os.chmod(path, 0o666)
            proc = ff.run_cli(["serve", "--port", "0", "--in", name])
            self.assertEqual(proc.returncode, 1, proc.stderr)
            self.assertIn(f"{path} has mode 0666: world-writable", proc.stderr)
            os.chmod(path, 0o600)
            if os.geteuid() != 0:
                return  # giving the object to another user needs root
            os.chown(path, 65534, 65534)
            proc = ff.run_cli(["serve", "--port", "0", "--in", name])
            self.assertEqual(proc.returncode, 1, proc.stderr)
            self.assertIn(f"{path} is owned by uid 65534", proc.stderr)
            self.assertIn("--bus-allow-owner 65534", proc.stderr)
        finally:
            unlink_bus(name)


if __name__ == "__main__":
    ff.main()
