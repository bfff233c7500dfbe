#!/usr/bin/env python3
"""Capture, inference and serving on different hosts (issue 18), with hosts
as network namespaces (netns.Hosts) on one bridge:

    cam   10.89.0.1  freshframe run --detector none --source pattern --token-file F
    infer 10.89.0.2  freshframe run --source http://10.89.0.1:8080/stream.mjpg
                                    --source-token-file F --detector motion
    view  10.89.0.3  freshframe probe http://10.89.0.2:8080/ --json

What is checked (generous bounds: timing belongs to bench/scaleout):
- the viewer reads the CAPTURE host's timecode through the inference host
  (the strip is carried through), at the source's rate;
- the token crosses as a header only: the capture host lists the inference
  host's stream without a query, nothing shows the token, no token = 401;
- only JPEGs cross the link: bytes per frame on the inference host's link
  are far below a raw frame;
- newest-only across the hop: with the link into the inference host
  throttled below the stream's bit rate, the frames the viewer sees stay
  fresh and their age does not grow over 10 s (the capture host skips
  frames for the slow socket instead of queueing them);
- restarts: the inference host killed, the capture host keeps serving, and
  a new inference host picks up by itself; the capture host killed, the
  inference host shows "reconnecting" in /api/stats, then "live" again once
  a new capture host is up, and the viewer sees fresh frames again.

Needs root (namespaces); skipped with a message otherwise.
"""
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import ffharness as ff
import netns

PORT = 8080
SIZE = (640, 480)
RAW_FRAME_BYTES = SIZE[0] * SIZE[1] * 3
SKIP = netns.skip_reason()
read_all, text, wait_for = netns.read_all, netns.text, netns.wait_for


def start_freshframe(hosts, name, args):
    """`freshframe run ARGS --bind ADDR --port PORT` inside host `name`,
    once it serves."""
    return netns.start_freshframe(hosts, name, [ff.BINARY, "run", "--bind", hosts.addr(name),
                                                "--port", str(PORT)] + list(args))


def get(hosts, from_host, to_host, path, headers=None, timeout=10.0):
    """GET http://to_host:PORT/path from inside `from_host`."""
    with hosts.inside(from_host):
        return ff.http_get(PORT, path, timeout=timeout, headers=headers, host=hosts.addr(to_host))


def stats(hosts, from_host, to_host, token=None):
    headers = {"Authorization": "Bearer " + token} if token else None
    response = get(hosts, from_host, to_host, "/api/stats", headers)
    if response.status != 200:
        raise AssertionError(f"/api/stats on {to_host} -> {response.status}")
    return json.loads(response.body.decode("utf-8")), response.body


def probe(hosts, viewer, server, seconds):
    """`freshframe probe http://server:PORT/ --json` run inside `viewer`."""
    args = ff.probe_args(f"http://{hosts.addr(server)}:{PORT}/", seconds=seconds)
    cp = hosts.run(viewer, [ff.BINARY] + args, timeout=seconds + 30)
    return ff._parse_probe(args, cp.returncode, cp.stdout, cp.stderr)


def port_open(hosts, from_host, to_host):
    import socket
    try:
        with hosts.inside(from_host):
            sock = socket.create_connection((hosts.addr(to_host), PORT), timeout=1.0)
        sock.close()
        return True
    except OSError:
        return False


@unittest.skipIf(SKIP, SKIP)
class HostsTest(unittest.TestCase):

    def setUp(self):
        self.token = "hop-" + secrets.token_hex(12)
        fd, self.token_file = tempfile.mkstemp(suffix=".token")
        with os.fdopen(fd, "w") as f:
            f.write(self.token + "\n")
        self.hosts = netns.Hosts(["cam", "infer", "view"]).__enter__()
        self.cam = None
        self.infer = None
        self.started = []

    def tearDown(self):
        self.hosts.close()
        for proc in self.started:
            proc.out.close()
            proc.err.close()
        os.unlink(self.token_file)

    def start_cam(self):
        self.cam = start_freshframe(self.hosts, "cam", [
            "--detector", "none", "--source", "pattern:%dx%d@30" % SIZE,
            "--token-file", self.token_file])
        self.started.append(self.cam)
        return self.cam

    def start_infer(self, detector="motion"):
        source = f"http://{self.hosts.addr('cam')}:{PORT}/stream.mjpg"
        self.infer = start_freshframe(self.hosts, "infer", [
            "--source", source, "--source-token-file", self.token_file, "--detector", detector])
        self.started.append(self.infer)
        return self.infer

    def assert_fresh(self, result, what, fps_min=20.0, p50_max_ms=500.0):
        latency = result.get("latency_ms") or {}
        self.assertEqual(result.get("failed_clients", 0), 0, f"{what}: {result}")
        self.assertGreaterEqual(result["fps"]["median"], fps_min, f"{what}: {result}")
        self.assertGreater(latency.get("count", 0), 0, f"{what}: no strip read: {result}")
        self.assertLess(latency["p50"], p50_max_ms, f"{what}: {result}")
        self.assertGreater(latency["p50"], 0, f"{what}: capture host's clock? {result}")

    def test_capture_inference_viewer(self):
        self.start_cam()
        self.start_infer("faces")
        # The source reconnects by itself until the capture host answers.
        wait_for("inference host's source live",
                 lambda: stats(self.hosts, "view", "infer")[0]["source"]["state"] == "live", 20)
        before = self.hosts.links("infer")
        t0 = time.monotonic()
        result = probe(self.hosts, "view", "infer", seconds=5)
        elapsed = time.monotonic() - t0
        after = self.hosts.links("infer")
        # The strip the viewer reads is the capture host's: the probe's latency
        # is capture host -> inference host -> viewer.
        print(f"\n  capture->infer->viewer latency ms {result['latency_ms']}, fps {result['fps']}",
              file=sys.stderr)
        self.assert_fresh(result, "viewer of the inference host")

        # Only JPEGs cross: what came into the inference host per frame of
        # the source (30 fps) is a JPEG's size, not a raw frame's.
        rx_per_frame = (after["rx"] - before["rx"]) / (elapsed * 30.0)
        print(f"  into the inference host: {rx_per_frame:.0f} bytes per source frame "
              f"(raw BGR {RAW_FRAME_BYTES})", file=sys.stderr)
        self.assertGreater(rx_per_frame, 2000, "nothing crossed the link?")
        self.assertLess(rx_per_frame, RAW_FRAME_BYTES / 4,
                        f"{rx_per_frame:.0f} bytes per frame into the inference host")

        # Credentials: the token went as a header; the capture host lists the
        # inference host's stream without a query and shows no token anywhere.
        cam_stats, raw = stats(self.hosts, "view", "cam", self.token)
        peers = [c for c in cam_stats["clients"] if c["peer"].startswith(self.hosts.addr("infer"))]
        self.assertEqual(len(peers), 1, cam_stats["clients"])
        self.assertEqual(peers[0]["path"], "/stream.mjpg")
        self.assertNotIn(self.token.encode(), raw)
        infer_stats, raw = stats(self.hosts, "view", "infer")
        self.assertNotIn(self.token.encode(), raw)
        self.assertNotIn(self.token, infer_stats["source"]["spec"])
        self.assertEqual(get(self.hosts, "view", "cam", "/stream.mjpg").status, 401)
        for proc in (self.cam, self.infer):
            self.assertNotIn(self.token, text(proc.err))

    def test_slow_link_gets_the_newest_frames(self):
        self.start_cam()
        self.start_infer("motion")
        wait_for("inference host's source live",
                 lambda: stats(self.hosts, "view", "infer")[0]["source"]["state"] == "live", 20)
        # The link into the inference host (the bridge port toward it) at
        # 3 Mbit/s: below the stream's bit rate (640x480 q85 at 30 fps is
        # ~14 Mbit/s), so frames must be dropped somewhere. netem is missing
        # on this kernel; tbf works.
        port_toward_infer = f"p{self.hosts.names.index('infer')}"
        rc = subprocess.run(["ip", "netns", "exec", self.hosts.hub, "tc", "qdisc", "add", "dev",
                             port_toward_infer, "root", "tbf", "rate", "3mbit", "burst", "32kbit",
                             "latency", "50ms"], capture_output=True, text=True, timeout=10)
        self.assertEqual(rc.returncode, 0, rc.stderr)
        time.sleep(1.0)
        early = probe(self.hosts, "view", "infer", seconds=3)
        time.sleep(4.0)
        late = probe(self.hosts, "view", "infer", seconds=3)
        # Fewer frames arrive (the link carries a few per second), but each is
        # recent, and ten seconds later no older: no backlog builds up.
        print(f"\n  3 Mbit/s into infer: early {early['latency_ms']} fps {early['fps']}\n"
              f"  late {late['latency_ms']} fps {late['fps']}", file=sys.stderr)
        for name, result in (("early", early), ("late", late)):
            self.assertGreater(result["latency_ms"].get("count", 0), 3, f"{name}: {result}")
            self.assertLess(result["latency_ms"]["p50"], 1000.0, f"{name}: {result}")
        self.assertLess(late["latency_ms"]["p50"], early["latency_ms"]["p50"] + 300.0,
                        f"frame age grew: early {early['latency_ms']} late {late['latency_ms']}")
        # The capture host skipped frames for the slow socket rather than
        # queueing them.
        cam_stats, _ = stats(self.hosts, "view", "cam", self.token)
        peers = [c for c in cam_stats["clients"] if c["peer"].startswith(self.hosts.addr("infer"))]
        self.assertEqual(len(peers), 1, cam_stats["clients"])
        print(f"  capture host's figures for the inference host: {peers[0]}", file=sys.stderr)
        self.assertGreater(peers[0]["skipped"], 0, peers[0])

    def test_restarts(self):
        self.start_cam()
        self.start_infer("motion")
        wait_for("inference host's source live",
                 lambda: stats(self.hosts, "view", "infer")[0]["source"]["state"] == "live", 20)

        # Inference host dies: the capture host goes on serving.
        os.kill(self.infer.pid, signal.SIGKILL)
        self.infer.wait(10)
        self.assertEqual(get(self.hosts, "view", "cam", "/healthz").body, b"ok\n")
        snapshot = get(self.hosts, "view", "cam", "/snapshot.jpg",
                       {"Authorization": "Bearer " + self.token})
        self.assertEqual(snapshot.status, 200)
        self.assertTrue(ff.is_jpeg(snapshot.body))
        infer_addr = self.hosts.addr("infer") + ":"
        wait_for("the dead inference host's client gone from the capture host",
                 lambda: not any(c["peer"].startswith(infer_addr) for c in stats(
                     self.hosts, "view", "cam", self.token)[0]["clients"]), 10)
        # A new inference host picks the stream up by itself.
        self.start_infer("motion")
        self.assert_fresh(probe(self.hosts, "view", "infer", seconds=3), "after infer restart")

        # Capture host dies: the inference host says so and keeps trying.
        os.kill(self.cam.pid, signal.SIGKILL)
        self.cam.wait(10)
        wait_for("inference host's source reconnecting",
                 lambda: stats(self.hosts, "view", "infer")[0]["source"]["state"] == "reconnecting",
                 15)
        self.assertEqual(get(self.hosts, "view", "infer", "/healthz").status, 200)
        # A new capture host: the inference host reconnects by itself.
        self.start_cam()
        source = wait_for("inference host's source live again",
                          lambda: (lambda s: s if s["state"] == "live" else None)(
                              stats(self.hosts, "view", "infer")[0]["source"]), 30)
        self.assertGreaterEqual(source["reconnects"], 1, source)
        self.assert_fresh(probe(self.hosts, "view", "infer", seconds=3), "after cam restart")

    def test_capture_host_clock_behind_or_ahead(self):
        """Real hosts do not share CLOCK_MONOTONIC, the strip's clock. A
        capture host whose clock is 60 s behind or ahead of the inference
        host's (a time namespace: `unshare --time --monotonic=N`) must not
        make the inference host believe its frames are 60 s old (latency
        figures; detections older than --detections-max-age are never drawn),
        nor lose the first hop from its figures. The inference host learns
        the capture host's clock from X-Server-Timestamp
        (capture/remote_clock.h), translates the stamps and rewrites the
        strip in its own clock, so a viewer on a third host (whose clock is
        the inference host's here) reads a plausible capture-to-viewer
        latency. Before that fix, behind: every frame was 60 s old; ahead:
        the strip was ignored and the viewer read no latency at all."""
        for shift in (-60, 60):
            with self.subTest(monotonic=shift):
                argv = ["unshare", "--fork", "--kill-child", "--time", f"--monotonic={shift}", ff.BINARY, "run", "--bind",
                        self.hosts.addr("cam"), "--port", str(PORT), "--detector", "none",
                        "--source", "pattern:%dx%d@30" % SIZE]
                out = tempfile.TemporaryFile()
                self.cam = self.hosts.popen("cam", argv, stdout=out, stderr=subprocess.DEVNULL)
                self.cam.out, self.cam.err = out, tempfile.TemporaryFile()
                self.started.append(self.cam)
                netns.wait_port(self.hosts, "view", self.hosts.addr("cam"), PORT)
                self.start_infer("motion")
                wait_for("inference host's source live",
                         lambda: stats(self.hosts, "view", "infer")[0]["source"]["state"]
                         == "live", 20)
                result = probe(self.hosts, "view", "infer", seconds=4)
                self.assert_fresh(result, f"capture host's clock {shift:+d} s")
                send = stats(self.hosts, "view", "infer")[0]["stages"]["send"]["latency_ms"]
                self.assertLess(send["p50"], 1000.0, f"the inference host's capture-to-send: {send}")
                for proc in (self.infer, self.cam):
                    netns.stop(proc)
                # unshare's child dies just after unshare: wait until the
                # port is free for the next capture host.
                wait_for("the capture host's port closed",
                         lambda: not port_open(self.hosts, "view", "cam"), 10)

if __name__ == "__main__":
    ff.main()
