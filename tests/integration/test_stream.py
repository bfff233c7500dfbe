#!/usr/bin/python3
"""Streaming fidelity: probe against `run --detector none|faces`, 20 clients,
and the headers of every MJPEG part.

Run: /usr/bin/python3 tests/integration/test_stream.py --binary build/release/freshframe
"""

import time

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


class EarlyParts(ff.ServerTestCase):
    """?parts=early: each part's headers follow the previous part at once,
    so a browser (which shows a part only once the next part's headers are
    in) shows every frame as soon as it has arrived."""
    SERVER_ARGS = ("--detector", "none", "--source", "pattern:640x480@4")
    DELIMITER = b"\r\n--freshframe-boundary\r\nContent-Type: image/jpeg\r\n\r\n"

    def test_next_headers_arrive_with_the_frame(self):
        sock = ff.connect(self.server.port)
        try:
            sock.sendall(b"GET /stream.mjpg?parts=early HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            data = b""
            arrivals = []  # (time, bytes so far)
            deadline = time.monotonic() + 10
            while data.partition(b"\r\n\r\n")[2].count(self.DELIMITER) < 3 and time.monotonic() < deadline:
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                data += chunk
                arrivals.append((time.monotonic(), len(data)))
            head, _, body = data.partition(b"\r\n\r\n")
            self.assertEqual(body.count(self.DELIMITER), 3, data[:300])
            self.assertIn(b"multipart/x-mixed-replace", head)
            self.assertTrue(body.startswith(b"--freshframe-boundary\r\nContent-Type: image/jpeg\r\n\r\n"), body[:80])
            parts = body.split(self.DELIMITER)
            first = parts[0].split(b"\r\n\r\n", 1)[1]
            for jpeg in (first, parts[1], parts[2]):
                self.assertTrue(ff.is_jpeg(jpeg), jpeg[:8])
                self.assertEqual(ff.jpeg_size(jpeg), (640, 480))
            # At 4 fps the next frame is 250 ms away: the delimiter and the
            # next part's headers must come with the frame, not with the next.
            ends = []
            at = body.find(self.DELIMITER)
            while at >= 0:
                ends.append(len(head) + 4 + at)
                at = body.find(self.DELIMITER, at + 1)
            for i, end_of_jpeg in enumerate(ends[:2]):
                got_jpeg = next(t for t, n in arrivals if n >= end_of_jpeg)
                got_headers = next(t for t, n in arrivals if n >= end_of_jpeg + len(self.DELIMITER))
                self.assertLess(got_headers - got_jpeg, 0.1,
                                f"part {i}: headers {got_headers - got_jpeg:.3f} s after the JPEG")
        finally:
            sock.close()

    def test_probe_reads_early_parts(self):
        result = ff.run_probe(self.server.url + "stream.mjpg?parts=early", seconds=2)
        self.assertEqual(result["failed_clients"], 0, result)
        self.assertGreater(result["frames"], 4, result)
        self.assertEqual(result["no_strip"], 0, result)

    def test_bad_value_is_400(self):
        status, _, body = ff.http_get(self.server.port, "/stream.mjpg?parts=soon")
        self.assertEqual(status, 400)
        self.assertIn(b"early or full", body)


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
