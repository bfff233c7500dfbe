#!/usr/bin/python3
"""Streaming fidelity: probe against `run --detector none|faces`, 20 clients,
and the headers of every MJPEG part.

Run: /usr/bin/python3 tests/integration/test_stream.py --binary build/release/freshframe
"""

import ffharness as ff

P99_LIMIT_MS = 200.0
PROBE_SECONDS = 5


class StreamDetectorNone(ff.ServerTestCase):
    SERVER_ARGS = ("--detector", "none")

    def test_probe_5s(self):
        result = ff.run_probe(self.server.url, seconds=PROBE_SECONDS)
        ff.assert_probe_ok(self, result, clients=1, p99_ms=P99_LIMIT_MS)
        self.assertServerAlive()

    def test_part_headers(self):
        """Every part: image/jpeg, Content-Length, X-Frame-Timestamp with 6
        decimals, recent and increasing; a valid 640x480 JPEG."""
        reader = ff.MjpegReader(self.server.port, "/stream.mjpg")
        try:
            self.assertEqual(reader.status, 200, reader.raw_head)
            self.assertTrue(reader.content_type.lower().startswith("multipart/x-mixed-replace"),
                            reader.raw_head)
            self.assertIsNotNone(reader.boundary, reader.raw_head)
            last = 0.0
            for i in range(10):
                headers, body = reader.read_part()
                now = ff.mono_s()
                self.assertTrue(headers.get("content-type", "").startswith("image/jpeg"),
                                f"part {i}: {headers}")
                self.assertEqual(int(headers["content-length"]), len(body))
                stamp = ff.part_timestamp(headers)
                age = now - stamp
                self.assertTrue(-0.01 < age < 1.0, f"part {i}: stamp {stamp} is {age:.3f}s old")
                self.assertGreater(stamp, last, f"part {i}: stamp {stamp} not after {last}")
                last = stamp
                self.assertTrue(ff.is_jpeg(body), f"part {i}: not a JPEG: {body[:8]!r}...{body[-8:]!r}")
                self.assertEqual(ff.jpeg_size(body), (640, 480), f"part {i}")
        finally:
            reader.close()


class StreamDetectorFaces(ff.ServerTestCase):
    SERVER_ARGS = ("--detector", "faces")

    def test_probe_5s(self):
        result = ff.run_probe(self.server.url, seconds=PROBE_SECONDS)
        ff.assert_probe_ok(self, result, clients=1, p99_ms=P99_LIMIT_MS)
        self.assertServerAlive()

    def test_twenty_clients(self):
        result = ff.run_probe(self.server.url, seconds=PROBE_SECONDS, clients=20)
        ff.assert_probe_ok(self, result, clients=20)
        self.assertServerAlive()


if __name__ == "__main__":
    ff.main()
