#!/usr/bin/python3
"""GET /metrics: Prometheus text exposition that promtool accepts (parse and
lint), with plausible figures while one client streams.

The exposition is checked with `promtool check metrics` (Debian's
`prometheus` package, installed by scripts/install-deps.sh). Without
promtool, Debian's python3-prometheus-client parser is used instead (parsing
only, no lint), and the test says so on stderr.

Run: /usr/bin/python3 tests/integration/test_metrics.py --binary build/release/freshframe
"""

import re
import shutil
import subprocess
import sys
import time
import unittest

import ffharness as ff

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')


def parse_samples(text):
    """{(name, frozenset(labels.items())): value} of every sample line."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            raise AssertionError(f"not a sample line: {line!r}")
        labels = {k: v for k, v in LABEL_RE.findall(m.group(2) or "")}
        samples[(m.group(1), frozenset(labels.items()))] = float(m.group(3))
    return samples


# The server's own series; every other one is a stream's, labelled
# stream="NAME" (the one stream of `run` without --config: "default").
SERVER_SERIES = {"freshframe_build_info", "freshframe_uptime_seconds", "freshframe_streams"}


def value(samples, name, **labels):
    if name not in SERVER_SERIES:
        labels.setdefault("stream", "default")
    key = (name, frozenset(labels.items()))
    if key not in samples:
        raise AssertionError(f"no sample {name}{labels}")
    return samples[key]


def total(samples, name):
    """The sum of every series of `name` (0 if there is none)."""
    return sum(v for (n, _), v in samples.items() if n == name)


def check_exposition(text):
    """Raises AssertionError unless a real parser accepts `text` (promtool
    also lints it: naming problems fail too)."""
    promtool = shutil.which("promtool")
    if promtool:
        cp = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                            text=True, timeout=30)
        if cp.returncode != 0 or cp.stdout.strip() or cp.stderr.strip():
            raise AssertionError(f"promtool check metrics exited {cp.returncode}\n"
                                 f"stdout: {cp.stdout}\nstderr: {cp.stderr}\n"
                                 f"input:\n{text[:4000]}")
        return
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        raise AssertionError("neither promtool (apt-get install prometheus) nor "
                             "python3-prometheus-client is installed")
    sys.stderr.write("promtool not found: parsing with prometheus_client instead (no lint)\n")
    try:
        list(text_string_to_metric_families(text))
    except Exception as e:
        raise AssertionError(f"prometheus_client cannot parse /metrics: {e}\n{text[:4000]}")


class MetricsTest(ff.ServerTestCase):
    SERVER_ARGS = ()

    def scrape(self):
        status, headers, body = self.server.get("/metrics")
        self.assertEqual(status, 200, body[:500])
        self.assertEqual(headers.get("content-type"), CONTENT_TYPE)
        text = body.decode("utf-8")
        check_exposition(text)
        return text, parse_samples(text)

    def check_histogram(self, samples, name, stage):
        """Buckets cumulative, +Inf equal to _count; returns (count, sum)."""
        buckets = sorted(
            ((float(dict(labels)["le"]), v) for (n, labels), v in samples.items()
             if n == name + "_bucket" and dict(labels).get("stage") == stage))
        self.assertGreater(len(buckets), 1, f"{name}{{stage={stage}}} has no buckets")
        counts = [v for _, v in buckets]
        self.assertEqual(counts, sorted(counts), f"{name}{{stage={stage}}} not cumulative")
        self.assertEqual(buckets[-1][0], float("inf"))
        count = value(samples, name + "_count", stage=stage)
        self.assertEqual(buckets[-1][1], count)
        return count, value(samples, name + "_sum", stage=stage)

    def test_metrics_while_one_client_streams(self):
        _, idle = self.scrape()
        self.assertEqual(total(idle, "freshframe_clients"), 0)

        client = ff.StreamingClient(self.server.port)
        try:
            time.sleep(3.0)
            self.assertIsNone(client.error, f"stream client failed: {client.error!r}")
            text, first = self.scrape()
            time.sleep(1.5)
            _, second = self.scrape()
            self.assertIsNone(client.error, f"stream client failed: {client.error!r}")
        finally:
            client.stop()
        sys.stderr.write("sample of /metrics:\n" + "\n".join(
            line for line in text.splitlines()
            if "stage=\"send\"" in line or not line.startswith("freshframe_stage")) + "\n")

        self.assertEqual(value(first, "freshframe_clients", route="stream"), 1, text)
        self.assertEqual(total(first, "freshframe_clients"), 1, text)
        for stage in ("capture", "grab", "encode", "send"):
            a = value(first, "freshframe_stage_frames_total", stage=stage)
            b = value(second, "freshframe_stage_frames_total", stage=stage)
            self.assertGreater(a, 0, f"{stage}: {text}")
            self.assertGreater(b, a, f"{stage} frames did not grow between scrapes")
        self.assertGreater(value(first, "freshframe_bytes_sent_total"), 0, text)
        self.assertGreater(value(second, "freshframe_bytes_sent_total"),
                           value(first, "freshframe_bytes_sent_total"))

        count, seconds = self.check_histogram(first, "freshframe_stage_latency_seconds", "send")
        self.assertGreater(count, 0, text)
        self.assertGreater(seconds, 0, text)
        self.assertLess(seconds / count, 1.0, f"mean send latency {seconds / count:.3f} s")
        count, seconds = self.check_histogram(first, "freshframe_stage_work_seconds", "encode")
        self.assertGreater(count, 0, text)
        self.check_histogram(first, "freshframe_stage_latency_seconds", "capture")

        self.assertEqual(value(first, "freshframe_source_up"), 1, text)
        self.assertEqual(value(first, "freshframe_source_state", state="live"), 1, text)
        self.assertEqual(value(first, "freshframe_source_state", state="ended"), 0, text)
        self.assertGreater(value(first, "freshframe_detector_frames_total", detector="faces"), 0)
        self.assertEqual(value(first, "freshframe_build_info",
                               version=self.server.stats()["version"]), 1)
        self.assertGreater(value(first, "freshframe_uptime_seconds"), 3.0)
        self.assertEqual(value(first, "freshframe_streams"), 1)

        # The client is gone: the gauge drops, the counters stay.
        deadline = time.monotonic() + 5
        while True:
            _, after = self.scrape()
            if total(after, "freshframe_clients") == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(total(after, "freshframe_clients"), 0)
        self.assertGreaterEqual(value(after, "freshframe_bytes_sent_total"),
                                value(second, "freshframe_bytes_sent_total"))

    def test_head_and_methods(self):
        status, headers, body = self.server.get("/metrics")
        self.assertEqual(status, 200)
        status, head_headers, head_body = self.server.get("/metrics", method="HEAD")
        self.assertEqual(status, 200)
        self.assertEqual(head_headers.get("content-type"), CONTENT_TYPE)
        self.assertEqual(head_body, b"")
        self.assertGreater(int(head_headers.get("content-length", "0")), 0)
        status, _, _ = self.server.get("/metrics", method="POST")
        self.assertEqual(status, 405)


class MetricsAuthTest(unittest.TestCase):
    """/metrics is not exempt from authentication (only /healthz is)."""

    TOKEN = "metrics-test-token-0123456789"

    def test_token_required(self):
        if "--token" not in ff.run_cli(["run", "--help"]).stdout:
            self.skipTest("this build has no --token")
        with ff.Server("--token", self.TOKEN, "--detector", "none") as server:
            status, _, _ = server.get("/metrics")
            self.assertEqual(status, 401)
            status, _, body = server.get("/metrics",
                                         headers={"Authorization": f"Bearer {self.TOKEN}"})
            self.assertEqual(status, 200, body[:300])
            check_exposition(body.decode("utf-8"))


if __name__ == "__main__":
    ff.main()
