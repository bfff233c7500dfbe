"""Outputs to other engines (issue 18), through the binary, on loopback:

- --rtp-out, --rtmp-out and --rtsp-port refuse bad values with one line and
  exit 2 (an RTMP stream key is never echoed); so do their config keys, with
  FILE:LINE:COL; they need H.264 (--h264-encoder none is an error);
- an engine that is not there at start is a warning and a retry, never an
  exit, and /api/stats says so per output ("outputs"), RTMP's key redacted;
- RTP really leaves for HOST:PORT (RFC 6184 packets of payload type 96,
  marker bits, Sender Reports on PORT+1) and a PLI coming back on the RTCP
  port is an IDR request, however many come (the encoder's rate limit);
- the RTSP server answers on --rtsp-port with the HTTP credentials: 401
  without them, and a port in use is exit 1 with a message.

The multi-host tests with the real engines (Janus, nginx-rtmp, RTSP players)
are test_janus.py, test_hls.py, test_rtsp.py and test_hosts.py.
"""

import base64
import json
import os
import signal
import socket
import struct
import tempfile
import time
import unittest

import ffharness as ff


def free_udp_pair():
    """An even UDP port P with P and P+1 free on 127.0.0.1, both bound."""
    for _ in range(50):
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp.bind(("127.0.0.1", 0))
        port = rtp.getsockname()[1]
        if port % 2 == 1 or port >= 65534:
            rtp.close()
            continue
        rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            rtcp.bind(("127.0.0.1", port + 1))
        except OSError:
            rtp.close()
            rtcp.close()
            continue
        return rtp, rtcp, port
    raise AssertionError("no free UDP port pair")


def outputs(server, kind):
    return [o for o in server.stats().get("outputs", []) if o.get("kind") == kind]


def nonempty_lines(text):
    return [line for line in text.splitlines() if line.strip()]


BAD_ARGS = [
    ["--rtp-out", "nohostport"],
    ["--rtp-out", "127.0.0.1:0"],
    ["--rtp-out", "127.0.0.1:65535"],
    ["--rtp-out", "127.0.0.1:http"],
    ["--rtp-out", "[::1:5004"],
    ["--rtmp-out", "http://127.0.0.1/live/key"],
    ["--rtmp-out", "rtmp://127.0.0.1/live"],
    ["--rtmp-out", "rtmp://127.0.0.1:99999/live/key"],
    ["--rtmp-out", "rtmp://127.0.0.1/live/a key"],
    ["--rtsp-port", "0"],
    ["--rtsp-port", "70000"],
    ["--rtsp-port", "rtsp"],
]


class OutputFlagsTest(unittest.TestCase):

    def test_bad_values_exit_2_with_one_line(self):
        for bad in BAD_ARGS:
            with self.subTest(args=bad):
                cp = ff.run_cli(["run", "--port", "0"] + bad, timeout=15)
                lines = nonempty_lines(cp.stderr)
                self.assertEqual(cp.returncode, 2, f"{bad}: exit {cp.returncode}: {cp.stderr!r}")
                self.assertEqual(len(lines), 1, f"{bad}: {cp.stderr!r}")
                self.assertIn(bad[0], cp.stderr)
                self.assertNotIn("serving on", cp.stdout)

    def test_rtmp_key_is_never_echoed(self):
        cp = ff.run_cli(["run", "--port", "0", "--rtmp-out", "rtmp://127.0.0.1:99999/live/s3cretkey"],
                        timeout=15)
        self.assertEqual(cp.returncode, 2, cp.stderr)
        self.assertNotIn("s3cretkey", cp.stderr)

    def test_outputs_need_h264(self):
        cp = ff.run_cli(["run", "--port", "0", "--h264-encoder", "none", "--rtp-out",
                         "127.0.0.1:5004"], timeout=15)
        self.assertNotEqual(cp.returncode, 0, cp.stderr)
        self.assertIn("--h264-encoder none", cp.stderr)

    def test_config_keys(self):
        with tempfile.TemporaryDirectory() as tmp:
            good = os.path.join(tmp, "good.toml")
            with open(good, "w") as f:
                f.write('[server]\nport = 0\nrtsp-port = 8554\n'
                        '[streams.cam]\nsource = "pattern"\n'
                        'rtp-out = ["127.0.0.1:5004", "127.0.0.1:5006"]\n'
                        'rtmp-out = "rtmp://127.0.0.1/live/key"\n')
            cp = ff.run_cli(["check-config", good], timeout=15)
            self.assertEqual(cp.returncode, 0, cp.stderr)
            bad = os.path.join(tmp, "bad.toml")
            with open(bad, "w") as f:
                f.write('[streams.cam]\nsource = "pattern"\nrtp-out = "127.0.0.1:0"\n')
            cp = ff.run_cli(["check-config", bad], timeout=15)
            self.assertEqual(cp.returncode, 2, cp.stderr)
            self.assertTrue(cp.stderr.startswith(f"{bad}:3:"), cp.stderr)
            self.assertIn("streams.cam.rtp-out", cp.stderr)


class EngineOutputsTest(unittest.TestCase):

    def test_absent_engines_are_retried_not_fatal(self):
        # Nothing listens on these: RTP is refused by ICMP, RTMP by TCP RST.
        rtp, rtcp, port = free_udp_pair()
        rtp.close()
        rtcp.close()
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", 0))
        closed_tcp = blocker.getsockname()[1]
        blocker.close()
        with ff.Server("--size", "320x240", "--detector", "none", "--rtp-out",
                       f"127.0.0.1:{port}", "--rtmp-out",
                       f"rtmp://127.0.0.1:{closed_tcp}/live/s3cretkey") as server:
            def retrying():
                rtmp = outputs(server, "rtmp")
                return rtmp and rtmp[0]["state"] == "retrying" and rtmp[0].get("error")
            ff.wait_for(retrying, 20, "the RTMP output retrying")
            stats = server.stats()
            text = json.dumps(stats)
            self.assertNotIn("s3cretkey", text)
            rtmp = outputs(server, "rtmp")[0]
            self.assertIn("***", rtmp["target"])
            rtp_out = outputs(server, "rtp")[0]
            self.assertEqual(rtp_out["target"], f"127.0.0.1:{port}")
            self.assertIn(rtp_out["state"], ("connecting", "connected", "retrying"))
            status, _, metrics = server.get("/metrics")
            self.assertEqual(status, 200)
            metrics = metrics.decode()
            self.assertIn(f'freshframe_output_connected{{stream="default",kind="rtp",'
                          f'target="127.0.0.1:{port}"}}', metrics)
            self.assertIn('kind="rtmp",target="rtmp://127.0.0.1:', metrics)
            self.assertNotIn("s3cretkey", metrics)
            # The HTTP viewers are not affected.
            status, _, body = server.get("/snapshot.jpg")
            self.assertEqual(status, 200)
            self.assertTrue(ff.is_jpeg(body))
            self.assertTrue(server.alive())
            self.assertNotIn("s3cretkey", server.stderr())

    def test_rtp_leaves_and_pli_asks_for_an_idr_within_the_rate_limit(self):
        rtp, rtcp, port = free_udp_pair()
        self.addCleanup(rtp.close)
        self.addCleanup(rtcp.close)
        rtp.settimeout(10)
        rtcp.settimeout(10)
        with ff.Server("--size", "320x240", "--detector", "none", "--gop", "0", "--rtp-out",
                       f"127.0.0.1:{port}") as server:
            markers = 0
            sender = None
            for _ in range(300):
                packet, sender = rtp.recvfrom(2048)
                self.assertGreaterEqual(len(packet), 12)
                self.assertEqual(packet[0] >> 6, 2, "RTP version 2")
                self.assertEqual(packet[1] & 0x7F, 96, "payload type 96")
                self.assertLessEqual(len(packet), 1200)
                markers += packet[1] >> 7
                if markers >= 20:
                    break
            self.assertGreaterEqual(markers, 20, "one marker per access unit")
            ssrc = struct.unpack("!I", packet[8:12])[0]
            # A Sender Report on PORT+1, from freshframe's RTCP port.
            report, rtcp_from = rtcp.recvfrom(2048)
            self.assertEqual(report[1], 200, "RTCP SR")
            # A flood of PLIs (Janus relays viewers' PLIs) asks for IDRs, and
            # the encoder forces no more than its rate limit allows.
            before = server.stats()["h264"]["idr_forced"].get("pli", 0)
            pli = struct.pack("!BBHII", 0x81, 206, 2, 1, ssrc)
            start = time.monotonic()
            while time.monotonic() - start < 2.0:
                rtcp.sendto(pli, rtcp_from)
                time.sleep(0.002)
            took = time.monotonic() - start
            time.sleep(0.3)
            stats = server.stats()
            rtp_out = outputs(server, "rtp")[0]
            self.assertGreater(rtp_out["rtcp"]["pli_received"], 100)
            forced = stats["h264"]["idr_forced"].get("pli", 0) - before
            self.assertGreaterEqual(forced, 1)
            # At most one IDR per 500 ms (h264::KeyframeRequests), plus one.
            self.assertLessEqual(forced, int(took / 0.5) + 2, stats["h264"])
            self.assertEqual(rtp_out["state"], "connected")


class RtspServerTest(unittest.TestCase):

    def describe(self, port, authorization=None, path="/stream", timeout=10):
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            request = (f"DESCRIBE rtsp://127.0.0.1:{port}{path} RTSP/1.0\r\nCSeq: 1\r\n"
                       "Accept: application/sdp\r\n")
            if authorization:
                request += f"Authorization: {authorization}\r\n"
            sock.sendall((request + "\r\n").encode())
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        return data.split(b"\r\n", 1)[0].decode()

    def describe_soon(self, port, path):
        """describe() that answers "" for a connection the server dropped or
        left unanswered (one a stopping RTSP server accepted while a reload
        replaced it): callers poll."""
        try:
            return self.describe(port, path=path, timeout=2)
        except OSError:
            return ""

    def test_credentials_and_port_in_use(self):
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", 0))
        port = blocker.getsockname()[1]
        blocker.listen()
        try:
            cp = ff.run_cli(["run", "--port", "0", "--rtsp-port", str(port)], timeout=20)
            self.assertEqual(cp.returncode, 1, cp.stderr)
            self.assertIn("rtsp", cp.stderr)
        finally:
            blocker.close()
        with ff.Server("--size", "320x240", "--detector", "none", "--basic-auth", "user:pass",
                       "--rtsp-port", str(port)):
            self.assertIn("401", self.describe(port))
            wrong = "Basic " + base64.b64encode(b"user:wrong").decode()
            self.assertIn("401", self.describe(port, wrong))
            right = "Basic " + base64.b64encode(b"user:pass").decode()
            self.assertIn("200", self.describe(port, right))

    def test_streams_of_a_config_and_a_reload(self):
        """/stream and /streams/NAME for every stream; a SIGHUP that adds a
        stream mounts it, one that removes a stream unmounts it (the RTSP
        server is rebuilt on the new streams' encoders)."""
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        rtsp_port = probe.getsockname()[1]
        probe.close()
        with tempfile.TemporaryDirectory() as tmp:
            config = os.path.join(tmp, "c.toml")
            head = (f"[server]\nport = 0\nrtsp-port = {rtsp_port}\n\n"
                    "[defaults]\ndetector = \"none\"\n\n")
            one = '[streams.one]\nsource = "pattern:320x240@15"\n'
            two = '[streams.two]\nsource = "pattern:320x240@15"\n'
            with open(config, "w") as f:
                f.write(head + one)
            server = ff.Server()
            server.args = ["run", "--config", config]
            with server:
                ff.wait_for(lambda: "200" in self.describe_soon(rtsp_port, "/stream"), 15,
                            "RTSP /stream")
                self.assertIn("200", self.describe(rtsp_port, path="/streams/one"))
                self.assertIn("404", self.describe(rtsp_port, path="/streams/two"))
                self.assertEqual(server.stats()["rtsp"]["port"], rtsp_port)
                with open(config, "w") as f:
                    f.write(head + one + two)
                os.kill(server.proc.pid, signal.SIGHUP)
                ff.wait_for(lambda: "200" in self.describe_soon(rtsp_port, "/streams/two"), 15,
                            "RTSP /streams/two after the reload")
                with open(config, "w") as f:
                    f.write(head + two)
                os.kill(server.proc.pid, signal.SIGHUP)
                ff.wait_for(lambda: "404" in self.describe_soon(rtsp_port, "/streams/one"), 15,
                            "RTSP /streams/one gone after the reload")
                # The first stream is now "two", at /stream.
                self.assertIn("200", self.describe(rtsp_port))
                self.assertTrue(server.alive())


if __name__ == "__main__":
    ff.main()
