#!/usr/bin/env python3
"""The RTSP server for NVRs and players (issue 18, docs/deploy-rtsp.md)
across hosts made of network namespaces (netns.Hosts) on one bridge:
    ff   10.89.0.1  freshframe run --source pattern --rtsp-port 8554
                        --bind 10.89.0.1 --basic-auth user:pass
    nvr  10.89.0.2  PyAV (libavformat's RTSP client, as ffmpeg, Frigate and
                    go2rtc's ffmpeg inputs use it) in a subprocess
What is checked (generous bounds: timing belongs to bench/scaleout):
- rtsp://user:pass@10.89.0.1:8554/stream over RTP/TCP (interleaved) and
  over RTP/UDP: the player decodes frames at about the source's rate, the
  timecode strip (docs/timecode.md) reads on every decoded frame, and the
  picture is the source's size;
- two players at once (TCP and UDP) share one media: /api/stats counts two
  RTSP clients and one subscriber to the stream's one H.264 encode;
- no, wrong, or Bearer-only credentials get 401 with a Basic challenge
  (PyAV gives up with 401); the token is accepted as the Basic password;
- the server listens on --bind's address only;
- with --config of two streams, /streams/NAME serves each stream (told
  apart by their sizes) and /stream the first.
Needs root (namespaces) and PyAV; skipped with a message otherwise.
Bad --rtsp-port values and a port in use are in test_outputs.py (loopback).
"""
import base64
import json
import os
import socket
import sys
import tempfile
import textwrap
import threading
import time
import unittest
import urllib.request

import ffharness as ff
import netns

try:
    import av  # noqa: F401 (the player subprocess imports it)
except ImportError:  # pragma: no cover - Debian's python3-av is a test dependency
    av = None

PORT = 8080
RTSP_PORT = 8554
USER, PASSWORD = "user", "pass"
TOKEN = "rtsp-test-token-0123456789"
SIZE = (640, 480)

# The player, run inside host nvr: decodes `count` frames (or for `seconds`)
# of URL over TRANSPORT, reads the strip of each, prints one JSON line.
PLAYER = textwrap.dedent("""
    import json, sys, time
    import av
    import jpeg_strip
    url, transport, count, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    def mono_us():
        return int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6)
    out = {"frames": 0, "strips": 0, "latency_ms": [], "sizes": []}
    try:
        opened = time.monotonic()
        container = av.open(url, options={"rtsp_transport": transport}, timeout=10)
        deadline = time.monotonic() + seconds
        for frame in container.decode(video=0):
            if out["frames"] == 0:
                out["first_frame_s"] = time.monotonic() - opened
            out["frames"] += 1
            size = [frame.width, frame.height]
            if size not in out["sizes"]:
                out["sizes"].append(size)
            read = jpeg_strip.read_strip_gray(frame.to_ndarray(format="gray"), mono_us() + 1_000_000)
            if read is not None:
                out["strips"] += 1
                out["latency_ms"].append((mono_us() - read[0]) / 1000.0)
            out.setdefault("arrivals_s", []).append(time.monotonic())
            if out["frames"] >= count or time.monotonic() > deadline:
                break
        container.close()
    except Exception as e:
        out["error"] = f"{type(e).__name__}: {e}"
    print(json.dumps(out))
""")


def skip_reason():
    reason = netns.skip_reason()
    if reason:
        return reason
    if av is None:
        return "PyAV (Debian python3-av) is not installed: skipped"
    return None


SKIP = skip_reason()


def start_freshframe(hosts, args, port=PORT):
    """`freshframe run ARGS` inside host ff; the process once it serves."""
    proc = netns.start_freshframe(hosts, "ff", [ff.BINARY, "run"] + list(args))
    netns.wait_port(hosts, "nvr", hosts.addr("ff"), port)
    return proc


def play(hosts, url, transport="tcp", count=90, seconds=20.0):
    """The player's JSON result, run inside host nvr."""
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.abspath(__file__)),
               PYTHONDONTWRITEBYTECODE="1")
    cp = hosts.run("nvr", [sys.executable, "-c", PLAYER, url, transport, str(count),
                           str(seconds)], timeout=seconds + 40, capture_output=True, text=True,
                   env=env)
    lines = [line for line in cp.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise AssertionError(f"player printed nothing (exit {cp.returncode}):\n{cp.stderr[-3000:]}")
    return json.loads(lines[-1])


def rtsp_status(hosts, url, headers=""):
    """The status line of a DESCRIBE of `url` from host nvr (raw socket)."""
    host_port = url.split("/")[2]
    host, port = host_port.rsplit(":", 1)
    with hosts.inside("nvr"):
        sock = socket.create_connection((host, int(port)), timeout=10)
    with sock:
        sock.sendall(f"DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n{headers}\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    head = data.decode(errors="replace").split("\r\n\r\n")[0]
    return head.split("\r\n")[0], head


def basic(text):
    return "Authorization: Basic " + base64.b64encode(text.encode()).decode() + "\r\n"


def api_stats(hosts, port=PORT):
    request = urllib.request.Request(
        f"http://{hosts.addr('ff')}:{port}/api/stats",
        headers={"Authorization": "Bearer " + TOKEN})
    with hosts.inside("nvr"):
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())


def assert_plays(test, result, what, count, size=SIZE):
    test.assertNotIn("error", result, f"{what}: {result}")
    test.assertGreaterEqual(result["frames"], count, f"{what}: {result}")
    # The strip reads on every decoded frame: nothing was decoded from a
    # broken reference.
    test.assertEqual(result["strips"], result["frames"], f"{what}: {result}")
    test.assertEqual(result["sizes"], [list(size)], what)
    # The player's first second is libavformat probing the stream (frames
    # pile up, then decode in a burst): rate and freshness are taken over
    # the second half.
    half = len(result["arrivals_s"]) // 2
    arrivals = result["arrivals_s"][half:]
    fps = (len(arrivals) - 1) / max(1e-3, arrivals[-1] - arrivals[0])
    latencies = sorted(result["latency_ms"][half:])
    p50 = latencies[len(latencies) // 2]
    print(f"\n{what}: {result['frames']} frames, first after {result['first_frame_s']:.2f} s; "
          f"second half: {fps:.1f} fps, capture->decoded p50 {p50:.0f} ms, "
          f"max {latencies[-1]:.0f} ms", file=sys.stderr)
    if len(arrivals) >= 30:
        # Pattern at 30 fps; generous for a loaded 2-core machine.
        test.assertGreater(fps, 15.0, f"{what}: {result}")
    test.assertLess(p50, 2000.0, f"{what}: frames are fresh, not a backlog")


@unittest.skipIf(SKIP, SKIP or "")
class RtspAcrossHostsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.hosts = netns.Hosts(["ff", "nvr"])
        cls.hosts.__enter__()
        try:
            cls.addr = cls.hosts.addr("ff")
            cls.ff = start_freshframe(cls.hosts, [
                "--bind", cls.addr, "--port", str(PORT), "--source", "pattern:%dx%d@30" % SIZE,
                "--detector", "none", "--rtsp-port", str(RTSP_PORT),
                "--basic-auth", f"{USER}:{PASSWORD}", "--token", TOKEN])
            netns.wait_port(cls.hosts, "nvr", cls.addr, RTSP_PORT)
        except BaseException:
            cls.hosts.close()
            raise
        cls.url = f"rtsp://{USER}:{PASSWORD}@{cls.addr}:{RTSP_PORT}/stream"
        cls.bare_url = f"rtsp://{cls.addr}:{RTSP_PORT}/stream"

    @classmethod
    def tearDownClass(cls):
        netns.stop(cls.ff)
        cls.hosts.close()

    def test_tcp_interleaved_decodes_with_the_strip(self):
        assert_plays(self, play(self.hosts, self.url, "tcp", count=90), "RTSP over TCP", 90)

    def test_udp_decodes_with_the_strip(self):
        assert_plays(self, play(self.hosts, self.url, "udp", count=90), "RTSP over UDP", 90)

    def test_token_as_the_password_with_any_user(self):
        url = f"rtsp://nvr:{TOKEN}@{self.addr}:{RTSP_PORT}/stream"
        assert_plays(self, play(self.hosts, url, "tcp", count=30), "RTSP with the token", 30)

    def test_wrong_credentials_get_401(self):
        for headers in ["", basic("user:wrong"), basic("nobody:pass"),
                        "Authorization: Bearer " + TOKEN + "\r\n"]:
            status, head = rtsp_status(self.hosts, self.bare_url, headers)
            self.assertEqual(status, "RTSP/1.0 401 Unauthorized", headers)
            self.assertIn('WWW-Authenticate: Basic realm="freshframe"', head)
        status, _ = rtsp_status(self.hosts, self.bare_url, basic(f"{USER}:{PASSWORD}"))
        self.assertEqual(status, "RTSP/1.0 200 OK")
        result = play(self.hosts, f"rtsp://{USER}:wrong@{self.addr}:{RTSP_PORT}/stream",
                      "tcp", count=5, seconds=10)
        self.assertIn("error", result)
        self.assertIn("401", result["error"])
        self.assertEqual(result["frames"], 0)

    def test_two_players_share_the_one_encode(self):
        # The HTTP side's own subscription(s), present without any viewer.
        baseline = api_stats(self.hosts)["h264"]["subscribers"]
        results = []

        def player(transport):
            results.append(play(self.hosts, self.url, transport, count=150, seconds=15))

        threads = [threading.Thread(target=player, args=(t,)) for t in ("tcp", "udp")]
        for thread in threads:
            thread.start()
        # While both play: two RTSP clients, one more subscriber to the
        # encoder (the /stream mount's feed; the encode is the stream's one).
        seen = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            stats = api_stats(self.hosts)
            if stats["rtsp"]["clients"] == 2:
                seen = stats
                break
            time.sleep(0.2)
        for thread in threads:
            thread.join()
        self.assertIsNotNone(seen, "never two RTSP clients at once")
        self.assertEqual(seen["h264"]["subscribers"], baseline + 1, seen["h264"])
        self.assertTrue(seen["h264"]["encoding"], seen["h264"])
        for result, what in zip(results, ("first", "second")):
            assert_plays(self, result, f"shared player ({what})", 100)

    def test_listens_on_the_bind_address_only(self):
        # Inside host ff, loopback has nothing on the RTSP port.
        with self.hosts.inside("ff"):
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", RTSP_PORT), timeout=5).close()


@unittest.skipIf(SKIP, SKIP or "")
class RtspStreamsTest(unittest.TestCase):

    def test_each_stream_at_its_path(self):
        with netns.Hosts(["ff", "nvr"]) as hosts, tempfile.TemporaryDirectory() as tmp:
            addr = hosts.addr("ff")
            config = os.path.join(tmp, "streams.toml")
            with open(config, "w") as f:
                f.write(textwrap.dedent(f"""
                    [server]
                    bind = "{addr}"
                    port = {PORT}
                    rtsp-port = {RTSP_PORT}
                    basic-auth = "{USER}:{PASSWORD}"
                    [defaults]
                    detector = "none"
                    [streams.front]
                    source = "pattern:640x480@30"
                    [streams.yard]
                    source = "pattern:480x360@30"
                    """))
            proc = start_freshframe(hosts, ["--config", config])
            try:
                netns.wait_port(hosts, "nvr", addr, RTSP_PORT)
                base = f"rtsp://{USER}:{PASSWORD}@{addr}:{RTSP_PORT}"
                assert_plays(self, play(hosts, base + "/streams/yard", "tcp", count=60),
                             "/streams/yard", 60, size=(480, 360))
                assert_plays(self, play(hosts, base + "/streams/front", "tcp", count=60),
                             "/streams/front", 60, size=(640, 480))
                assert_plays(self, play(hosts, base + "/stream", "tcp", count=60),
                             "/stream (the first)", 60, size=(640, 480))
                status, _ = rtsp_status(hosts, f"rtsp://{addr}:{RTSP_PORT}/streams/nosuch",
                                        basic(f"{USER}:{PASSWORD}"))
                self.assertEqual(status, "RTSP/1.0 404 Not Found")
            finally:
                netns.stop(proc)


if __name__ == "__main__":
    ff.main()
