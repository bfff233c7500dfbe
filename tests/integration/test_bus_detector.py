#!/usr/bin/python3
"""`--detector bus:NAME`: detection sets published by another process (a
small Python model written with the freshframe package) drawn by `run`:
boxes scaled from the model's image size reach /api/detections, /api/stats
and /metrics; a model killed is "not alive" within a few seconds and leaves
no boxes, a restarted one is picked up; sets older than
--detections-max-age are dropped while the model lives; a foreign writer's
malformed texts are logged once and the stream goes on.

The package comes from the build tree next to the binary
(build/<preset>/python). Run:
  /usr/bin/python3 tests/integration/test_bus_detector.py --binary build/release/freshframe
"""

import json
import os
import signal
import subprocess
import sys
import time
import unittest

import ffharness as ff
from test_config import post
from test_processes import unlink_bus

GONE_WITHIN_S = 3.0  # a killed model is reported gone within this (max age 1 s + polling)
# The model: reads NAME.raw, publishes one fixed box per frame found on a
# half-size copy (so freshframe has to scale it), as a user's model would.
# "once": one set, then stays alive publishing nothing. "slow": at most 4
# sets a second. "bad": a foreign writer of texts that are not detection sets.
MODEL = r'''
import sys, time
import freshframe
raw, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
if mode == "bad":
    from freshframe._lib import OWNER_SELF, encode_name, lib
    writer = lib.ff_writer_open(encode_name(out), 0, OWNER_SELF)
    assert writer, "cannot open " + out
    texts = [b"not json at all", b'{"width": 0, "height": 240, "detections": []}',
             b'{"width": 320, "height": 240, "detections": [{"box": [1, 2, -3, 4]}]}']
    n = 0
    while True:
        text = texts[n % len(texts)]
        n += 1
        lib.ff_writer_publish_text(writer, text, len(text), n)
        time.sleep(0.03)
sub = freshframe.Subscriber(raw)
pub = freshframe.DetectionPublisher(out, detector="test:fixed")
for frame in sub:
    pub.publish(frame, [freshframe.Detection("thing", 0.75, (20, 30, 40, 50))],
                size=(frame.width // 2, frame.height // 2))
    if mode == "once":
        while True:
            time.sleep(1)
    if mode == "slow":
        time.sleep(0.25)
'''
EXPECTED_BOX = [40, 60, 80, 100]  # (20, 30, 40, 50) on a half-size copy


def python_path():
    return os.path.join(os.path.dirname(ff.BINARY), "python")


def package_missing():
    """Why `import freshframe` fails with the build's package, or None."""
    env = dict(os.environ, PYTHONPATH=python_path())
    try:
        result = subprocess.run([sys.executable, "-c", "import freshframe"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    return None if result.returncode == 0 else result.stderr.decode(errors="replace")[-500:]


MISSING = package_missing()


@unittest.skipIf(MISSING, f"the freshframe Python package is not importable from "
                 f"{python_path()} (build the freshframe_bus target): {MISSING}")
class BusDetectorTest(unittest.TestCase):

    def setUp(self):
        self.name = f"busdet{os.getpid()}{self._testMethodName[-12:]}"
        self.buses = [self.name, self.name + ".raw", self.name + ".detections"]
        for bus in self.buses:
            unlink_bus(bus)
        self.models = []  # processes this test started (killed in tearDown, by PID)
        self.server = None

    def tearDown(self):
        for model in self.models:
            if model.poll() is None:
                model.kill()
            model.wait(timeout=10)
            model.stderr.close()
        if self.server is not None:
            self.server.close()
        for bus in self.buses:
            unlink_bus(bus)

    def start_server(self, *extra):
        self.server = ff.Server("--source", "pattern:320x240@30", "--publish", self.name,
                                "--detector", f"bus:{self.name}.detections", *extra)
        self.server.start()
        return self.server

    def start_model(self, mode="boxes"):
        env = dict(os.environ, PYTHONPATH=python_path())
        model = subprocess.Popen(
            [sys.executable, "-c", MODEL, self.name + ".raw", self.name + ".detections", mode],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=ff._die_with_parent)
        self.models.append(model)
        return model

    def detections(self):
        status, _, body = self.server.get("/api/detections")
        self.assertEqual(status, 200, body[:300])
        return json.loads(body)

    def external(self):
        return self.server.stats()["external"]

    def boxes_arrive(self):
        def drawn():
            d = self.detections()
            return d if d.get("detector_running") and d.get("detections") else None
        return ff.wait_for(drawn, 20, "detections from the model in /api/detections")

    def assert_off(self):
        d = self.detections()
        self.assertFalse(d["detector_running"], d)
        self.assertEqual(d["detections"], [], d)

    def test_boxes_are_scaled_served_and_measured(self):
        server = self.start_server()
        external = self.external()
        self.assertEqual(external["bus"], f"{self.name}.detections")
        self.assertFalse(external["alive"])  # no model yet
        self.start_model()
        d = self.boxes_arrive()
        self.assertEqual(d["detector"], "test:fixed")
        self.assertEqual(d["width"], 320)
        self.assertEqual(d["detections"][0]["label"], "thing")
        self.assertEqual(d["detections"][0]["box"], EXPECTED_BOX)
        self.assertGreater(d["sequence"], 0)

        # /api/stats and /metrics: the model's rate and latency like any detector's.
        ff.wait_for(lambda: self.server.stats()["stages"].get("infer", {}).get("fps", 0) > 5, 10,
                 "the model's rate in /api/stats stages.infer")
        stats = server.stats()
        self.assertEqual(stats["detector"], f"bus:{self.name}.detections")
        self.assertTrue(stats["external"]["alive"], stats["external"])
        self.assertEqual(stats["external"]["model"], "test:fixed")
        self.assertEqual(stats["external"]["rejected"], 0)
        self.assertGreater(stats["stages"]["infer"]["latency_ms"]["count"], 0)
        status, _, body = server.get("/metrics")
        self.assertEqual(status, 200)
        self.assertIn('stage="infer"', body.decode())
        # The model writes NAME.detections itself: run opened no second writer.
        self.assertNotIn("no detections for serve processes", server.stderr())

    def test_a_killed_model_leaves_no_boxes_and_a_restarted_one_is_picked_up(self):
        self.start_server()
        model = self.start_model()
        self.boxes_arrive()
        model.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        ff.wait_for(lambda: not self.external()["alive"], GONE_WITHIN_S + 5, "model reported gone")
        gone_after = time.monotonic() - killed
        self.assertLess(gone_after, GONE_WITHIN_S + 2, "model gone noticed late")
        self.assert_off()
        self.assertFalse(self.external()["writer_alive"])

        self.start_model()  # nothing else restarted
        d = self.boxes_arrive()
        self.assertEqual(d["detections"][0]["box"], EXPECTED_BOX)
        self.assertTrue(ff.wait_for(lambda: self.external()["alive"], 10, "model alive again"))

    def test_no_set_for_max_age_draws_nothing_while_the_model_lives(self):
        self.start_server("--detections-max-age", "0.5")
        self.start_model("once")
        self.boxes_arrive()
        ff.wait_for(lambda: not self.detections()["detector_running"], 10, "the one set dropped")
        external = self.external()
        self.assertTrue(external["writer_alive"], external)
        self.assertFalse(external["alive"], external)
        self.assertEqual(external["max_age_s"], 0.5)

    def annotated_per_second(self, seconds=2.0):
        before = self.server.stats()["stages"]["annotate"]["frames"]
        time.sleep(seconds)
        return (self.server.stats()["stages"]["annotate"]["frames"] - before) / seconds

    def test_overlay_modes_and_the_detector_switch_work_as_with_built_in_detectors(self):
        server = self.start_server("--overlay", "inferred")
        self.start_model("slow")
        self.boxes_arrive()
        # inferred: only the frames the model finished (at most 4 a second).
        self.assertLess(self.annotated_per_second(), 8)
        # latest: the source's rate, each frame drawn with the newest set.
        self.assertEqual(post(server.port, '{"overlay": "latest"}').status, 200)
        self.assertGreater(self.annotated_per_second(), 20)
        # Switched off: nothing drawn, the model itself still alive.
        self.assertEqual(post(server.port, '{"detector": false}').status, 200)
        ff.wait_for(lambda: not self.detections()["detector_running"], 10, "the detector off")
        self.assert_off()
        self.assertTrue(self.external()["alive"])
        self.assertEqual(post(server.port, '{"detector": true}').status, 200)
        self.boxes_arrive()

    def test_malformed_texts_are_logged_once_and_the_stream_goes_on(self):
        server = self.start_server()
        bad = self.start_model("bad")
        ff.wait_for(lambda: self.external()["rejected"] >= 6, 20, "malformed texts counted")
        external = self.external()
        self.assertEqual(external["sets"], 0)
        self.assertTrue(external["last_error"], external)
        self.assertEqual(server.stderr(tail=100000).count("not a valid detection set"), 1,
                         server.stderr())
        self.assertTrue(server.alive())
        # Frames keep flowing at the source's rate.
        before = server.stats()["stages"]["annotate"]["frames"]
        time.sleep(1.0)
        self.assertGreater(server.stats()["stages"]["annotate"]["frames"], before + 10)
        bad.kill()
        bad.wait(timeout=10)
        self.start_model()  # a real model takes the bus over
        self.boxes_arrive()


if __name__ == "__main__":
    ff.main()
