#!/usr/bin/python3
"""HTTP surface: page, snapshots, /?action=stream, /healthz, and bad requests
answered correctly while another client keeps streaming.

Run: /usr/bin/python3 tests/integration/test_http.py --binary build/release/freshframe
"""

import time

import ffharness as ff


def _assert_snapshot(tc, server, path, size):
    resp = server.get(path)
    tc.assertEqual(resp.status, 200, f"GET {path}: {resp.describe()}")
    ctype = resp.headers.get("content-type", "")
    tc.assertTrue(ctype.startswith("image/jpeg"), f"GET {path}: Content-Type {ctype!r}")
    tc.assertTrue(ff.is_jpeg(resp.body),
                  f"GET {path}: not a JPEG (SOI/EOI): {resp.body[:8]!r}...{resp.body[-8:]!r}")
    tc.assertEqual(ff.jpeg_size(resp.body), size, f"GET {path}: SOF size")
    stamp = resp.headers.get("x-frame-timestamp")
    if stamp is not None:  # optional on snapshots; if present it must be fresh
        age = ff.mono_s() - float(stamp)
        tc.assertLess(age, 1.0, f"GET {path}: snapshot captured {age:.3f}s ago")


class Http640(ff.ServerTestCase):
    SERVER_ARGS = ()

    def test_index_page(self):
        resp = self.server.get("/")
        self.assertEqual(resp.status, 200, resp.describe())
        self.assertTrue(resp.headers.get("content-type", "").startswith("text/html"), resp.describe())
        self.assertIn(b"<", resp.body)

    def test_snapshot(self):
        for path in ("/snapshot.jpg", "/?action=snapshot"):
            with self.subTest(path=path):
                _assert_snapshot(self, self.server, path, (640, 480))

    def test_action_stream(self):
        reader = ff.MjpegReader(self.server.port, "/?action=stream")
        try:
            self.assertEqual(reader.status, 200, reader.raw_head)
            self.assertTrue(reader.content_type.lower().startswith("multipart/x-mixed-replace"),
                            reader.raw_head)
            self.assertIsNotNone(reader.boundary, f"no boundary: {reader.raw_head!r}")
            for i in range(3):
                headers, body = reader.read_part()
                self.assertTrue(headers.get("content-type", "").startswith("image/jpeg"), headers)
                ff.part_timestamp(headers)
                self.assertTrue(ff.is_jpeg(body), f"part {i} is not a JPEG")
                self.assertEqual(ff.jpeg_size(body), (640, 480))
        finally:
            reader.close()

    def test_healthz(self):
        resp = self.server.get("/healthz")
        self.assertEqual(resp.status, 200, resp.describe())
        self.assertEqual(resp.body.strip(), b"ok", resp.describe())
        resp = self.server.get("/healthz", method="HEAD")
        self.assertEqual(resp.status, 200, resp.describe())

    def test_bad_requests_while_streaming(self):
        port = self.server.port
        big = b"a" * 16384
        cases = [
            ("unknown path", b"GET /no/such/path HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
             {404}),
            ("POST /", b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
             {405}),
            ("PUT /stream.mjpg",
             b"PUT /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
             {405}),
            ("DELETE /api/stats", b"DELETE /api/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
             {405}),
            ("garbage request line", b"THIS IS NOT HTTP\r\n\r\n", {400}),
            ("binary garbage", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n", {400}),
            ("16 KiB header", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: " + big + b"\r\n\r\n", {431}),
            ("16 KiB URL", b"GET /" + big + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", {400, 414, 431}),
        ]
        probe = ff.ProbeProcess(self.server.url, seconds=5).start()
        try:
            time.sleep(1.0)  # the probe is connected and streaming
            for name, data, expected in cases:
                with self.subTest(request=name):
                    resp = ff.raw_request(port, data)
                    self.assertIn(resp.status, expected, f"{name}: sent {data[:80]!r}..., "
                                  f"got {resp.describe()}")
            # A request cut off half-way, then a client that just hangs up.
            s = ff.connect(port)
            s.sendall(b"GET /snapshot.jpg HTTP/1.1\r\nHo")
            s.close()
            s = ff.connect(port)
            s.close()
            with self.subTest(request="HEAD /healthz"):
                resp = self.server.get("/healthz", method="HEAD")
                self.assertEqual(resp.status, 200, resp.describe())
            with self.subTest(request="GET /healthz"):
                resp = self.server.get("/healthz")
                self.assertEqual(resp.status, 200, resp.describe())
                self.assertEqual(resp.body.strip(), b"ok")
            result = probe.result()
        finally:
            probe.kill()
        ff.assert_probe_ok(self, result, clients=1)
        self.assertServerAlive()


class Http320(ff.ServerTestCase):
    SERVER_ARGS = ("--source", "pattern:320x240@15", "--detector", "none")

    def test_snapshot(self):
        for path in ("/snapshot.jpg", "/?action=snapshot"):
            with self.subTest(path=path):
                _assert_snapshot(self, self.server, path, (320, 240))


if __name__ == "__main__":
    ff.main()
