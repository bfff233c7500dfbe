#!/usr/bin/python3
"""Detectors end to end: `--detector dnn:` on a generated ONNX model with
known boxes, cascades by name, motion-gated detection on a mostly still
scene, /api/detections and the /api/events SSE stream, and the clear errors
for bad models and specs.

The ONNX models come from tests/models/make_onnx_models.py (Debian's
python3-onnx, generated at test time, nothing downloaded).

Run: /usr/bin/python3 tests/integration/test_detectors.py --binary build/release/freshframe
"""

import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import ffharness as ff

MODELS_SCRIPT = os.path.join(ff.REPO_ROOT, "tests", "models", "make_onnx_models.py")
LABELS = ["person", "car", "dog"]


def wait_for(predicate, timeout=10.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


class DnnTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ff-detectors-")
        subprocess.run(["/usr/bin/python3", MODELS_SCRIPT, cls.dir], check=True,
                       stdout=subprocess.DEVNULL, timeout=60)
        cls.labels = os.path.join(cls.dir, "labels.txt")
        with open(cls.labels, "w") as f:
            f.write("\n".join(LABELS) + "\n")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def detections(self, server):
        status, headers, body = server.get("/api/detections")
        self.assertEqual(status, 200, body[:300])
        self.assertIn("application/json", headers.get("content-type", ""))
        return json.loads(body)

    def test_yolov8_boxes_reach_api_detections_in_frame_coordinates(self):
        model = os.path.join(self.dir, "yolov8.onnx")
        with ff.Server("--source", "pattern:640x480@30", "--detector", f"dnn:{model}",
                       "--input-size", "320", "--labels", self.labels) as server:
            found = wait_for(lambda: self.detections(server).get("sequence", 0) > 0)
            self.assertTrue(found, "no detection set within 10 s")
            data = self.detections(server)
            self.assertEqual(data["width"], 640)
            self.assertEqual(data["height"], 480)
            self.assertEqual(data["detector"], "dnn")
            boxes = {(d["label"], tuple(d["box"])) for d in data["detections"]}
            # Box A (network 50,80..150,160 in a 320x320 letterbox of 640x480:
            # scale 0.5, 40 px of padding at the top) -> frame 100,80 200x160.
            self.assertIn(("person", (100, 80, 200, 160)), boxes)
            labels = sorted(d["label"] for d in data["detections"])
            # NMS kept one "person" of the two overlapping ones; the other
            # class on the same place ("car") and the 0.45 "dog" stay.
            self.assertEqual(labels.count("person"), 1, data)
            self.assertIn("dog", labels)
            for d in data["detections"]:
                x, y, w, h = d["box"]
                self.assertTrue(0 <= x and 0 <= y and x + w <= 640 and y + h <= 480, d)
                self.assertTrue(0.25 <= d["score"] <= 1.0, d)
            stats = server.stats()
            self.assertEqual(stats["detection"]["name"], "dnn")
            self.assertGreater(stats["stages"]["infer"]["frames"], 0)

    def test_events_stream_one_event_per_inferred_frame(self):
        model = os.path.join(self.dir, "ssd.onnx")
        with ff.Server("--source", "pattern:320x240@30", "--detector", f"dnn:{model}",
                       "--input-size", "320") as server:
            head, body = ff.read_events(server.port, lambda buf: buf.count(b"\n\n") >= 5)
            buf = head + body
            self.assertIn(b"200", head.split(b"\r\n")[0])
            self.assertIn(b"text/event-stream", head.lower())
            events = [e for e in body.split(b"\n\n") if b"data:" in e]
            self.assertGreaterEqual(len(events), 3, buf[:2000])
            sequences = []
            for event in events[:3]:
                fields = dict(line.split(b": ", 1) for line in event.split(b"\n")
                              if b": " in line and not line.startswith(b":"))
                data = json.loads(fields[b"data"])
                self.assertEqual(int(fields[b"id"]), data["sequence"])
                self.assertIn("detections", data)
                self.assertGreater(data["capture_us"], 0)
                sequences.append(data["sequence"])
            self.assertEqual(sequences, sorted(set(sequences)), "events in order, no repeats")

    def test_bad_models_are_clear_errors(self):
        corrupt = os.path.join(self.dir, "corrupt.onnx")
        with open(corrupt, "wb") as f:
            f.write(b"this is not a protobuf" * 10)
        cases = [
            (f"dnn:{self.dir}/nonexistent.onnx", "not found"),
            (f"dnn:{corrupt}", "cannot load ONNX model"),
            (f"dnn:{os.path.join(self.dir, 'unsupported.onnx')}", "[1,3,7,9]"),
            ("cascade:no_such_cascade", "upperbody"),
        ]
        for spec, needle in cases:
            with self.subTest(spec=spec):
                result = ff.run_cli(["run", "--port", "0", "--detector", spec,
                                     "--input-size", "320"])
                self.assertEqual(result.returncode, 1, result.stderr)
                self.assertIn(needle, result.stderr)
                self.assertNotIn("terminate called", result.stderr)

    def test_bad_specs_are_usage_errors(self):
        for spec in ("yolo", "cascade:", "dnn:", "motion+none", "motion+motion"):
            with self.subTest(spec=spec):
                result = ff.run_cli(["run", "--port", "0", "--detector", spec])
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertIn("--detector", result.stderr)


class CascadeAndMotionTest(unittest.TestCase):
    def test_cascade_by_name(self):
        with ff.Server("--source", "pattern:640x480@30", "--detector",
                       "cascade:upperbody") as server:
            stats = wait_for(lambda: (s := server.stats())["stages"].get("infer", {}).get(
                "frames", 0) > 0 and s, timeout=15)
            self.assertTrue(stats, "the cascade never ran")
            self.assertEqual(stats["detection"]["name"], "cascade:upperbody")
            status, _, body = server.get("/api/detections")
            self.assertEqual(status, 200)
            self.assertIsInstance(json.loads(body)["detections"], list)

    def test_motion_gate_skips_the_model_on_a_still_scene(self):
        # The scene moves for 1 s in every 10 (motion=0.1): after the moving
        # second the face detector should hardly run, though frames keep
        # going through the motion detector.
        with ff.Server("--source", "pattern:640x480@30,motion=0.1", "--detector",
                       "motion+faces") as server:
            time.sleep(5)
            stats = server.stats()
            detection = stats["detection"]
            self.assertEqual(detection["name"], "motion+faces")
            self.assertGreater(detection["frames"], 20, detection)
            self.assertLess(detection["model_runs"], detection["frames"], detection)
            self.assertLess(detection["model_run_share"], 0.6, detection)
            # The stream still runs at the source rate.
            self.assertGreater(stats["stages"]["annotate"]["fps"], 25)

    def test_no_detector_means_no_detections_endpoint(self):
        with ff.Server("--source", "pattern:320x240@30", "--detector", "none") as server:
            status, _, body = server.get("/api/detections")
            self.assertEqual(status, 404)
            self.assertIn(b"error", body)


if __name__ == "__main__":
    ff.main()
