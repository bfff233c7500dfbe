#!/usr/bin/python3
"""Two freshframes in a chain: B's --source is A's /stream.mjpg (the native
http:// MJPEG source). The probe on B reads A's timecodes (the strip stays in
the pixels), so its latency is capture-to-received through both hops. Then A
is stopped (B shows "no signal" and reconnects) and restarted on the same port
(B goes live again by itself).

Run: /usr/bin/python3 tests/integration/test_chain.py --binary build/release/freshframe
"""

import signal
import time
import unittest

import ffharness as ff

P99_LIMIT_MS = 300.0
DOWN_LIMIT_S = 3.0      # A stopped -> B's source says "reconnecting"
RECOVERY_LIMIT_S = 6.0  # A serving again -> B's source "live" (grabber backoff is capped at 5 s)
NO_SIGNAL_FPS = 5.0     # the grabber's rate of "no signal" frames


class Process(ff.Server):
    """A freshframe process with exactly the given arguments (ff.Server
    always adds --port 0, which the restart on A's port cannot use)."""

    def __init__(self, *args):
        super().__init__()
        self.args = list(args)


def wait_for(predicate, timeout, what):
    """Polls `predicate` until it is true; returns the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"{what} within {timeout}s")


def start_on_port(port, attempts=10):
    """`run` on a given port, retried while the port is briefly unavailable."""
    last = None
    for _ in range(attempts):
        proc = Process("run", "--port", str(port), "--detector", "none")
        try:
            return proc.start()
        except AssertionError as e:  # exited before serving (address in use)
            last = e
            proc.close()
            time.sleep(0.5)
    raise AssertionError(f"could not restart A on port {port}: {last}")


class Chain(unittest.TestCase):
    def setUp(self):
        self.processes = []
        self.a = self.start(Process("run", "--port", "0", "--detector", "none"))
        self.a_url = self.a.stream_url()
        self.b = self.start(
            Process("run", "--port", "0", "--detector", "none", "--source", self.a_url))

    def tearDown(self):
        for proc in self.processes:
            proc.close()

    def start(self, proc):
        self.processes.append(proc)
        return proc.start()

    def source(self):
        return self.b.stats()["source"]

    def probe_b(self, seconds):
        result = ff.run_probe(self.b.url, seconds=seconds)
        ff.assert_probe_ok(self, result, clients=1, p99_ms=P99_LIMIT_MS)
        lat = result["latency_ms"]
        print(f"two hops: fps {result['fps']['min']:.1f}, latency p50 {lat['p50']:.1f} ms, "
              f"p99 {lat['p99']:.1f} ms, max {lat['max']:.1f} ms ({lat['count']} frames)")
        return result

    def stream_rate(self, seconds, after_s):
        """Parts per second on B's stream over `seconds`; every part must have
        been made after `after_s` (CLOCK_MONOTONIC), i.e. not A's last frame."""
        reader = ff.MjpegReader(self.b.port, timeout=5)
        try:
            self.assertEqual(reader.status, 200)
            parts = 0
            start = time.monotonic()
            while time.monotonic() - start < seconds:
                headers, body = reader.read_part()
                self.assertTrue(ff.is_jpeg(body))
                self.assertEqual(ff.jpeg_size(body), (640, 480))
                self.assertGreater(ff.part_timestamp(headers), after_s,
                                   "B streams a frame from before A stopped")
                parts += 1
            return parts / (time.monotonic() - start)
        finally:
            reader.close()

    def test_two_hops_stop_and_restart_origin(self):
        wait_for(lambda: self.source()["state"] == "live" and self.source()["width"] == 640, 10,
                 "B's source live at 640x480")
        source = self.source()
        self.assertEqual(source["spec"], self.a_url)
        self.assertEqual(source["height"], 480)
        self.probe_b(4)

        # A goes away: B says so, and keeps streaming "no signal" frames.
        a_port = self.a.port
        stopped_at = ff.mono_s()
        self.assertEqual(self.a.stop(signal.SIGTERM), 0)
        took = wait_for(lambda: self.source()["state"] == "reconnecting", DOWN_LIMIT_S,
                        "B's source reconnecting")
        print(f"B reconnecting {took:.2f}s after A was stopped")
        source = self.source()
        self.assertTrue(source["message"], source)
        self.assertIn(f"127.0.0.1:{a_port}", source["message"])
        resp = self.b.get("/snapshot.jpg", timeout=5)
        self.assertEqual(resp.status, 200, resp.describe())
        self.assertTrue(ff.is_jpeg(resp.body))
        self.assertEqual(ff.jpeg_size(resp.body), (640, 480))
        stamp = resp.headers.get("x-frame-timestamp")
        if stamp is not None:  # a frame B made after A went: the no-signal frame
            self.assertGreater(float(stamp), stopped_at)
        rate = self.stream_rate(2.0, stopped_at)
        print(f"B streams {rate:.1f} no-signal frames/s while A is down")
        self.assertTrue(0.6 * NO_SIGNAL_FPS <= rate <= 1.6 * NO_SIGNAL_FPS, rate)
        self.assertEqual(self.source()["state"], "reconnecting")

        # A comes back on the same port: B reconnects by itself.
        reconnects = self.source()["reconnects"]
        self.a = start_on_port(a_port)
        self.processes.append(self.a)
        took = wait_for(lambda: self.source()["state"] == "live", RECOVERY_LIMIT_S,
                        "B's source live again")
        print(f"B live again {took:.2f}s after A was serving again")
        self.assertGreater(self.source()["reconnects"], reconnects)
        self.probe_b(4)


class StartUp(unittest.TestCase):
    def test_unreachable_source_exits_1_naming_the_url(self):
        url = "http://127.0.0.1:1/x.mjpg"
        proc = ff.run_cli(["run", "--port", "0", "--detector", "none", "--source", url])
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn(url, proc.stderr)
        self.assertIn("refused", proc.stderr)


if __name__ == "__main__":
    ff.main()
