#!/usr/bin/python3
"""GET /api/clock and the live configuration API (GET/POST /api/config) on
whole processes: quality, detector on/off, overlay and mirror applied while
running and visible in /api/stats, in the JPEGs and in the timecode strip;
every refused request (415, 413, 400, 405, 401) changes nothing; a `serve`
process can change only the quality.

Run: /usr/bin/python3 tests/integration/test_config.py --binary build/release/freshframe
"""

import json
import os
import time
import unittest

import ffharness as ff
import jpeg_strip

TOKEN = "cfg-integration-token"
JSON = "application/json"


def post(port, body, content_type=JSON, headers=None, path="/api/config"):
    """POST `body` (str or bytes) to `path`; returns the Response."""
    if isinstance(body, str):
        body = body.encode()
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close",
             f"Content-Length: {len(body)}"]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    return ff.raw_request(port, ("\r\n".join(lines) + "\r\n\r\n").encode() + body)


def json_of(response):
    try:
        return json.loads(response.body.decode())
    except ValueError:
        raise AssertionError(f"not JSON: {response.describe()}")


class ConfigRun(ff.ServerTestCase):
    """One `run` on the test pattern with the face detector."""

    SERVER_ARGS = ("--source", "pattern:640x480@30", "--quality", "85")

    def config(self):
        status, headers, body = self.server.get("/api/config")
        self.assertEqual(status, 200, body)
        self.assertTrue(headers.get("content-type", "").startswith(JSON), headers)
        self.assertNotIn("access-control-allow-origin", headers)
        return json.loads(body)

    def apply(self, change):
        response = post(self.server.port, json.dumps(change))
        self.assertEqual(response.status, 200, response.describe())
        self.assertNotIn("access-control-allow-origin", response.headers)
        return json_of(response)

    def snapshot(self):
        status, headers, body = self.server.get("/snapshot.jpg")
        self.assertEqual(status, 200, body[:200])
        return body

    def strip_of(self, jpeg):
        width, _ = ff.jpeg_size(jpeg)
        reading = jpeg_strip.read_strip(jpeg, int(ff.mono_s() * 1e6), width)
        self.assertIsNotNone(reading, "no readable timecode strip in the snapshot")
        return reading

    def stream_part(self, path):
        reader = ff.MjpegReader(self.server.port, path)
        try:
            reader.read_part()  # may be the frame before the change: take the next
            return reader.read_part()[1]
        finally:
            reader.close()

    def tearDown(self):
        # Every test starts from the command line's settings.
        self.apply({"detector": True, "overlay": "latest", "quality": 85, "mirror": False})

    def test_clock_is_the_servers_monotonic_clock(self):
        for _ in range(5):
            before = time.clock_gettime(time.CLOCK_MONOTONIC)
            status, headers, body = self.server.get("/api/clock")
            after = time.clock_gettime(time.CLOCK_MONOTONIC)
            self.assertEqual(status, 200)
            self.assertEqual(headers.get("cache-control"), "no-store")
            self.assertTrue(headers.get("content-type", "").startswith(JSON), headers)
            clock = json.loads(body)
            self.assertEqual(list(clock), ["now_us"])
            now = clock["now_us"] / 1e6
            # Same host, same clock: the server read it inside the round trip.
            self.assertLess(abs(now - (before + after) / 2), 1.0)
            self.assertTrue(before - 0.001 <= now <= after + 0.001, (before, now, after))
        status, headers, body = self.server.get("/api/clock", method="HEAD")
        self.assertEqual((status, body), (200, b""))

    def test_get_config_shape(self):
        config = self.config()
        self.assertEqual(config, {"detector": True, "detector_spec": "faces", "overlay": "latest",
                                  "quality": 85, "mirror": False,
                                  "available": ["detector", "overlay", "quality", "mirror"]})
        stats = self.server.stats()
        self.assertEqual(stats["config"], config)
        self.assertEqual((stats["quality"], stats["overlay"], stats["detector"],
                          stats["detector_enabled"]), (85, "latest", "faces", True))

    def test_quality_changes_the_jpegs(self):
        def mean_size(quality):
            self.assertEqual(self.apply({"quality": quality})["quality"], quality)
            self.assertEqual(self.server.stats()["quality"], quality)
            time.sleep(0.3)  # any frame encoded before the change is old now
            return sum(len(self.snapshot()) for _ in range(3)) / 3

        high = mean_size(95)
        low = mean_size(40)
        self.assertLess(low, 0.7 * high, f"quality 40: {low:.0f} B, 95: {high:.0f} B")
        _, _, metrics = self.server.get("/metrics")
        self.assertIn(b"\nfreshframe_jpeg_quality{stream=\"default\"} 40\n", metrics)

    def test_detector_off_stops_inference_and_on_resumes(self):
        def frames():
            return self.server.stats()["detection"]["frames"]

        ff.wait_for(lambda: frames() > 0, 20, "the detector's first frames")
        self.assertFalse(self.apply({"detector": False})["detector"])
        stats = self.server.stats()
        self.assertFalse(stats["detector_enabled"])
        self.assertFalse(stats["config"]["detector"])
        # /api/detections says the detector is off, with nothing detected.
        detections = ff.wait_for(
            lambda: (lambda d: d if d["detector_running"] is False else None)(
                json.loads(self.server.get("/api/detections").body)),
            5, "detector_running false in /api/detections")
        self.assertEqual(detections["detections"], [])
        time.sleep(1.0)  # an inference under way when switched off may still finish
        off = frames()
        time.sleep(2.5)
        self.assertEqual(frames(), off, "the detector kept running while switched off")
        _, _, metrics = self.server.get("/metrics")
        self.assertIn(b"\nfreshframe_detector_enabled{stream=\"default\"} 0\n", metrics)

        self.assertTrue(self.apply({"detector": True})["detector"])
        ff.wait_for(lambda: frames() > off, 20, "inference to resume")
        ff.wait_for(lambda: json.loads(self.server.get("/api/detections").body)["detector_running"],
                 20, "detector_running true again")
        self.assertTrue(self.server.stats()["detector_enabled"])

    def test_overlay_switches(self):
        self.assertEqual(self.apply({"overlay": "inferred"})["overlay"], "inferred")
        stats = self.server.stats()
        self.assertEqual((stats["overlay"], stats["config"]["overlay"]), ("inferred", "inferred"))
        self.assertEqual(self.apply({"overlay": "latest"})["overlay"], "latest")
        self.assertEqual(self.server.stats()["overlay"], "latest")

    def test_mirror_reverses_the_picture_and_its_strip(self):
        # The decoder reads what the server's own variant mirrors (a check of
        # the reader), then the stream itself.
        self.assertFalse(self.strip_of(self.snapshot())[1])
        self.assertTrue(self.strip_of(self.stream_part("/stream.mjpg?mirror=1"))[1])

        self.assertTrue(self.apply({"mirror": True})["mirror"])
        self.assertTrue(self.server.stats()["config"]["mirror"])
        time.sleep(0.3)
        t_us, mirrored = self.strip_of(self.snapshot())
        self.assertTrue(mirrored, "the snapshot's strip is not reversed")
        self.assertLess(abs(ff.mono_s() - t_us / 1e6), 5.0)
        self.assertTrue(self.strip_of(self.stream_part("/stream.mjpg"))[1])
        # ?mirror=1 on a mirrored stream flips it back; scaled, still readable.
        self.assertFalse(self.strip_of(self.stream_part("/stream.mjpg?mirror=1"))[1])
        self.assertTrue(self.strip_of(self.stream_part("/stream.mjpg?width=320"))[1])
        # The probe reads the mirrored stream as it reads any other.
        result = ff.run_probe(self.server.stream_url(), seconds=2)
        self.assertGreater(result["frames"], 0, result)
        self.assertEqual(result["no_strip"], 0, result)

        self.assertFalse(self.apply({"mirror": False})["mirror"])
        time.sleep(0.3)
        self.assertFalse(self.strip_of(self.snapshot())[1])

    def test_several_keys_at_once(self):
        config = self.apply({"quality": 60, "mirror": True, "overlay": "inferred"})
        self.assertEqual((config["quality"], config["mirror"], config["overlay"]),
                         (60, True, "inferred"))
        self.assertEqual(self.config(), config)

    def test_refused_requests_change_nothing(self):
        before = self.config()
        port = self.server.port
        cases = [
            (415, post(port, '{"quality": 40}', content_type=None)),
            (415, post(port, '{"quality": 40}', content_type="text/plain")),
            (415, post(port, "quality=40", content_type="application/x-www-form-urlencoded")),
            (413, post(port, '{"quality": 40}' + " " * (5 * 1024))),
            (400, post(port, '{"quality": 40')),
            (400, post(port, "")),
            (400, post(port, "[40]")),
            (400, post(port, "{}")),
            (400, post(port, '{"quality": 40, "fps": 5}')),
            (400, post(port, '{"quality": "90"}')),
            (400, post(port, '{"quality": true}')),
            (400, post(port, '{"quality": 0}')),
            (400, post(port, '{"quality": 101}')),
            (400, post(port, '{"quality": 85.5}')),
            (400, post(port, '{"detector": 1}')),
            (400, post(port, '{"mirror": "yes"}')),
            (400, post(port, '{"overlay": "newest"}')),
            (400, post(port, '{"quality": 40, "overlay": "newest"}')),
        ]
        for expected, response in cases:
            self.assertEqual(response.status, expected, response.describe())
            self.assertTrue(response.headers.get("content-type", "").startswith(JSON),
                            response.describe())
            error = json_of(response)["error"]
            self.assertIsInstance(error, str)
            self.assertEqual(self.config(), before, f"changed by: {response.describe()}")
        messages = [json_of(r)["error"] for _, r in cases]
        self.assertIn("application/json", messages[0])
        self.assertIn("4096", messages[3])
        self.assertIn('"fps"', messages[8])
        self.assertIn("detector, overlay, quality, mirror", messages[8])
        self.assertIn("1 to 100", messages[11])
        self.assertIn('"latest" or "inferred"', messages[16])

        for method in ("PUT", "DELETE", "PATCH"):
            status, headers, body = self.server.get("/api/config", method=method)
            self.assertEqual(status, 405, (method, body))
            self.assertEqual(headers.get("allow"), "GET, HEAD, POST")
            self.assertIn("error", json.loads(body))
        response = post(port, '{"quality": 40}', path="/api/stats")
        self.assertEqual(response.status, 405)
        self.assertEqual(response.headers.get("allow"), "GET, HEAD")
        self.assertEqual(self.config(), before)

    def test_an_oversized_body_is_refused_before_it_is_sent(self):
        s = ff.connect(self.server.port)
        try:
            s.sendall(b"POST /api/config HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
                      b"\r\nContent-Length: 5120\r\n\r\n")
            head = s.recv(4096)  # answered without waiting for the 5 KiB
        finally:
            s.close()
        self.assertTrue(head.startswith(b"HTTP/1.1 413 "), head)


class ConfigWithToken(unittest.TestCase):
    def test_post_needs_the_token(self):
        with ff.Server("--detector", "none", "--token", TOKEN) as server:
            self.assertEqual(post(server.port, '{"quality": 50}').status, 401)
            self.assertEqual(server.get("/api/clock").status, 401)
            ok = post(server.port, '{"quality": 50}',
                      headers={"Authorization": f"Bearer {TOKEN}"})
            self.assertEqual(ok.status, 200, ok.describe())
            self.assertEqual(json_of(ok)["quality"], 50)
            ok = post(server.port, '{"quality": 55}', path=f"/api/config?token={TOKEN}")
            self.assertEqual(ok.status, 200, ok.describe())
            # --detector none: there is no detector to switch on.
            config = json_of(ok)
            self.assertEqual((config["detector"], config["detector_spec"]), (False, "none"))
            self.assertNotIn("detector", config["available"])
            refused = post(server.port, '{"detector": true}',
                           headers={"Authorization": f"Bearer {TOKEN}"})
            self.assertEqual(refused.status, 400)
            self.assertIn("--detector", json_of(refused)["error"])


class ConfigOnServe(unittest.TestCase):
    """`serve` has no detector or annotator: only the quality is live there."""

    def test_serve_changes_only_quality(self):
        name = f"itcfg{os.getpid()}"
        run = ff.Server("--detector", "none", "--publish", name)
        serve = ff.Server()
        serve.args = ["serve", "--port", "0", "--in", name]
        try:
            run.start()
            serve.start()
            status, _, body = serve.get("/api/config")
            self.assertEqual(status, 200)
            config = json.loads(body)
            self.assertEqual(config["available"], ["quality"])
            for key, value in (("mirror", True), ("overlay", "inferred"), ("detector", False)):
                refused = post(serve.port, json.dumps({key: value, "quality": 30}))
                self.assertEqual(refused.status, 400, refused.describe())
                error = json_of(refused)["error"]
                self.assertIn(f'"{key}"', error)
                self.assertIn("serve", error)
                self.assertIn("infer", error)
            self.assertEqual(json.loads(serve.get("/api/config").body), config)
            ok = post(serve.port, '{"quality": 30}')
            self.assertEqual(ok.status, 200, ok.describe())
            self.assertEqual(serve.stats()["quality"], 30)
        finally:
            serve.close()
            run.close()
            for bus in (name, name + ".raw", name + ".detections"):
                try:
                    os.unlink(f"/dev/shm/freshframe.{bus}")
                except FileNotFoundError:
                    pass


if __name__ == "__main__":
    ff.main()
