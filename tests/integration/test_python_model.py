#!/usr/bin/python3
"""A user's own Python model over the bus (issue 15), with the examples as
users run them: examples/python/run_ml.py beside `run --detector bus:`, and
examples/python/draw_frames.py between `capture` and `serve`.

The package comes from the build tree next to the binary
(build/<preset>/python). Run:
  /usr/bin/python3 tests/integration/test_python_model.py --binary build/release/freshframe
"""

import json
import os
import signal
import subprocess
import sys
import time
import unittest

import ffharness as ff
from test_processes import Stage, unlink_bus, wait_for

EXAMPLES = os.path.join(ff.REPO_ROOT, "examples", "python")
BOX_TOLERANCE_PX = 4  # same pixels and parameters: boxes should be equal; allow rounding


def python_path():
    return os.path.join(os.path.dirname(ff.BINARY), "python")


class Example:
    """An example script run as a user would (PYTHONPATH=build/.../python)."""

    def __init__(self, script, *args):
        env = dict(os.environ, PYTHONPATH=python_path())
        self.proc = subprocess.Popen([sys.executable, os.path.join(EXAMPLES, script), *args],
                                     env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, preexec_fn=ff._die_with_parent)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.errors()

    def errors(self):
        """The script's stderr, once it has exited."""
        if self.proc.poll() is None:
            return "(running)"
        if not self.proc.stderr.closed:
            self._errors = self.proc.stderr.read().decode(errors="replace")[-3000:]
            self.proc.stderr.close()
        return self._errors


def detections(server):
    status, _, body = server.get("/api/detections")
    return json.loads(body) if status == 200 else None


def faces_by_sequence(server, seconds):
    """{sequence: [box]} of the sets with a face seen while polling."""
    found = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        d = detections(server)
        if d and d.get("detector_running") and d["detections"]:
            found[d["sequence"]] = [x["box"] for x in d["detections"] if x["label"] == "face"]
        time.sleep(0.02)
    return found


def close(a, b, tolerance):
    return all(abs(p - q) <= tolerance for p, q in zip(a, b))


def alike(a, b, tolerance):
    """Centres within `tolerance` px, sizes within two steps of the cascade's
    1.1 scale pyramid."""
    centre = lambda box: (box[0] + box[2] / 2, box[1] + box[3] / 2)
    (ax, ay), (bx, by) = centre(a), centre(b)
    return (abs(ax - bx) <= tolerance and abs(ay - by) <= tolerance
            and max(a[2], b[2]) <= 1.1 ** 2 * min(a[2], b[2]) + 1)


class RunMlBesideRun(unittest.TestCase):
    def setUp(self):
        self.bus = f"itest.pymodel.{os.getpid()}"
        for name in (self.bus, self.bus + ".raw", self.bus + ".detections"):
            unlink_bus(name)
        self.server = ff.Server("--source", "pattern:640x480@30", "--publish", self.bus,
                                "--detector", f"bus:{self.bus}.detections").start()
        self.model = Example("run_ml.py", self.bus)

    def tearDown(self):
        self.model.kill()
        self.server.stop()
        for name in (self.bus, self.bus + ".raw", self.bus + ".detections"):
            unlink_bus(name)

    def wait_for_faces(self, timeout=30):
        def has_face():
            d = detections(self.server)
            return d is not None and d.get("detector_running") and any(
                x["label"] == "face" for x in d["detections"])
        try:
            wait_for(has_face, timeout, "a face from the Python model")
        except AssertionError:
            raise AssertionError(f"no face from run_ml.py; its stderr: {self.model.errors()}\n"
                                 f"server stderr: {self.server.stderr()}") from None

    def test_boxes_match_the_builtin_detector(self):
        self.wait_for_faces()
        python_sets = faces_by_sequence(self.server, 6)
        # The built-in detector runs at nice 10: alone, not beside a busy model.
        self.model.kill()
        self.server.stop()
        with ff.Server("--source", "pattern:640x480@30", "--detector", "faces",
                       "--detector-threads", "1") as builtin:
            wait_for(lambda: bool(detections(builtin)), 30, "detections from --detector faces")
            builtin_sets = faces_by_sequence(builtin, 6)
        self.assertTrue(python_sets and builtin_sets, (python_sets, builtin_sets))
        # The pattern draws the face where its sequence number says, so the
        # face must be found at the same place on the same frame, and nearly
        # so on neighbouring ones (it moves at most ~3 px per frame). False
        # positives come and go with the pixels of the timecode strip, which
        # differ between the runs: one common box per frame is the face.
        compared = 0
        for sequence, boxes in builtin_sets.items():
            near = [s for s in python_sets if abs(s - sequence) <= 3]
            if not near:
                continue
            closest = min(near, key=lambda s: abs(s - sequence))
            theirs = python_sets[closest]
            if closest == sequence:  # the same pixels: the same box
                match = any(close(a, b, BOX_TOLERANCE_PX) for a in boxes for b in theirs)
            else:  # the face moved a little, and may sit one pyramid step apart in size
                tolerance = BOX_TOLERANCE_PX + 3 * abs(closest - sequence)
                match = any(alike(a, b, tolerance) for a in boxes for b in theirs)
            self.assertTrue(match,
                            f"frame {sequence}: built-in {boxes}, Python (frame {closest}) {theirs}")
            compared += 1
        self.assertGreater(compared, 2, f"too few common frames: {sorted(python_sets)[:20]} "
                                        f"vs {sorted(builtin_sets)[:20]}")

    def test_stream_keeps_the_source_rate_and_the_strip(self):
        self.wait_for_faces()
        result = ff.run_probe(self.server.stream_url(), seconds=4)
        ff.assert_probe_ok(self, result)  # every client within 10% of 30 fps, strip read
        stats = self.server.stats()
        self.assertGreater(stats["stages"]["infer"]["fps"], 0, stats["stages"]["infer"])

    def test_a_killed_model_leaves_no_boxes_and_a_restarted_one_is_picked_up(self):
        self.wait_for_faces()
        self.model.kill()

        def gone():
            d = detections(self.server)
            return d is not None and (not d.get("detector_running") or not d["detections"])
        wait_for(gone, 10, "boxes gone after the model was killed")
        self.assertTrue(self.server.alive())
        self.model = Example("run_ml.py", self.bus)
        self.wait_for_faces()


class DrawFramesBetweenCaptureAndServe(unittest.TestCase):
    def test_served_frames_are_drawn_keep_their_strip_and_detections(self):
        bus = f"itest.pydraw.{os.getpid()}"
        names = (bus + ".raw", bus + ".annotated", bus + ".annotated.detections")
        for name in names:
            unlink_bus(name)
        capture = Stage("capture", "--source", "pattern:640x480@30", "--out", bus + ".raw")
        serve = Stage("serve", "--port", "0", "--in", bus + ".annotated")
        drawer = None
        try:
            capture.start()
            drawer = Example("draw_frames.py", bus + ".raw", bus + ".annotated")
            serve.start()

            def has_face():
                d = detections(serve)
                return d is not None and any(x["label"] == "face" for x in d["detections"])
            try:
                wait_for(has_face, 30, "detections relayed from draw_frames.py")
            except AssertionError:
                raise AssertionError(f"draw_frames.py stderr: {drawer.errors()}") from None
            # The rate is the Python loop's (the Haar model's), not the source's.
            result = ff.run_probe(serve.stream_url(), seconds=3)
            self.assertEqual(result["failed_clients"], 0, result)
            self.assertGreater(result["frames"], 0, result)
            self.assertEqual(result["no_strip"], 0, "draw_frames.py must keep the strip readable")
            # The stamps came along: serve sees the Python stage as inference.
            infer = serve.stats()["stages"]["infer"]
            self.assertGreater(infer["frames"], 0, infer)
        finally:
            if drawer:
                drawer.kill()
            serve.stop()
            capture.stop()
            for name in names:
                unlink_bus(name)


if __name__ == "__main__":
    ff.main()
