#!/usr/bin/python3
"""TLS through nginx: docs/deploy-nginx.md's configuration, for real.

The nginx site configuration is extracted from docs/deploy-nginx.md (the
```nginx block that starts with "# freshframe behind nginx"), its port,
server name and certificate paths are replaced, and Debian's nginx runs it as
the current user from a temporary prefix (`nginx -p TMP -c TMP/nginx.conf -e
stderr`, `daemon off`, pid and logs in TMP) on a free loopback port, with a
self-signed certificate made at test time by the `openssl` CLI, in front of
`freshframe run --port 0`. Over HTTPS (Python's ssl, verifying against that
certificate) it checks /healthz, /snapshot.jpg, /stream.mjpg and the
/ws/stream upgrade. Latency: `freshframe probe` speaks no TLS, so an MJPEG
reader here compares each part's X-Frame-Timestamp with CLOCK_MONOTONIC when
the part has fully arrived: p50 < 100 ms, and within a few ms of the same
reader without nginx (a buffering proxy adds about one frame interval).

nginx and openssl are required: if either is missing the test FAILS with a
message (scripts/install-deps.sh installs both).

Run: /usr/bin/python3 tests/integration/test_nginx.py --binary build/release/freshframe
"""

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import ffharness as ff

DOC = os.path.join(ff.REPO_ROOT, "docs", "deploy-nginx.md")
CONFIG_MARK = "# freshframe behind nginx"
STREAM_S = 5.0
P50_LIMIT_MS = 100.0      # generous (the figure)
EXTRA_P50_LIMIT_MS = 15.0  # nginx + TLS vs direct; buffering adds ~33 ms at 30 fps
MIN_FPS = 25.0
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def find_tool(name):
    """`name` on PATH or in the sbin directories (nginx lives in /usr/sbin,
    which a non-root PATH may lack)."""
    path = shutil.which(name)
    if path:
        return path
    for d in ("/usr/sbin", "/sbin", "/usr/local/sbin"):
        candidate = os.path.join(d, name)
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def doc_config():
    """The site configuration block of docs/deploy-nginx.md."""
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    blocks = re.findall(r"```nginx\n(.*?)```", text, re.S)
    for block in blocks:
        if block.startswith(CONFIG_MARK):
            return block
    raise AssertionError(f"{DOC}: no ```nginx block starting with {CONFIG_MARK!r}")


def substitute(config, replacements):
    """Replaces each (old, new) exactly once; fails if the doc changed."""
    for old, new in replacements:
        count = config.count(old)
        if count != 1:
            raise AssertionError(f"docs/deploy-nginx.md config: expected {old!r} once, found "
                                 f"{count}; update test_nginx.py together with the doc")
        config = config.replace(old, new)
    return config


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def mono_s():
    return time.clock_gettime(time.CLOCK_MONOTONIC)


class Dechunked(ff._Buffered):
    """The body of a chunked response (nginx sends an endless upstream
    response to an HTTP/1.1 client with Transfer-Encoding: chunked)."""

    def __init__(self, raw):
        super().__init__(None)
        self.raw = raw

    def fill(self):
        if self.eof:
            return False
        size_line = self.raw.read_until(b"\r\n", limit=1 << 12)
        size = int(size_line.split(b";")[0].strip(), 16)
        if size == 0:
            self.eof = True
            return False
        self.buf += self.raw.read_exact(size)
        self.raw.read_exact(2)
        return True


class Reader:
    """HTTP/1.1 over a (TLS) socket: one response head, then multipart parts
    or a body (chunked or with Content-Length)."""

    def __init__(self, sock, host, path, extra=b""):
        self.sock = sock
        self.buf = ff._Buffered(sock)
        sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " + host.encode() +
                     b"\r\n" + extra + b"\r\n")
        head = self.buf.read_until(b"\r\n\r\n", limit=64 << 10)
        self.status, _, self.headers = ff._parse_head(head)
        self.head = head
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            self.buf = Dechunked(self.buf)

    def body(self):
        if isinstance(self.buf, Dechunked):
            return self.buf.read_to_eof()
        return self.buf.read_exact(int(self.headers["content-length"]))

    def part(self):
        """(headers, body, monotonic seconds when the body had fully arrived)."""
        m = re.search(r'boundary="?([^";]+)"?', self.headers.get("content-type", ""))
        if not m:
            raise AssertionError(f"not multipart: {self.head!r}")
        want = m.group(1).lstrip("-").encode()
        while True:
            line = self.buf.read_until(b"\r\n", limit=1 << 16).strip()
            if not line:
                continue
            if line.lstrip(b"-") != want:
                raise AssertionError(f"expected boundary, got {line[:100]!r}")
            break
        block = self.buf.read_until(b"\r\n\r\n", limit=1 << 16)
        headers = {}
        for line in block.decode("iso-8859-1").split("\r\n"):
            if line:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
        body = self.buf.read_exact(int(headers["content-length"]))
        return headers, body, mono_s()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def stream_latency(connect, host, seconds):
    """Reads /stream.mjpg for `seconds`; returns (fps, [latency ms])."""
    reader = Reader(connect(), host, "/stream.mjpg")
    try:
        if reader.status != 200:
            raise AssertionError(f"/stream.mjpg -> {reader.status}: {reader.head!r}")
        reader.part()  # the first part may be older (it was waiting)
        start = mono_s()
        lat = []
        while mono_s() - start < seconds:
            headers, body, t = reader.part()
            if not ff.is_jpeg(body):
                raise AssertionError("a part is not a JPEG")
            lat.append((t - ff.part_timestamp(headers)) * 1000.0)
        return len(lat) / (mono_s() - start), lat
    finally:
        reader.close()


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(round(q / 100.0 * len(values) + 0.5)) - 1))]


class Nginx:
    """nginx as the current user from a temporary prefix."""

    def __init__(self, binary, tmp, site):
        self.binary = binary
        self.tmp = tmp
        self.conf = os.path.join(tmp, "nginx.conf")
        with open(os.path.join(tmp, "freshframe.conf"), "w") as f:
            f.write(site)
        for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(tmp, "temp", d), exist_ok=True)
        with open(self.conf, "w") as f:
            f.write(f"""# test_nginx.py: nginx in the foreground from {tmp}
daemon off;
master_process on;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {tmp}/access.log;
    default_type application/octet-stream;
    client_body_temp_path {tmp}/temp/client_body;
    proxy_temp_path {tmp}/temp/proxy;
    fastcgi_temp_path {tmp}/temp/fastcgi;
    uwsgi_temp_path {tmp}/temp/uwsgi;
    scgi_temp_path {tmp}/temp/scgi;
    include {tmp}/freshframe.conf;
}}
""")
        self.err = open(os.path.join(tmp, "stderr.log"), "wb")
        self.proc = None

    def check(self):
        cp = subprocess.run([self.binary, "-t", "-p", self.tmp, "-c", self.conf, "-e", "stderr"],
                            capture_output=True, text=True, timeout=20)
        if cp.returncode != 0:
            raise AssertionError(f"nginx -t failed:\n{cp.stderr}\nconfig:\n{self.site_text()}")

    def site_text(self):
        with open(os.path.join(self.tmp, "freshframe.conf")) as f:
            return f.read()

    def start(self):
        self.proc = subprocess.Popen([self.binary, "-p", self.tmp, "-c", self.conf, "-e", "stderr"],
                                     stdin=subprocess.DEVNULL, stdout=self.err, stderr=self.err,
                                     preexec_fn=ff._die_with_parent)

    def stderr(self):
        text = ""
        for name in ("stderr.log", "error.log"):
            try:
                with open(os.path.join(self.tmp, name), "rb") as f:
                    text += f"--- {name}\n" + f.read().decode("utf-8", "replace")[-3000:]
            except OSError:
                pass
        return text

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # fast shutdown; workers follow
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()


class NginxTls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = None
        cls.server = cls.nginx = None
        nginx = find_tool("nginx")
        openssl = find_tool("openssl")
        missing = [n for n, p in (("nginx", nginx), ("openssl", openssl)) if p is None]
        if missing:
            raise AssertionError(f"{' and '.join(missing)} not installed: this test needs Debian's "
                                 f"nginx and openssl (scripts/install-deps.sh installs them: "
                                 f"apt-get install nginx openssl)")
        try:
            cls.tmp = tempfile.mkdtemp(prefix="ff-nginx.")
            os.chmod(cls.tmp, 0o755)  # nginx workers (nobody, when run as root) read temp dirs
            cls.cert = os.path.join(cls.tmp, "cert.pem")
            key = os.path.join(cls.tmp, "key.pem")
            cp = subprocess.run(
                [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cls.cert,
                 "-days", "2", "-subj", "/CN=localhost",
                 "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                capture_output=True, text=True, timeout=30)
            if cp.returncode != 0:
                raise AssertionError(f"openssl req failed: {cp.stderr}")
            # As docs/deploy-nginx.md runs it: the public name listed.
            cls.server = ff.Server("--detector", "none", "--max-connections-per-address", "0",
                                   "--allow-host", "video.example.com")
            cls.server.start()
            site = doc_config()
            for attempt in range(3):
                cls.port = free_port()
                config = substitute(site, [
                    ("server 127.0.0.1:8080;", f"server 127.0.0.1:{cls.server.port};"),
                    ("listen 443 ssl http2;", f"listen 127.0.0.1:{cls.port} ssl http2;"),
                    ("server_name video.example.com;", "server_name localhost;"),
                    ("/etc/letsencrypt/live/video.example.com/fullchain.pem", cls.cert),
                    ("/etc/letsencrypt/live/video.example.com/privkey.pem", key),
                ])
                cls.nginx = Nginx(nginx, cls.tmp, config)
                cls.nginx.check()
                cls.nginx.start()
                if cls._wait_ready():
                    break
                err = cls.nginx.stderr()
                cls.nginx.stop()
                if "Address already in use" not in err or attempt == 2:
                    raise AssertionError(f"nginx did not come up:\n{err}")
        except BaseException:
            cls._cleanup()
            raise

    @classmethod
    def _has_flag(cls, flag):
        return flag in ff.run_cli(["run", "--help"]).stdout

    @classmethod
    def _wait_ready(cls, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not cls.nginx.alive():
                return False
            try:
                s = cls.tls_connect()
                s.close()
                return True
            except OSError:
                time.sleep(0.05)
        return False

    @classmethod
    def tls_connect(cls, timeout=10.0):
        ctx = ssl.create_default_context(cafile=cls.cert)
        raw = socket.create_connection(("127.0.0.1", cls.port), timeout=timeout)
        try:
            return ctx.wrap_socket(raw, server_hostname="localhost")
        except BaseException:
            raw.close()
            raise

    @classmethod
    def _cleanup(cls):
        if cls.nginx is not None:
            cls.nginx.stop()
        if cls.server is not None:
            cls.server.close()
        if cls.tmp is not None:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        cls._cleanup()

    def https_get(self, path, extra=b""):
        r = Reader(self.tls_connect(), "localhost", path, b"Connection: close\r\n" + extra)
        try:
            body = r.body() if "content-length" in r.headers or isinstance(r.buf, Dechunked) \
                else b""
            return r.status, r.headers, body
        finally:
            r.close()

    def assertAlive(self):
        self.assertTrue(self.nginx.alive(), f"nginx exited:\n{self.nginx.stderr()}")
        self.assertTrue(self.server.alive(), f"freshframe exited:\n{self.server.stderr()}")

    def test_certificate_is_verified(self):
        s = self.tls_connect()
        try:
            cert = s.getpeercert()
            self.assertIn(("DNS", "localhost"), cert.get("subjectAltName", ()), cert)
            self.assertIn(s.version(), ("TLSv1.2", "TLSv1.3"))
        finally:
            s.close()

    def test_healthz(self):
        status, headers, body = self.https_get("/healthz")
        self.assertEqual((status, body), (200, b"ok\n"), headers)
        self.assertTrue(headers.get("server", "").startswith("nginx"), headers)
        self.assertAlive()

    def test_snapshot(self):
        status, headers, body = self.https_get("/snapshot.jpg")
        self.assertEqual(status, 200, headers)
        self.assertEqual(headers.get("content-type"), "image/jpeg", headers)
        self.assertTrue(ff.is_jpeg(body), body[:20])
        self.assertEqual(ff.jpeg_size(body), (640, 480))
        age_ms = (mono_s() - ff.part_timestamp(headers)) * 1000.0
        self.assertLess(age_ms, 1000.0, f"snapshot {age_ms:.0f} ms old")
        self.assertAlive()

    def test_stream_latency(self):
        direct_fps, direct = stream_latency(
            lambda: ff.connect(self.server.port), "127.0.0.1", STREAM_S)
        fps, lat = stream_latency(self.tls_connect, "localhost", STREAM_S)
        p50, p90, d50 = statistics.median(lat), pct(lat, 90), statistics.median(direct)
        sys.stderr.write(
            f"through nginx (TLS): {len(lat)} parts, {fps:.1f} fps, latency p50 {p50:.1f} ms, "
            f"p90 {p90:.1f} ms, max {max(lat):.1f} ms; direct: {direct_fps:.1f} fps, p50 "
            f"{d50:.1f} ms, p90 {pct(direct, 90):.1f} ms\n")
        self.assertGreaterEqual(fps, MIN_FPS, "stream through nginx too slow")
        self.assertLess(p50, P50_LIMIT_MS, "latency through nginx too high")
        self.assertLess(p50 - d50, EXTRA_P50_LIMIT_MS,
                        f"nginx adds {p50 - d50:.1f} ms at p50: is proxy_buffering off?")
        self.assertAlive()

    def test_action_stream_and_events_routes(self):
        # /?action=stream is served by "location = /" (long timeouts).
        r = Reader(self.tls_connect(), "localhost", "/?action=stream")
        try:
            self.assertEqual(r.status, 200, r.head)
            headers, body, _ = r.part()
            self.assertTrue(ff.is_jpeg(body))
        finally:
            r.close()
        # The page (relative URLs) comes through too.
        status, headers, body = self.https_get("/")
        self.assertEqual(status, 200, headers)
        self.assertIn(b"<html", body[:2000].lower())

    def test_websocket_upgrade(self):
        key = base64.b64encode(os.urandom(16))
        upgrade = (b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
                   b"\r\nSec-WebSocket-Version: 13\r\n")
        # What freshframe itself answers (404 in a build without /ws/stream).
        direct = Reader(ff.connect(self.server.port), "127.0.0.1", "/ws/stream", upgrade)
        direct.close()
        r = Reader(self.tls_connect(), "localhost", "/ws/stream", upgrade)
        try:
            self.assertEqual(r.status, direct.status,
                             f"through nginx {r.head!r}, direct {direct.head!r}")
            if r.status != 101:
                sys.stderr.write(f"NOTE: /ws/stream answers {r.status} directly too\n")
                return
            accept = base64.b64encode(hashlib.sha1(key + WS_GUID.encode()).digest()).decode()
            self.assertEqual(r.headers.get("sec-websocket-accept"), accept, r.head)
            # The first message: a binary frame that carries a JPEG.
            b0, b1 = r.buf.read_exact(2)
            opcode, length = b0 & 0x0F, b1 & 0x7F
            self.assertEqual(opcode, 2, f"first frame opcode {opcode}")
            self.assertFalse(b1 & 0x80, "server frames must not be masked")
            if length == 126:
                length = struct.unpack("!H", r.buf.read_exact(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", r.buf.read_exact(8))[0]
            payload = r.buf.read_exact(length)
            self.assertIn(b"\xff\xd8", payload[:256], "no JPEG in the first message")
        finally:
            r.close()
        self.assertAlive()

    def test_browser_origin_rules_through_the_proxy(self):
        """The page's own requests pass (Host and X-Forwarded-Proto come through
        nginx), another site's are refused, and so is an unlisted name."""
        def request(method, path, host, origin, extra=b"", body=b""):
            head = (f"Host: {host}\r\nOrigin: {origin}\r\nConnection: close\r\n"
                    f"Content-Length: {len(body)}\r\n").encode() + extra
            sock = self.tls_connect()
            try:
                sock.sendall(f"{method} {path} HTTP/1.1\r\n".encode() + head + b"\r\n" + body)
                buf = ff._Buffered(sock)
                status, _, headers = ff._parse_head(buf.read_until(b"\r\n\r\n", limit=64 << 10))
                return status, headers
            finally:
                sock.close()
        config = b"Content-Type: application/json\r\n"
        quality = json.dumps({"quality": 80}).encode()
        ws = (b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " +
              base64.b64encode(os.urandom(16)) + b"\r\nSec-WebSocket-Version: 13\r\n")
        for name in ("localhost", "video.example.com"):
            host = f"{name}:{self.port}"
            own = f"https://{host}"
            with self.subTest(host=host):
                self.assertEqual(request("POST", "/api/config", host, own, config, quality)[0], 200)
                self.assertEqual(request("GET", "/ws/stream", host, own, ws)[0], 101)
                self.assertEqual(
                    request("POST", "/api/config", host, "https://evil.example.com", config,
                            quality)[0], 403)
                self.assertEqual(request("GET", "/ws/stream", host, "https://evil.example.com",
                                         ws)[0], 403)
                status, headers = request("GET", "/snapshot.jpg", host, own)
                self.assertEqual(status, 200)
                self.assertNotIn("access-control-allow-origin", headers)
        status, _ = request("GET", "/api/stats", f"attacker.example:{self.port}",
                            f"https://attacker.example:{self.port}")
        self.assertEqual(status, 403)
        self.assertAlive()


if __name__ == "__main__":
    ff.main()
