#!/usr/bin/python3
"""Safe by default: no web page of another origin can read the camera.

Against `freshframe run` as a user starts it (127.0.0.1, no credentials):
- no Access-Control-Allow-Origin on any route;
- a request with a foreign Origin is refused with 403 and a one-line reason
  naming --allow-origin on streams, events, WebSocket handshakes, snapshots,
  stats and POST /api/config (which then changes nothing); requests without
  Origin (curl, ffmpeg, VLC) and the server's own pages work;
- a Host that is neither an IP literal nor localhost (DNS rebinding) is
  refused with 403 naming --allow-host on every route but /healthz;
- --allow-origin lets one origin read (CORS echo, preflight, WebSocket), and
  `*` any; --allow-host NAME / any answers other names; bad values exit 2;
- refusals are logged once per client at most while a viewer keeps streaming.

Run: /usr/bin/python3 tests/integration/test_origin.py --binary build/release/freshframe
"""

import base64
import json
import os
import time
import unittest

import ffharness as ff

EVIL = "http://evil.example.com"
PAGE = "http://127.0.0.1:9"  # "another port": the test's stand-in for a second site

ROUTES = ["/", "/stream.mjpg", "/snapshot.jpg", "/api/stats", "/api/detections", "/api/events",
          "/api/config", "/api/clock", "/metrics", "/?action=stream", "/ws/stream"]


def request(port, method, path, host=None, headers=None, body=b"", head_only=False):
    """One request with exactly the Host (None: 127.0.0.1:PORT; "": none) and
    headers given."""
    host = f"127.0.0.1:{port}" if host is None else host
    lines = [f"{method} {path} HTTP/1.1"]
    if "Connection" not in (headers or {}):
        lines.append("Connection: close")
    if host:
        lines.append(f"Host: {host}")
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if body:
        lines.append(f"Content-Length: {len(body)}")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    if path in ("/stream.mjpg", "/api/events", "/?action=stream") or "Upgrade" in (headers or {}):
        return head_of_endless(port, data)
    return ff.raw_request(port, data, head_only=head_only)


def head_of_endless(port, data):
    """Status and headers of a response that may never end (a stream)."""
    s = ff.connect(port)
    try:
        s.sendall(data)
        buf = ff._Buffered(s)
        head = buf.read_until(b"\r\n\r\n", limit=64 << 10)
        status, _, headers = ff._parse_head(head)
        body = b""
        if status != 200 and status != 101 and "content-length" in headers:
            body = buf.read_exact(int(headers["content-length"]))
        return ff.Response(status, "", headers, body, head)
    finally:
        s.close()


def ws_headers(origin=None):
    headers = {"Upgrade": "websocket", "Connection": "Upgrade",
               "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
               "Sec-WebSocket-Version": "13"}
    if origin:
        headers["Origin"] = origin
    return headers


def post_config(port, change, origin=None, host=None, extra=None):
    headers = {"Content-Type": "application/json"}
    if origin:
        headers["Origin"] = origin
    headers.update(extra or {})
    return request(port, "POST", "/api/config", host=host, headers=headers,
                   body=json.dumps(change).encode())


def quality(server):
    return json.loads(server.get("/api/config").body)["quality"]


class DefaultPolicyTest(ff.ServerTestCase):
    SERVER_ARGS = ("--detector", "motion", "--source", "pattern:320x240@30")

    def test_no_cors_header_on_any_route(self):
        port = self.server.port
        for path in ROUTES:
            for origin in (None, EVIL):
                with self.subTest(path=path, origin=origin):
                    headers = {"Origin": origin} if origin else {}
                    if path == "/ws/stream":
                        headers.update(ws_headers())
                    response = request(port, "GET", path, headers=headers)
                    self.assertNotIn("access-control-allow-origin", response.headers,
                                     response.describe())

    def test_foreign_origin_is_refused_with_a_reason(self):
        port = self.server.port
        for path in ROUTES:
            if path == "/api/config":
                continue  # below, as a POST
            with self.subTest(path=path):
                headers = {"Origin": EVIL}
                if path == "/ws/stream":
                    headers.update(ws_headers())
                response = request(port, "GET", path, headers=headers)
                self.assertEqual(response.status, 403, response.describe())
                reason = json.loads(response.body)["error"]
                self.assertIn("--allow-origin", reason)
                self.assertNotIn("\n", reason)
        # "null" (a sandboxed frame, a file:// page) and another port of this host too.
        for origin in ("null", f"http://127.0.0.1:{port + 1}", f"https://127.0.0.1:{port}"):
            with self.subTest(origin=origin):
                self.assertEqual(request(port, "GET", "/snapshot.jpg",
                                         headers={"Origin": origin}).status, 403)

    def test_websocket_from_a_foreign_page_is_refused_and_from_its_own_accepted(self):
        port = self.server.port
        refused = request(port, "GET", "/ws/stream", headers=ws_headers(EVIL))
        self.assertEqual(refused.status, 403, refused.describe())
        own = request(port, "GET", "/ws/stream", headers=ws_headers(f"http://127.0.0.1:{port}"))
        self.assertEqual(own.status, 101, own.describe())
        tool = request(port, "GET", "/ws/stream", headers=ws_headers())
        self.assertEqual(tool.status, 101, tool.describe())

    def test_post_config_from_a_foreign_page_changes_nothing(self):
        port = self.server.port
        before = quality(self.server)
        target = 40 if before != 40 else 41
        for origin in (EVIL, "null"):
            response = post_config(port, {"quality": target}, origin=origin)
            self.assertEqual(response.status, 403, response.describe())
        self.assertEqual(quality(self.server), before)
        own = post_config(port, {"quality": target}, origin=f"http://127.0.0.1:{port}")
        self.assertEqual(own.status, 200, own.describe())
        self.assertEqual(quality(self.server), target)
        tool = post_config(port, {"quality": before})  # curl: no Origin
        self.assertEqual(tool.status, 200, tool.describe())

    def test_requests_without_origin_are_unaffected(self):
        port = self.server.port
        self.assertEqual(request(port, "GET", "/stream.mjpg").status, 200)
        self.assertEqual(request(port, "GET", "/api/events").status, 200)
        snapshot = request(port, "GET", "/snapshot.jpg")
        self.assertEqual(snapshot.status, 200)
        self.assertTrue(ff.is_jpeg(snapshot.body))

    def test_rebinding_host_is_refused_on_every_route_but_healthz(self):
        port = self.server.port
        for host in ("attacker.example", f"attacker.example:{port}", "127.0.0.1.nip.io",
                     "localhost.attacker.example"):
            for path in ROUTES:
                with self.subTest(host=host, path=path):
                    headers = ws_headers() if path == "/ws/stream" else {}
                    response = request(port, "GET", path, host=host, headers=headers)
                    self.assertEqual(response.status, 403, response.describe())
                    self.assertIn("--allow-host", json.loads(response.body)["error"])
            response = post_config(port, {"quality": 20}, host=host, origin=f"http://{host}")
            self.assertEqual(response.status, 403, response.describe())
            self.assertEqual(request(port, "GET", "/healthz", host=host).status, 200)

    def test_ip_literals_and_localhost_are_answered(self):
        port = self.server.port
        for host in (f"127.0.0.1:{port}", "127.0.0.1", f"localhost:{port}", "LocalHost",
                     f"[::1]:{port}", "192.168.1.20:8080", "", f"cam.localhost:{port}"):
            with self.subTest(host=host):
                self.assertEqual(request(port, "GET", "/api/stats", host=host).status, 200)
        # The page served under localhost may use its own server.
        own = post_config(port, {"quality": quality(self.server)}, host=f"localhost:{port}",
                          origin=f"http://localhost:{port}")
        self.assertEqual(own.status, 200, own.describe())

    def test_refusals_are_counted_in_stats(self):
        port = self.server.port
        before = self.server.stats()["rejected"]
        request(port, "GET", "/api/stats", host="attacker.example")
        request(port, "GET", "/api/stats", headers={"Origin": EVIL})
        after = self.server.stats()["rejected"]
        self.assertGreaterEqual(after["host"], before["host"] + 1)
        self.assertGreaterEqual(after["origin"], before["origin"] + 1)


class AllowOriginTest(ff.ServerTestCase):
    SERVER_ARGS = ("--detector", "motion", "--source", "pattern:320x240@30",
                   "--allow-origin", PAGE, "--allow-origin",
                   "HTTP://Cam.Example.com:80", "--allow-host", "cam.example.com")

    def test_the_allowed_origin_reads_the_stream_and_the_api(self):
        port = self.server.port
        for path in ("/stream.mjpg", "/snapshot.jpg", "/api/stats", "/api/events",
                     "/api/detections"):
            with self.subTest(path=path):
                response = request(port, "GET", path, headers={"Origin": PAGE})
                self.assertEqual(response.status, 200, response.describe())
                self.assertEqual(response.headers.get("access-control-allow-origin"), PAGE)
                self.assertIn("Origin", response.headers.get("vary", ""))
        ws = request(port, "GET", "/ws/stream", headers=ws_headers(PAGE))
        self.assertEqual(ws.status, 101, ws.describe())
        # Listed normalised: the browser's form of the second one matches.
        response = request(port, "GET", "/api/stats", headers={"Origin": "http://cam.example.com"})
        self.assertEqual(response.headers.get("access-control-allow-origin"),
                         "http://cam.example.com")

    def test_preflight_for_the_allowed_origin_only(self):
        port = self.server.port
        headers = {"Origin": PAGE, "Access-Control-Request-Method": "POST",
                   "Access-Control-Request-Headers": "content-type"}
        response = request(port, "OPTIONS", "/api/config", headers=headers)
        self.assertEqual(response.status, 204, response.describe())
        self.assertEqual(response.headers.get("access-control-allow-origin"), PAGE)
        self.assertIn("POST", response.headers.get("access-control-allow-methods", ""))
        self.assertIn("Content-Type", response.headers.get("access-control-allow-headers", ""))
        headers["Origin"] = EVIL
        self.assertEqual(request(port, "OPTIONS", "/api/config", headers=headers).status, 403)
        post = post_config(port, {"quality": 70}, origin=PAGE)
        self.assertEqual(post.status, 200, post.describe())
        self.assertEqual(post.headers.get("access-control-allow-origin"), PAGE)

    def test_other_origins_are_still_refused(self):
        port = self.server.port
        response = request(port, "GET", "/stream.mjpg", headers={"Origin": EVIL})
        self.assertEqual(response.status, 403, response.describe())

    def test_listed_host_is_answered(self):
        port = self.server.port
        self.assertEqual(request(port, "GET", "/api/stats", host="cam.example.com").status, 200)
        self.assertEqual(request(port, "GET", "/api/stats", host="other.example.com").status, 403)
        # Its own pages (same scheme, host and port as Host) are same-origin.
        own = post_config(port, {"quality": 71}, host="cam.example.com:8080",
                          origin="http://cam.example.com:8080")
        self.assertEqual(own.status, 200, own.describe())
        # Behind a TLS proxy that passes Host and X-Forwarded-Proto.
        proxied = post_config(port, {"quality": 72}, host="cam.example.com",
                              origin="https://cam.example.com",
                              extra={"X-Forwarded-Proto": "https"})
        self.assertEqual(proxied.status, 200, proxied.describe())


class AllowAnyTest(unittest.TestCase):
    def test_star_and_any(self):
        with ff.Server("--detector", "motion", "--source", "pattern:320x240@30",
                       "--allow-origin", "*", "--allow-host", "any") as server:
            response = request(server.port, "GET", "/snapshot.jpg",
                               host="whatever.example", headers={"Origin": EVIL})
            self.assertEqual(response.status, 200, response.describe())
            self.assertEqual(response.headers.get("access-control-allow-origin"), "*")

    def test_policy_comes_before_auth_and_auth_still_applies(self):
        with ff.Server("--detector", "motion", "--source", "pattern:320x240@30", "--token", "s3cret",
                       "--allow-origin", PAGE) as server:
            port = server.port
            self.assertEqual(request(port, "GET", "/api/stats", headers={"Origin": EVIL}).status,
                             403)
            self.assertEqual(request(port, "GET", "/api/stats", headers={"Origin": PAGE}).status,
                             401)
            allowed = request(port, "GET", "/api/stats?token=s3cret", headers={"Origin": PAGE})
            self.assertEqual(allowed.status, 200, allowed.describe())
            # A preflight carries no credentials: answered for the allowed page.
            preflight = request(port, "OPTIONS", "/api/stats",
                                headers={"Origin": PAGE, "Access-Control-Request-Method": "GET",
                                         "Access-Control-Request-Headers": "authorization"})
            self.assertEqual(preflight.status, 204, preflight.describe())
            self.assertEqual(request(port, "GET", "/healthz", host="attacker.example").status, 200)

    def test_bad_values_exit_2(self):
        for args in (["--allow-origin", "evil.example.com"],
                     ["--allow-origin", "http://evil.example.com/path"],
                     ["--allow-host", "cam.example.com:8080"],
                     ["--allow-host", "http://cam.example.com"]):
            with self.subTest(args=args):
                cp = ff.run_cli(["run", "--port", "0"] + args)
                self.assertEqual(cp.returncode, 2, cp.stderr)
                self.assertTrue("--allow-origin" in cp.stderr or "--allow-host" in cp.stderr,
                                cp.stderr)


class RefusalFloodTest(unittest.TestCase):
    def test_one_log_line_per_client_and_the_stream_goes_on(self):
        with ff.Server("--detector", "motion", "--source", "pattern:320x240@30") as server:
            port = server.port
            viewer = ff.MjpegReader(port)
            try:
                viewer.read_part()
                start = time.monotonic()
                sequences = set()
                for i in range(200):
                    if i % 2:
                        request(port, "GET", "/api/stats", host="attacker.example")
                    else:
                        request(port, "GET", "/stream.mjpg", headers={"Origin": EVIL})
                    if i % 10 == 0:
                        headers, _ = viewer.read_part()
                        sequences.add(headers.get("x-frame-sequence"))
                # The viewer kept receiving new frames throughout the flood.
                self.assertGreaterEqual(len(sequences), 15, sequences)
                elapsed = time.monotonic() - start
                self.assertGreater(elapsed, 0)
            finally:
                viewer.close()
            refused_lines = [line for line in server.stderr(tail=1 << 20).splitlines()
                             if " 403 " in line]
            self.assertLessEqual(len(refused_lines), 1, "\n".join(refused_lines[:5]))
            self.assertEqual(len(refused_lines), 1, server.stderr())
            self.assertEqual(server.stats()["rejected"]["host"], 100)
            self.assertEqual(server.stats()["rejected"]["origin"], 100)


if __name__ == "__main__":
    ff.main()
