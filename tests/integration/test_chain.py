#!/usr/bin/python3
"""Two freshframes in a chain: B's --source is A's /stream.mjpg (the native
http:// MJPEG source). The probe on B reads A's timecodes (the strip stays in
the pixels), so its latency is capture-to-received through both hops. Then A
is stopped (B shows "no signal" and reconnects) and restarted on the same port
(B goes live again by itself).

Run: /usr/bin/python3 tests/integration/test_chain.py --binary build/release/freshframe
"""

import json
import signal
import tempfile
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


class ProcessesTestCase(unittest.TestCase):
    """Processes started with start() are closed after each test."""

    def setUp(self):
        self.processes = []

    def tearDown(self):
        for proc in self.processes:
            proc.close()

    def start(self, proc):
        self.processes.append(proc)
        return proc.start()


class Chain(ProcessesTestCase):
    def setUp(self):
        super().setUp()
        self.a = self.start(Process("run", "--port", "0", "--detector", "none"))
        self.a_url = self.a.stream_url()
        self.b = self.start(
            Process("run", "--port", "0", "--detector", "none", "--source", self.a_url))


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


TOKEN = "Chain-t0ken-9f3b2a"
USER, PASSWORD = "viewer", "pa55-w0rd-71c4"
SECRETS = (TOKEN, PASSWORD)


class Credentials(ProcessesTestCase):
    """B chains to an A started with --token and --basic-auth. B sends the
    credentials as headers (--source-token as Bearer, user:pass@ as Basic);
    the legacy ?token= still works. No secret ever shows in B's /api/stats
    or on B's stderr, also when A goes away and B logs the failure."""

    def setUp(self):
        super().setUp()
        self.a = self.start(Process("run", "--port", "0", "--detector", "none",
                                    "--token", TOKEN, "--basic-auth", f"{USER}:{PASSWORD}"))
        self.a_url = self.a.stream_url()


    def assert_no_secret(self, text, where):
        for secret in SECRETS:
            self.assertNotIn(secret, text, f"a credential in {where}: {text[-3000:]}")

    def chain(self, source, *extra):
        b = self.start(Process("run", "--port", "0", "--detector", "none",
                               "--source", source, *extra))
        wait_for(lambda: b.stats()["source"]["state"] == "live"
                 and b.stats()["source"]["width"] == 640, 10, "B's source live at 640x480")
        stats = b.stats()
        self.assert_no_secret(json.dumps(stats), "B's /api/stats")
        self.assert_no_secret(b.stderr(), "B's stderr")
        return b, stats["source"]

    def test_header_credentials_and_redaction(self):
        # Without credentials A refuses, at start-up: exit 1, saying why.
        proc = ff.run_cli(["run", "--port", "0", "--detector", "none", "--source", self.a_url])
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("401", proc.stderr)

        # Bearer from --source-token and from --source-token-file.
        b, source = self.chain(self.a_url, "--source-token", TOKEN)
        self.assertEqual(source["spec"], self.a_url)
        with tempfile.NamedTemporaryFile("w", suffix=".token") as f:
            f.write(TOKEN + "\n")
            f.flush()
            self.chain(self.a_url, "--source-token-file", f.name)

        # Basic from user:pass@, shown with the password masked.
        basic_url = self.a_url.replace("http://", f"http://{USER}:{PASSWORD}@")
        b_basic, source = self.chain(basic_url)
        self.assertEqual(source["spec"], self.a_url.replace("http://", f"http://{USER}:***@"))

        # The legacy ?token= still works, masked.
        b_query, source = self.chain(self.a_url + "?token=" + TOKEN)
        self.assertEqual(source["spec"], self.a_url + "?token=***")

        # A wrong token at start-up: the error names the URL, not the secret.
        proc = ff.run_cli(["run", "--port", "0", "--detector", "none",
                           "--source", self.a_url + "?token=" + TOKEN + "x"])
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("?token=***", proc.stderr)
        self.assert_no_secret(proc.stderr, "a start-up error")

        # A goes away: every B logs and reports the failure, without secrets.
        self.assertEqual(self.a.stop(signal.SIGTERM), 0)
        for chained in (b, b_basic, b_query):
            wait_for(lambda: chained.stats()["source"]["state"] == "reconnecting", DOWN_LIMIT_S,
                     "B's source reconnecting")
            stats = chained.stats()
            self.assertTrue(stats["source"]["message"], stats)
            self.assert_no_secret(json.dumps(stats), "B's /api/stats while reconnecting")
        time.sleep(1.0)  # a reconnect attempt or two, and their log lines
        for chained in (b, b_basic, b_query):
            self.assertIn("source http://", chained.stderr())
            self.assert_no_secret(chained.stderr(), "B's stderr after A went away")
        self.assertIn("?token=***", b_query.stderr())

    def test_bad_source_token_use_is_refused(self):
        # A token with user info in the URL: which one would be sent?
        proc = ff.run_cli(["run", "--port", "0", "--detector", "none", "--source",
                           self.a_url.replace("http://", f"http://{USER}:{PASSWORD}@"),
                           "--source-token", TOKEN])
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assert_no_secret(proc.stderr, "the error")
        # A token for a source that is not http://.
        proc = ff.run_cli(["run", "--port", "0", "--detector", "none", "--source", "pattern",
                           "--source-token", TOKEN])
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("--source-token", proc.stderr)
        self.assert_no_secret(proc.stderr, "the error")


class StartUp(unittest.TestCase):
    def test_unreachable_source_exits_1_naming_the_url(self):
        url = "http://127.0.0.1:1/x.mjpg"
        proc = ff.run_cli(["run", "--port", "0", "--detector", "none", "--source", url])
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn(url, proc.stderr)
        self.assertIn("refused", proc.stderr)


if __name__ == "__main__":
    ff.main()
