#!/usr/bin/python3
"""Exposing freshframe: --token, --token-file and --basic-auth end to end
(401 without credentials, 200 with them, /healthz open, the token never in
the logs), their bad values (exit 2, or exit 1 for an unreadable token file),
and the --max-clients and --max-connections-per-address limits.

Run: /usr/bin/python3 tests/integration/test_auth.py --binary build/release/freshframe
"""

import base64
import json
import os
import tempfile
import time
import unittest

import ffharness as ff

TOKEN = "Xq7-integration-token"
USER_PASS = "viewer:c0rrect horse"


def basic(user_pass):
    return "Basic " + base64.b64encode(user_pass.encode()).decode()


def nonempty_lines(text):
    return [line for line in text.splitlines() if line.strip()]


class TokenTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.server = ff.Server("--detector", "none", "--token", TOKEN).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def test_routes_need_the_token(self):
        for path in ["/", "/stream.mjpg", "/snapshot.jpg", "/api/stats", "/api/detections",
                     "/api/events", "/?action=snapshot"]:
            with self.subTest(path=path):
                response = self.server.get(path)
                self.assertEqual(response.status, 401, response.describe())
                self.assertIn('Bearer realm="freshframe"', response.headers.get("www-authenticate", ""))
                self.assertEqual(response.headers.get("cache-control"), "no-store")
                wrong = self.server.get(path, headers={"Authorization": "Bearer nope"})
                self.assertEqual(wrong.status, 401, wrong.describe())

    def test_bearer_and_query_token_are_accepted(self):
        status, _, body = self.server.get("/api/stats", headers={"Authorization": "Bearer " + TOKEN})
        self.assertEqual(status, 200, body[:300])
        status, headers, body = self.server.get("/snapshot.jpg?token=" + TOKEN)
        self.assertEqual(status, 200, body[:300])
        self.assertTrue(ff.is_jpeg(body))
        status, _, page = self.server.get("/?token=" + TOKEN)
        self.assertEqual(status, 200)
        # The page passes the token on to its own requests.
        self.assertIn(b'get("token")', page)

    def test_healthz_is_open(self):
        status, _, body = self.server.get("/healthz")
        self.assertEqual((status, body), (200, b"ok\n"))

    def test_stream_with_query_token_and_no_token_in_logs(self):
        reader = ff.MjpegReader(self.server.port, "/stream.mjpg?token=" + TOKEN)
        try:
            self.assertEqual(reader.status, 200, reader.raw_head)
            headers, body = reader.read_part()
            self.assertTrue(ff.is_jpeg(body))
            stats = self.server.get("/api/stats", headers={"Authorization": "Bearer " + TOKEN})
            self.assertNotIn(TOKEN.encode(), stats.body)
            self.assertIn(b"token=***", stats.body)
        finally:
            reader.close()
        self.assertIn("client connected:", self.server.stderr())
        self.assertNotIn(TOKEN, self.server.stderr())

    def test_rejections_are_counted(self):
        self.server.get("/api/stats")
        stats = json.loads(self.server.get("/api/stats?token=" + TOKEN).body.decode())
        self.assertGreaterEqual(stats["rejected"]["auth"], 1)
        for key in ("max_clients", "per_address", "uri_too_long"):
            self.assertIn(key, stats["rejected"])


class BasicAuthTest(unittest.TestCase):

    def test_basic_credentials(self):
        with ff.Server("--detector", "none", "--basic-auth", USER_PASS) as server:
            response = server.get("/")
            self.assertEqual(response.status, 401)
            self.assertIn('Basic realm="freshframe"', response.headers.get("www-authenticate", ""))
            self.assertEqual(server.get("/", headers={"Authorization": basic(USER_PASS)}).status, 200)
            self.assertEqual(server.get("/", headers={"Authorization": basic("viewer:wrong")}).status,
                             401)
            self.assertNotIn("c0rrect", server.stderr())

    def test_token_file_and_basic_together(self):
        with tempfile.NamedTemporaryFile("w", suffix=".token", delete=False) as f:
            f.write(TOKEN + "  \nignored second line\n")
            path = f.name
        try:
            with ff.Server("--detector", "none", "--token-file", path,
                           "--basic-auth", USER_PASS) as server:
                self.assertEqual(server.get("/api/stats").status, 401)
                self.assertEqual(server.get("/api/stats?token=" + TOKEN).status, 200)
                self.assertEqual(server.get(
                    "/api/stats", headers={"Authorization": basic(USER_PASS)}).status, 200)
        finally:
            os.unlink(path)


class BadValuesTest(unittest.TestCase):

    def test_bad_values_exit_2_with_one_line(self):
        for bad in (["--basic-auth", "nocolon-sekrit"], ["--basic-auth", ":sekrit"],
                    ["--basic-auth", "user:"], ["--token", ""], ["--token", "two sekrit"],
                    ["--token", "a", "--token-file", "/etc/hostname"],
                    ["--max-clients", "-1"], ["--max-connections-per-address", "x"]):
            with self.subTest(args=bad):
                cp = ff.run_cli(["run", "--port", "0"] + bad, timeout=15)
                lines = nonempty_lines(cp.stderr)
                self.assertEqual(cp.returncode, 2, f"{bad}: exit {cp.returncode}, {cp.stderr!r}")
                self.assertEqual(len(lines), 1, f"{bad}: {cp.stderr!r}")
                self.assertNotIn("sekrit", cp.stderr)
                self.assertNotIn("serving on", cp.stdout)

    def test_unreadable_or_empty_token_file_exits_1(self):
        with tempfile.NamedTemporaryFile("w", suffix=".token", delete=False) as f:
            f.write("  \n")
            empty = f.name
        try:
            for path in ("/nonexistent/freshframe.token", empty):
                with self.subTest(path=path):
                    cp = ff.run_cli(["run", "--port", "0", "--detector", "none",
                                     "--token-file", path], timeout=20)
                    self.assertEqual(cp.returncode, 1, f"exit {cp.returncode}; {cp.stderr!r}")
                    self.assertIn(path, cp.stderr)
                    self.assertNotIn("serving on", cp.stdout)
        finally:
            os.unlink(empty)


class LimitsTest(unittest.TestCase):

    def test_max_clients(self):
        with ff.Server("--detector", "none", "--max-clients", "1") as server:
            first = ff.MjpegReader(server.port, "/stream.mjpg")
            try:
                self.assertEqual(first.status, 200)
                first.read_part()
                response = server.get("/stream.mjpg")
                self.assertEqual(response.status, 503, response.describe())
                self.assertEqual(response.headers.get("retry-after"), "1")
                self.assertEqual(server.get("/snapshot.jpg").status, 200)
                self.assertEqual(server.stats()["rejected"]["max_clients"], 1)
            finally:
                first.close()

    def test_max_connections_per_address(self):
        with ff.Server("--detector", "none", "--max-connections-per-address", "2") as server:
            held = [ff.connect(server.port) for _ in range(2)]
            try:
                for s in held:  # answered, so accepted, and kept open
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                    self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 200"))
                try:
                    response = ff.raw_request(server.port, b"GET /healthz HTTP/1.1\r\n\r\n", timeout=5)
                    self.assertEqual(response.status, 503, response.describe())
                except (ff.HttpError, ConnectionError):
                    pass  # closed before anything could be written: also a refusal
            finally:
                for s in held:
                    s.close()
            # The places come free as the server notices the closes.
            deadline = time.monotonic() + 5
            while True:
                try:
                    stats = server.stats(timeout=2)
                    break
                except AssertionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            self.assertGreaterEqual(stats["rejected"]["per_address"], 1)


if __name__ == "__main__":
    ff.main()
