"""Shared helpers for freshframe's integration tests.

Standard library only (Debian's /usr/bin/python3). Everything here talks to
127.0.0.1, is bounded in time, and only ever signals processes it started
itself (by PID).

- Server: starts `freshframe run --port 0 ...`, waits for the
  `freshframe: serving on http://ADDR:PORT/` line on stdout and stops the
  process with SIGTERM (SIGKILL fallback).
- run_probe / start_probe: `freshframe probe URL --json`.
- raw_request / http_get: raw HTTP/1.1 over a socket (so malformed requests
  can be sent as-is).
- MjpegReader: a multipart/x-mixed-replace client that returns parts;
  StreamingClient reads one continuously in a thread.
- jpeg_size: width/height from a JPEG's SOF marker; is_jpeg: SOI/EOI check.

The binary is taken from `--binary PATH` on the command line (what ctest
passes), else $FRESHFRAME_BINARY, else build/release/freshframe.
"""

import base64
import ctypes
import hashlib
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("FRESHFRAME_BINARY") or os.path.join(
    REPO_ROOT, "build", "release", "freshframe")

SOURCE_FPS = 30.0
FPS_TOLERANCE = 0.10  # "within 10% of the source rate"
STARTUP_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
SERVING_RE = re.compile(r"^freshframe: serving on http://([0-9.]+|\[[0-9a-fA-F:.]+\]):(\d+)/$")


def mono_s():
    """CLOCK_MONOTONIC in seconds, the clock of X-Frame-Timestamp."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def fps_bounds(source_fps=SOURCE_FPS, tolerance=FPS_TOLERANCE):
    return source_fps * (1.0 - tolerance), source_fps * (1.0 + tolerance)


# --------------------------------------------------------------------------
# Processes

_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """preexec_fn: the child gets SIGKILL if the test process dies first, so a
    test killed by ctest's timeout never leaves a server behind."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:  # best effort only
        pass


def popen(args, **kwargs):
    """subprocess.Popen of the freshframe binary with `args`."""
    if not os.path.exists(BINARY):
        raise AssertionError(f"freshframe binary not found: {BINARY}")
    return subprocess.Popen([BINARY] + list(args), preexec_fn=_die_with_parent, **kwargs)


def run_cli(args, timeout=20.0):
    """Runs `freshframe ARGS` to completion. Returns CompletedProcess (text).
    On timeout the child (only it) is killed and AssertionError raised."""
    proc = popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, text=True, errors="replace")
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(
            f"freshframe {' '.join(args)} did not exit within {timeout}s\n"
            f"stdout: {out!r}\nstderr: {err[-4000:]!r}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


class Server:
    """A `freshframe run --port 0 ARGS` process.

    Use as a context manager, or call start() / stop() (stop() is idempotent
    and safe to call from tearDown even if start() failed).
    """

    def __init__(self, *args):
        self.args = ["run", "--port", "0"] + list(args)
        self.proc = None
        self.url = None
        self.host = None
        self.port = None
        self.serving_line = None
        self._out = None
        self._err = None

    # -- lifecycle
    def start(self, timeout=STARTUP_TIMEOUT_S):
        # stdout/stderr go to temporary files: nobody has to keep reading a
        # pipe, so a chatty server can never block on a full pipe.
        self._out = tempfile.TemporaryFile()
        self._err = tempfile.TemporaryFile()
        self.proc = popen(self.args, stdin=subprocess.DEVNULL, stdout=self._out,
                          stderr=self._err)
        deadline = time.monotonic() + timeout
        while True:
            line = self._first_stdout_line()
            if line is not None:
                break
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"freshframe {' '.join(self.args)} exited with {self.proc.returncode} "
                    f"before serving\nstdout: {self.stdout()!r}\nstderr:\n{self.stderr()}")
            if time.monotonic() > deadline:
                err = self.stderr()
                self.stop()
                raise AssertionError(
                    f"no 'serving on' line within {timeout}s from freshframe "
                    f"{' '.join(self.args)}\nstdout: {self.stdout()!r}\nstderr:\n{err}")
            time.sleep(0.02)
        self.serving_line = line
        m = SERVING_RE.match(line)
        if not m:
            self.stop()
            raise AssertionError(f"unexpected first stdout line: {line!r}")
        self.host, self.port = m.group(1), int(m.group(2))
        self.url = f"http://{self.host}:{self.port}/"
        return self

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT_S):
        """Signals the server and waits. Returns its exit status (None if it
        never started). Falls back to SIGKILL after `timeout`."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def close(self):
        """stop(), then release the captured output files."""
        rc = self.stop()
        for f in (self._out, self._err):
            if f is not None:
                f.close()
        self._out = self._err = None
        return rc

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
        return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # -- output
    def _read_file(self, f):
        if f is None:
            return b""
        f.flush()
        pos = f.tell()
        f.seek(0)
        data = f.read()
        f.seek(pos)
        return data

    def _first_stdout_line(self):
        data = self._read_file(self._out)
        if b"\n" not in data:
            return None
        return data.split(b"\n", 1)[0].decode("utf-8", "replace").rstrip("\r")

    def stdout(self):
        return self._read_file(self._out).decode("utf-8", "replace")

    def stderr(self, tail=8000):
        return self._read_file(self._err).decode("utf-8", "replace")[-tail:]

    # -- conveniences
    def stream_url(self, path="/stream.mjpg"):
        return f"http://{self.host}:{self.port}{path}"

    def get(self, path, timeout=10.0, method="GET", headers=None):
        return http_get(self.port, path, timeout=timeout, method=method, headers=headers)

    def stats(self, timeout=10.0):
        status, headers, body = self.get("/api/stats", timeout=timeout)
        if status != 200:
            raise AssertionError(f"/api/stats -> {status}: {body[:500]!r}")
        try:
            return json.loads(body.decode("utf-8"))
        except ValueError as e:
            raise AssertionError(f"/api/stats is not JSON ({e}): {body[:500]!r}")


def probe_args(url, seconds=5, clients=1, extra=()):
    return ["probe", url, "--seconds", str(seconds), "--clients", str(clients), "--json"] + list(extra)


def _parse_probe(proc_args, rc, out, err):
    """The probe's JSON object, with "_exit_status" and "_stderr" added. A
    non-zero exit with a JSON object (e.g. some clients failed) is returned
    so that assert_probe_ok can say what failed; without one it raises."""
    try:
        result = _probe_json(out, err)
    except AssertionError:
        if rc != 0:
            raise AssertionError(f"probe exited {rc}\nargs: {proc_args}\nstdout: {out[-2000:]!r}\n"
                                 f"stderr: {err[-4000:]}")
        raise
    if isinstance(result, dict):
        result["_exit_status"] = rc
        result["_stderr"] = err[-2000:]
    return result


def _probe_json(out, err):
    text = out.strip()
    try:
        return json.loads(text)
    except ValueError:
        # Tolerate stray lines around the object, but say so if none parses.
        for line in reversed(text.splitlines()):
            line = line.strip()
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except ValueError:
                    pass
        raise AssertionError(f"probe --json printed no JSON object\nstdout: {out[-2000:]!r}\n"
                             f"stderr: {err[-4000:]}")


def run_probe(url, seconds=5, clients=1, extra=(), timeout=None):
    """Runs `freshframe probe URL --seconds S --clients K --json`; returns
    the parsed JSON object."""
    args = probe_args(url, seconds, clients, extra)
    cp = run_cli(args, timeout=timeout or seconds + 30)
    return _parse_probe(args, cp.returncode, cp.stdout, cp.stderr)


class ProbeProcess:
    """A probe running in the background: start(), do other things, result()."""

    def __init__(self, url, seconds=5, clients=1, extra=()):
        self.args = probe_args(url, seconds, clients, extra)
        self.seconds = seconds
        self.proc = None

    def start(self):
        self.proc = popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, errors="replace")
        return self

    def result(self, timeout=None):
        try:
            out, err = self.proc.communicate(timeout=timeout or self.seconds + 30)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"probe did not finish: {self.args}")
        return _parse_probe(self.args, self.proc.returncode, out, err)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


# --------------------------------------------------------------------------
# Raw HTTP

class HttpError(AssertionError):
    pass


class Response:
    def __init__(self, status, reason, headers, body, raw_head):
        self.status = status
        self.reason = reason
        self.headers = headers  # lower-case name -> value (last wins)
        self.body = body
        self.raw_head = raw_head

    def __iter__(self):  # status, headers, body = response
        return iter((self.status, self.headers, self.body))

    def describe(self):
        return f"{self.raw_head!r} body[:200]={self.body[:200]!r}"


def read_events(port, enough, seconds=10.0, path="/api/events"):
    """GET an SSE stream and read until enough(bytes so far) or `seconds`;
    returns (head, body) as bytes."""
    sock = connect(port, timeout=seconds)
    buf = b""
    try:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        deadline = time.monotonic() + seconds
        while not enough(buf) and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
    finally:
        sock.close()
    head, _, body = buf.partition(b"\r\n\r\n")
    return head, body


def connect(port, host="127.0.0.1", timeout=10.0, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        # Must be set before connect() to limit the advertised window.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect((host, port))
    return s


class _Buffered:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.eof = False

    def fill(self):
        if self.eof:
            return False
        chunk = self.sock.recv(65536)
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_until(self, delim, limit=1 << 20):
        while True:
            i = self.buf.find(delim)
            if i >= 0:
                out = bytes(self.buf[:i + len(delim)])
                del self.buf[:i + len(delim)]
                return out
            if len(self.buf) > limit:
                raise HttpError(f"no {delim!r} within {limit} bytes")
            if not self.fill():
                raise HttpError(f"connection closed before {delim!r}; got {bytes(self.buf[:300])!r}")

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self.fill():
                raise HttpError(f"connection closed after {len(self.buf)} of {n} bytes")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_to_eof(self, limit=16 << 20):
        try:
            while len(self.buf) < limit and self.fill():
                pass
        except (ConnectionResetError, socket.timeout):
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out


def _parse_head(head):
    lines = head.decode("iso-8859-1").split("\r\n")
    status_line = lines[0]
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise HttpError(f"bad status line: {status_line!r}")
    headers = {}
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), (parts[2] if len(parts) > 2 else ""), headers


def _read_response(buf, head_only=False):
    head = buf.read_until(b"\r\n\r\n", limit=64 << 10)
    status, reason, headers = _parse_head(head)
    if head_only or status in (204, 304) or 100 <= status < 200:
        body = b""
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            size_line = buf.read_until(b"\r\n")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                buf.read_until(b"\r\n")  # (no trailers expected)
                break
            body += buf.read_exact(size)
            buf.read_exact(2)
        body = bytes(body)
    elif "content-length" in headers:
        body = buf.read_exact(int(headers["content-length"]))
    else:
        body = buf.read_to_eof()
    return Response(status, reason, headers, body, head)


def raw_request(port, data, timeout=10.0, head_only=False, host="127.0.0.1"):
    """Sends `data` (bytes, sent as-is) on a new connection and reads one
    response. Tolerates the server resetting the connection after it has
    answered (it may stop reading an oversized request)."""
    s = connect(port, host, timeout)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the answer may already be waiting; read it below
        buf = _Buffered(s)
        try:
            return _read_response(buf, head_only=head_only)
        except ConnectionResetError:
            if buf.buf:
                return _read_response_from_bytes(bytes(buf.buf), head_only)
            raise HttpError(f"connection reset without a response to {data[:120]!r}...")
        except socket.timeout:
            raise HttpError(f"no complete response within {timeout}s to {data[:120]!r}...; "
                            f"got {bytes(buf.buf[:300])!r}")
        except HttpError as e:
            raise HttpError(f"{e} (request {data[:120]!r}...)")
    finally:
        s.close()


def _read_response_from_bytes(data, head_only):
    class _Static(_Buffered):
        def fill(self):
            return False
    b = _Static(None)
    b.buf = bytearray(data)
    return _read_response(b, head_only)


def http_get(port, path, timeout=10.0, method="GET", headers=None, host="127.0.0.1"):
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
    if not any(k.lower() == "connection" for k in (headers or {})):
        lines.append("Connection: close")
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return raw_request(port, data, timeout=timeout, head_only=(method == "HEAD"), host=host)


# --------------------------------------------------------------------------
# MJPEG

class MjpegReader:
    """Reads a multipart/x-mixed-replace stream part by part."""

    def __init__(self, port, path="/stream.mjpg", timeout=10.0, rcvbuf=None, host="127.0.0.1"):
        self.sock = connect(port, host, timeout, rcvbuf=rcvbuf)
        self.buf = _Buffered(self.sock)
        req = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
        self.sock.sendall(req)
        head = self.buf.read_until(b"\r\n\r\n", limit=64 << 10)
        self.status, _, self.headers = _parse_head(head)
        self.raw_head = head
        self.content_type = self.headers.get("content-type", "")
        self.boundary = None
        m = re.search(r'boundary="?([^";]+)"?', self.content_type, re.I)
        if m:
            self.boundary = m.group(1).strip()

    def local_port(self):
        return self.sock.getsockname()[1]

    def read_part(self):
        """Returns (headers, body) of the next part; headers lower-case."""
        if self.status != 200 or self.boundary is None:
            raise HttpError(f"not a multipart stream: {self.raw_head!r}")
        want = self.boundary.lstrip("-").encode()
        # Skip to the boundary line (preceded by CRLF from the last part).
        for _ in range(16):
            line = self.buf.read_until(b"\r\n", limit=1 << 16).strip()
            if not line:
                continue
            if line.lstrip(b"-") == want:
                break
            raise HttpError(f"expected boundary --{self.boundary}, got {line[:200]!r}")
        else:
            raise HttpError("no boundary line")
        head = self.buf.read_until(b"\r\n\r\n", limit=1 << 16)
        headers = {}
        for line in head.decode("iso-8859-1").split("\r\n"):
            if line:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
        if "content-length" not in headers:
            raise HttpError(f"part without Content-Length: {head!r}")
        body = self.buf.read_exact(int(headers["content-length"]))
        return headers, body

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class StreamingClient:
    """Reads a stream (an MjpegReader) continuously in a thread until stop()."""

    def __init__(self, port, path="/stream.mjpg"):
        self.reader = MjpegReader(port, path)
        self.parts = 0
        self.error = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        try:
            while not self._stop.is_set():
                self.reader.read_part()
                self.parts += 1
        except Exception as e:  # reported by the test
            if not self._stop.is_set():
                self.error = e

    def stop(self):
        self._stop.set()
        self.reader.close()
        self._thread.join(timeout=5)


def part_timestamp(headers):
    """X-Frame-Timestamp of a part as float seconds (CLOCK_MONOTONIC)."""
    value = headers.get("x-frame-timestamp")
    if value is None:
        raise HttpError(f"part without X-Frame-Timestamp: {headers}")
    if not re.fullmatch(r"\d+\.\d{6}", value):
        raise HttpError(f"X-Frame-Timestamp {value!r} is not seconds with 6 decimals")
    return float(value)


# --------------------------------------------------------------------------
# JPEG

def is_jpeg(data):
    return len(data) >= 4 and data[:2] == b"\xff\xd8" and data.rstrip(b"\x00")[-2:] == b"\xff\xd9"


_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_size(data):
    """(width, height) from the first SOF marker; raises ValueError."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("no SOI marker")
    i = 2
    n = len(data)
    while i < n:
        if data[i] != 0xFF:
            raise ValueError(f"expected marker at offset {i}, got 0x{data[i]:02x}")
        while i < n and data[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            break
        marker = data[i]
        i += 1
        if marker in (0x01,) or 0xD0 <= marker <= 0xD7:
            continue  # no length
        if marker == 0xD9 or marker == 0xDA:
            break  # EOI / SOS before any SOF
        if i + 2 > n:
            break
        length = (data[i] << 8) | data[i + 1]
        if marker in _SOF_MARKERS:
            if i + 7 > n:
                break
            height = (data[i + 3] << 8) | data[i + 4]
            width = (data[i + 5] << 8) | data[i + 6]
            return width, height
        i += length
    raise ValueError("no SOF marker before SOS/EOI")


WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class WsClient:
    """A minimal RFC 6455 client: handshake, masked control frames out,
    unmasked frames in."""

    def __init__(self, port, path="/ws/stream", timeout=10.0):
        self.sock = connect(port, timeout=timeout)
        self.buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                          .encode())
        head = self._read_until(b"\r\n\r\n").decode("iso-8859-1")
        lines = head.split("\r\n")
        self.status = int(lines[0].split(" ")[1])
        self.headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name:
                self.headers[name.strip().lower()] = value.strip()
        self.expected_accept = base64.b64encode(
            hashlib.sha1((key + WS_GUID).encode()).digest()).decode()

    def _fill(self):
        data = self.sock.recv(1 << 16)
        if not data:
            raise ConnectionError("server closed the connection")
        self.buf += data

    def _read_until(self, delim):
        while delim not in self.buf:
            self._fill()
        i = self.buf.index(delim) + len(delim)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_frame(self):
        """(fin, opcode, payload) of the next frame."""
        b0, b1 = self._read_exact(2)
        if b1 & 0x80:
            raise AssertionError("server frames must not be masked")
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self._read_exact(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._read_exact(8))[0]
        return bool(b0 & 0x80), b0 & 0x0F, self._read_exact(n)

    def send_frame(self, opcode, payload=b""):
        assert len(payload) < 126
        mask = os.urandom(4)
        masked = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        self.sock.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def close(self):
        self.sock.close()


# --------------------------------------------------------------------------
# Test support

class ServerTestCase(unittest.TestCase):
    """A TestCase with one server for the whole class (SERVER_ARGS)."""

    SERVER_ARGS = ()
    server = None

    @classmethod
    def setUpClass(cls):
        cls.server = Server(*cls.SERVER_ARGS)
        try:
            cls.server.start()
        except BaseException:
            cls.server.close()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.server is not None:
            cls.server.close()

    def assertServerAlive(self):
        srv = self.server
        self.assertTrue(srv.alive(), f"server exited with {srv.proc.returncode}\n"
                        f"stderr:\n{srv.stderr()}")


def assert_fps_within(tc, fps, what, source_fps=SOURCE_FPS):
    lo, hi = fps_bounds(source_fps)
    tc.assertIsInstance(fps, (int, float), f"{what}: fps is not a number: {fps!r}")
    tc.assertTrue(lo <= fps <= hi, f"{what}: fps {fps:.2f} not within 10% of {source_fps} "
                  f"[{lo:.1f}, {hi:.1f}]")


def wait_for(predicate, timeout, what, interval=0.05):
    """Polls `predicate` until it returns something truthy, which is
    returned; AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} within {timeout} s")


def assert_probe_ok(tc, result, clients=1, source_fps=SOURCE_FPS, p99_ms=None, check_strip=True):
    """Common checks on `probe --json` output."""
    summary = json.dumps({k: v for k, v in result.items() if k != "_stderr"})[:3000]
    if result.get("_stderr"):
        summary += "\nprobe stderr: " + result["_stderr"]
    for key in ("url", "seconds", "clients", "frames", "no_strip", "failed_clients", "fps",
                "latency_ms", "per_client"):
        tc.assertIn(key, result, f"probe JSON lacks {key!r}: {summary}")
    tc.assertEqual(result["clients"], clients, summary)
    tc.assertEqual(result["failed_clients"], 0, f"failed clients: {summary}")
    tc.assertEqual(len(result["per_client"]), clients, summary)
    tc.assertGreater(result["frames"], 0, summary)
    if check_strip:
        tc.assertEqual(result["no_strip"], 0, f"frames without a readable strip: {summary}")
    for i, pc in enumerate(result["per_client"]):
        tc.assertFalse(pc.get("error"), f"client {i} error: {pc.get('error')!r}")
        assert_fps_within(tc, pc["fps"], f"probe client {i}", source_fps)
    for key in ("min", "median", "max"):
        tc.assertIn(key, result["fps"], summary)
    assert_fps_within(tc, result["fps"]["min"], "probe fps.min", source_fps)
    for key in ("count", "p50", "p90", "p99", "max", "mean"):
        tc.assertIn(key, result["latency_ms"], summary)
    if p99_ms is not None:
        tc.assertGreater(result["latency_ms"]["count"], 0, summary)
        tc.assertLess(result["latency_ms"]["p99"], p99_ms, f"p99 latency too high: {summary}")
    tc.assertEqual(result.get("_exit_status", 0), 0, f"probe exit status: {summary}")


def main():
    """unittest.main() that first takes `--binary PATH` out of argv."""
    global BINARY
    argv = list(sys.argv)
    if "--binary" in argv:
        i = argv.index("--binary")
        if i + 1 >= len(argv):
            sys.exit("--binary needs a path")
        BINARY = os.path.abspath(argv[i + 1])
        del argv[i:i + 2]
    if not os.path.exists(BINARY):
        sys.stderr.write(f"freshframe binary not found: {BINARY}\n")
    sys.stderr.write(f"using {BINARY}\n")
    unittest.main(argv=argv, verbosity=2)
