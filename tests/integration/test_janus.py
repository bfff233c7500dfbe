#!/usr/bin/env python3
"""RTP to Janus (issue 18): freshframe --rtp-out feeds Janus 1.1.2's
streaming plugin (Debian's /usr/bin/janus), whose WebRTC viewers are aiortc
players, each host a network namespace (netns.Hosts) on one bridge:

    ff      10.89.0.1  freshframe run --source pattern:320x240@30 --detector none
                                      --rtp-out 10.89.0.2:8004
    janus   10.89.0.2  janus -F DIR   (examples/janus/*.jcfg, as shipped)
    viewer  10.89.0.3  aiortc players through Janus's HTTP API (create,
                       attach, watch, long poll for the offer, start with the
                       answer), run as `test_janus.py --viewers ...` inside
                       the host so that their HTTP and ICE sockets live there

What is checked (generous bounds; timing belongs to bench/scaleout):
- every aiortc viewer (2) decodes video on which the timecode strip reads, and
  decodes >= 90% of the access units freshframe sent over the same window
  (frames whose strip capture time falls in the window of freshframe's
  /api/stats samples: both sides count the same 8 s, offset by the
  pipeline's few tens of ms);
- a viewer joining gets a picture within 2 s of its answer, and Janus's PLI
  for it reached freshframe (rtcp.pli_received grows);
- a flood of PLIs (3000, from the Janus host to freshframe's RTCP port)
  forces no more IDRs than KeyframeRequests' rate limit, and the output
  stays connected;
- examples/janus/viewer.html in headless Chromium (its default mDNS host
  candidates, as a user's browser; Janus ignores them and connects by the
  peer-reflexive address): 2 viewers in one page connect, decode at about
  the source's rate, their first frame comes within 2 s, and viewer 0 reads
  the strip's capture-to-display age against freshframe's api/clock;
- docs/deploy-janus.md shows the mountpoint file the test runs;
- Janus restarted: freshframe reports "retrying" (ICMP port unreachable)
  and then "connected" again by itself; the viewers lose their session,
  make a new one, and video resumes.

Needs root (namespaces), Debian's janus and python3-aiortc; skipped with a
message otherwise.
"""
import asyncio
import json
import os
import importlib.util
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import ffharness as ff
import netns

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLES = os.path.join(REPO, "examples", "janus")
JANUS_FILES = ("janus.jcfg", "janus.transport.http.jcfg", "janus.plugin.streaming.jcfg")
JANUS = "/usr/bin/janus"
FF_PORT = 8080
API_PORT = 8088
RTP_PORT = 8004
MOUNT = 1
SIZE = (320, 240)  # the strip needs >= 320 px; small keeps aiortc's decode cheap
# aiortc decodes in Python: 2 viewers (and 2 more in Chromium below) stay
# within what a loaded 2-core CI box gives the viewer host.
VIEWERS = 2
VIEWER_PAGE = os.path.join(EXAMPLES, "viewer.html")
CHROMIUM = shutil.which("chromium")


def skip_reason():
    reason = netns.skip_reason()
    if reason:
        return reason
    if not os.path.exists(JANUS):
        return "Janus is not installed (Debian package janus): skipped"
    if importlib.util.find_spec("aiortc") is None:
        return "aiortc is not installed (Debian python3-aiortc): skipped"
    return None


# --------------------------------------------------------------------------
# The viewers: run inside the viewer host as `test_janus.py --viewers API N
# SECONDS`; print one JSON line per viewer.

def janus_call(api, path, body=None, timeout=10.0):
    """POST body (or GET when None) to Janus's HTTP API; the decoded reply."""
    import http.client
    import urllib.parse
    url = urllib.parse.urlsplit(api + path)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    try:
        target = url.path + ("?" + url.query if url.query else "")
        if body is None:
            conn.request("GET", target)
        else:
            body = dict(body, transaction=os.urandom(6).hex())
            conn.request("POST", target, json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
        return json.loads(response.read().decode("utf-8"))
    finally:
        conn.close()


class Viewer:
    """One player that keeps watching: when its Janus session dies (Janus
    restarted) or video stops for 3 s, it makes a new session."""

    def __init__(self, api):
        self.api = api.rstrip("/")
        self.sessions = 0
        self.joins = []          # seconds from the answer to the first frame, per session
        self.stamps = []         # strip capture time (us) of every decoded frame
        self.decoded = 0
        self.unreadable = 0
        self.latencies_ms = []
        self.errors = []

    async def _session(self, deadline):
        from aiortc import RTCPeerConnection, RTCSessionDescription
        from jpeg_strip import read_strip_gray
        session = (await asyncio.to_thread(janus_call, self.api, "", {"janus": "create"}))
        session = session["data"]["id"]
        alive = {"ok": True}

        def long_poll():
            # Janus's events, and what keeps the session alive; a failure
            # means Janus went away.
            while alive["ok"]:
                try:
                    events = janus_call(self.api, f"/{session}?maxev=5", timeout=40)
                except (OSError, ValueError) as e:
                    alive["ok"] = False
                    self.errors.append(f"long poll: {type(e).__name__}: {e}"[:200])
                    return
                for event in events if isinstance(events, list) else [events]:
                    if event.get("janus") in ("error", "hangup", "detached"):
                        alive["ok"] = False
                        self.errors.append(f"janus: {json.dumps(event)}"[:300])
                    if "jsep" in event:
                        loop.call_soon_threadsafe(offers.put_nowait, event["jsep"])

        loop = asyncio.get_running_loop()
        offers = asyncio.Queue()
        loop.run_in_executor(None, long_poll)
        pc = None
        try:
            handle = (await asyncio.to_thread(janus_call, self.api, f"/{session}", {
                "janus": "attach", "plugin": "janus.plugin.streaming"}))["data"]["id"]
            await asyncio.to_thread(janus_call, self.api, f"/{session}/{handle}", {
                "janus": "message", "body": {"request": "watch", "id": MOUNT}})
            offer = await asyncio.wait_for(offers.get(), 10)
            pc = RTCPeerConnection()
            tracks = asyncio.Queue()
            pc.on("track", lambda track: tracks.put_nowait(track))
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            answered = time.monotonic()
            await asyncio.to_thread(janus_call, self.api, f"/{session}/{handle}", {
                "janus": "message", "body": {"request": "start"},
                "jsep": {"type": "answer", "sdp": pc.localDescription.sdp}})
            self.sessions += 1
            track = await asyncio.wait_for(tracks.get(), 10)
            first = True
            while time.monotonic() < deadline and alive["ok"]:
                frame = await asyncio.wait_for(track.recv(), 3)
                now_us = int(time.monotonic() * 1e6)
                if first:
                    self.joins.append(time.monotonic() - answered)
                    first = False
                self.decoded += 1
                strip = read_strip_gray(frame.to_ndarray(format="gray"), now_us)
                if strip is None:
                    self.unreadable += 1
                else:
                    self.stamps.append(strip[0])
                    self.latencies_ms.append((now_us - strip[0]) / 1000.0)
        finally:
            alive["ok"] = False
            if pc is not None:
                await pc.close()
            try:
                await asyncio.to_thread(janus_call, self.api, f"/{session}",
                                        {"janus": "destroy"}, 3)
            except (OSError, ValueError):
                pass

    async def run(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                await self._session(deadline)
            except Exception as e:  # Janus gone, a timeout: a new session
                self.errors.append(f"{type(e).__name__}: {e}"[:200])
                await asyncio.sleep(1.0)

    def result(self):
        return {"sessions": self.sessions, "joins_s": self.joins, "decoded": self.decoded,
                "unreadable": self.unreadable, "stamps": self.stamps,
                "latency_ms": sorted(self.latencies_ms)[len(self.latencies_ms) // 2]
                if self.latencies_ms else None,
                "errors": self.errors[-5:]}


def viewers_main(api, n, seconds):
    async def all_viewers():
        viewers = [Viewer(api) for _ in range(n)]
        await asyncio.gather(*(v.run(seconds) for v in viewers))
        return viewers

    for viewer in asyncio.run(all_viewers()):
        print(json.dumps(viewer.result()), flush=True)


# --------------------------------------------------------------------------
# The test bed.

def wait_for(what, predicate, timeout):
    return netns.wait_for(what, predicate, timeout, interval=0.2)


read_all = netns.text  # the decoded text a process wrote so far


def find(obj, key):
    """The first value of `key` anywhere in a JSON document."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        children = obj.values()
    elif isinstance(obj, list):
        children = obj
    else:
        return None
    for child in children:
        found = find(child, key)
        if found is not None:
            return found
    return None


def total(counts):
    return sum(counts.values()) if isinstance(counts, dict) else 0


def pli(ssrc):
    """An RTCP PSFB PLI (RFC 4585) for `ssrc`."""
    return struct.pack("!BBHII", 0x81, 206, 2, 1, ssrc)


SKIP = None if "--viewers" in sys.argv else skip_reason()


class DocsTest(unittest.TestCase):
    def test_the_mountpoint_in_the_docs_is_the_file_the_test_runs(self):
        with open(os.path.join(REPO, "docs", "deploy-janus.md"), encoding="utf-8") as f:
            blocks = re.findall(r"```jcfg\n(.*?)```", f.read(), re.S)
        with open(os.path.join(EXAMPLES, "janus.plugin.streaming.jcfg"), encoding="utf-8") as f:
            self.assertEqual(blocks, [f.read()])


@unittest.skipIf(SKIP, SKIP)
class JanusTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.hosts = netns.Hosts(["ff", "janus", "viewer"]).__enter__()
        cls.files = []
        try:
            cls.config_dir = tempfile.mkdtemp(prefix="ff-janus-")
            # The documented files, as shipped: they listen on every address
            # and enforce ICE on eth0, the hosts' interface here.
            for name in JANUS_FILES:
                shutil.copy(os.path.join(EXAMPLES, name), cls.config_dir)
            cls.janus = None
            cls.start_janus()
            cls.ff = cls.start_freshframe()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.hosts.close()
        for f in cls.files:
            f.close()
        shutil.rmtree(getattr(cls, "config_dir", "/nonexistent"), ignore_errors=True)

    @classmethod
    def log(cls):
        f = tempfile.TemporaryFile()
        cls.files.append(f)
        return f

    @classmethod
    def start_janus(cls):
        cls.janus_log = cls.log()
        cls.janus = cls.hosts.popen("janus", [JANUS, "-F", cls.config_dir, "-o"],
                                    stdout=cls.janus_log, stderr=subprocess.STDOUT)
        netns.wait_port(cls.hosts, "viewer", cls.hosts.addr("janus"), API_PORT)

    @classmethod
    def start_freshframe(cls):
        argv = [ff.BINARY, "run", "--bind", cls.hosts.addr("ff"), "--port", str(FF_PORT),
                "--detector", "none", "--source", "pattern:%dx%d@30" % SIZE,
                "--rtp-out", f"{cls.hosts.addr('janus')}:{RTP_PORT}",
                # viewer.html (a file:// page) reads api/clock for the strip's age.
                "--allow-origin", "*"]
        proc = netns.start_freshframe(cls.hosts, "ff", argv)
        cls.ff_out, cls.ff_err = proc.out, proc.err
        return proc

    def tearDown(self):
        self.assertIsNone(self.ff.poll(), read_all(self.ff_err)[-4000:])

    # -- helpers
    def stats(self):
        with self.hosts.inside("viewer"):
            response = ff.http_get(FF_PORT, "/api/stats", host=self.hosts.addr("ff"))
        self.assertEqual(response.status, 200)
        return json.loads(response.body.decode("utf-8"))

    def output(self, stats=None):
        outputs = find(stats or self.stats(), "outputs")
        self.assertTrue(outputs, "no outputs in /api/stats")
        rtp = [o for o in outputs if o.get("kind") == "rtp"]
        self.assertEqual(len(rtp), 1, outputs)
        return rtp[0]

    def start_viewers(self, n, seconds):
        out = self.log()
        api = f"http://{self.hosts.addr('janus')}:{API_PORT}/janus"
        proc = self.hosts.popen("viewer", [sys.executable, os.path.abspath(__file__),
                                           "--viewers", api, str(n), str(seconds)],
                                stdout=out, stderr=self.log(),
                                cwd=os.path.dirname(os.path.abspath(__file__)))
        proc.out = out
        return proc

    def viewer_results(self, proc, seconds):
        proc.wait(timeout=seconds + 60)
        lines = [l for l in read_all(proc.out).splitlines() if l.startswith("{")]
        return [json.loads(l) for l in lines]

    def describe(self, results):
        return json.dumps([{k: v for k, v in r.items() if k != "stamps"} for r in results])

    # -- the tests
    def test_1_every_viewer_decodes_the_stream_with_its_strip(self):
        seconds = 16
        proc = self.start_viewers(VIEWERS, seconds)
        time.sleep(5)  # joined and playing
        before = self.output()
        start_us = int(time.monotonic() * 1e6)
        time.sleep(8)
        end_us = int(time.monotonic() * 1e6)
        after = self.output()
        results = self.viewer_results(proc, seconds)
        self.assertEqual(len(results), VIEWERS, self.describe(results))
        sent = after["frames"] - before["frames"]
        self.assertGreater(sent, 100, (before, after))  # ~240 at 30 fps
        self.assertEqual(after["state"], "connected", after)
        for r in results:
            self.assertEqual(r["sessions"], 1, self.describe(results))
            self.assertGreater(r["decoded"], 0, self.describe(results))
            # The strip reads on (nearly) every decoded frame.
            self.assertLessEqual(r["unreadable"], max(3, r["decoded"] // 50),
                                 self.describe(results))
            in_window = len([t for t in r["stamps"] if start_us <= t < end_us])
            self.assertGreaterEqual(in_window, 0.9 * sent,
                                    f"decoded {in_window} of {sent} sent: "
                                    f"{self.describe(results)}")
        print(f"\njanus: {VIEWERS} viewers decoded {[len([t for t in r['stamps'] if start_us <= t < end_us]) for r in results]} "
              f"of {sent} frames sent in 8 s; strip latency p50 "
              f"{[r['latency_ms'] for r in results]} ms; joins {[r['joins_s'] for r in results]} s")

    def test_2_a_joining_viewer_gets_a_picture_within_2s_through_a_pli(self):
        before = self.output()
        proc = self.start_viewers(1, 8)
        results = self.viewer_results(proc, 8)
        after = self.output()
        self.assertEqual(len(results), 1)
        joins = results[0]["joins_s"]
        self.assertTrue(joins, self.describe(results))
        self.assertLess(joins[0], 2.0, self.describe(results))
        # Janus asked freshframe for a keyframe as the viewer started.
        self.assertGreater(after["rtcp"]["pli_received"], before["rtcp"]["pli_received"],
                           (before["rtcp"], after["rtcp"]))
        print(f"\njanus: a viewer's first frame {joins[0] * 1000:.0f} ms after its answer; "
              f"PLIs received {before['rtcp']['pli_received']} -> {after['rtcp']['pli_received']}"
              f"\n/api/stats output: {json.dumps(after)}")

    def test_3_a_pli_flood_forces_no_more_idrs_than_the_rate_limit(self):
        stats = self.stats()
        output = self.output(stats)
        forced_before = total(find(stats, "idr_forced"))
        port = output["rtcp"]["port"]
        self.assertGreater(port, 0, output)
        with self.hosts.inside("janus"):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        started = time.monotonic()
        try:
            for i in range(3000):
                sock.sendto(pli(output["ssrc"]), (self.hosts.addr("ff"), port))
                if i % 100 == 99:
                    time.sleep(0.05)
        finally:
            sock.close()
        time.sleep(0.5)
        elapsed = time.monotonic() - started
        stats = self.stats()
        after = self.output(stats)
        forced = total(find(stats, "idr_forced")) - forced_before
        received = after["rtcp"]["pli_received"] - output["rtcp"]["pli_received"]
        self.assertGreater(received, 500, after["rtcp"])
        # KeyframeRequests: forced IDRs at least 0.5 s apart (+1 at the edge).
        self.assertLessEqual(forced, elapsed / 0.5 + 1, (forced, elapsed))
        self.assertEqual(after["state"], "connected", after)
        print(f"\njanus: {received} PLIs in {elapsed:.1f} s -> {forced} forced IDRs")

    @unittest.skipIf(CHROMIUM is None, "chromium is not installed: viewer.html not tried")
    def test_4_the_viewer_page_plays_in_chromium(self):
        url = (f"file://{VIEWER_PAGE}?janus=http://{self.hosts.addr('janus')}:{API_PORT}/janus"
               f"&id={MOUNT}&n=2&ff=http://{self.hosts.addr('ff')}:{FF_PORT}/")
        log = self.log()
        profile = tempfile.mkdtemp(prefix="ff-janus-chromium-")
        try:
            browser = self.hosts.popen("viewer", [
                CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                f"--user-data-dir={profile}", "--autoplay-policy=no-user-gesture-required",
                "--enable-logging=stderr", "--v=0", url], stdout=log, stderr=subprocess.STDOUT)

            def lines():
                found = re.findall(r'janus-viewer (\{.*?\})", source', read_all(log))
                return [json.loads(l) for l in found]

            def both_decoding():
                last = {l["viewer"]: l for l in lines()}
                return len(last) == 2 and all(l["decoded"] > 150 for l in last.values()) and last

            last = wait_for("2 viewers of viewer.html decoding", both_decoding, 40)
            netns.stop(browser)
        finally:
            shutil.rmtree(profile, ignore_errors=True)
        for summary in last.values():
            self.assertEqual(summary["state"], "connected", last)
            self.assertEqual(summary["sessions"], 1, last)
            self.assertIsNotNone(summary["first_frame_ms"], last)
            self.assertLess(summary["first_frame_ms"], 2000, last)
            self.assertGreater(summary["fps"], 10, last)  # ~30; a loaded box drops some
        self.assertIn("age_ms", last[0], last)
        self.assertLess(last[0]["age_ms"]["p50"], 1000, last)
        print(f"\njanus: viewer.html in Chromium: {json.dumps(list(last.values()))}")

    def test_5_janus_restarted_video_resumes_by_itself(self):
        seconds = 30
        proc = self.start_viewers(2, seconds)
        time.sleep(5)
        netns.stop(self.janus)
        stopped_us = int(time.monotonic() * 1e6)
        wait_for("freshframe sees Janus gone",
                 lambda: self.output()["state"] == "retrying", 15)
        down = self.output()
        self.assertIn("refused", down.get("error", ""), down)
        time.sleep(1)
        self.start_janus()
        restarted_us = int(time.monotonic() * 1e6)
        wait_for("freshframe reconnects", lambda: self.output()["state"] == "connected", 20)
        results = self.viewer_results(proc, seconds)
        up = self.output()
        self.assertGreaterEqual(up["reconnects"], 1, up)
        self.assertEqual(len(results), 2)
        for r in results:
            self.assertGreaterEqual(r["sessions"], 2, self.describe(results))
            before = [t for t in r["stamps"] if t < stopped_us]
            resumed = [t for t in r["stamps"] if t > restarted_us]
            self.assertTrue(before, self.describe(results))
            # Video resumed: several seconds of frames after the restart.
            self.assertGreater(len(resumed), 60, self.describe(results))
        print(f"\njanus: restarted; freshframe reconnected ({up['reconnects']} reconnects), "
              f"viewers' sessions {[r['sessions'] for r in results]}, frames after the "
              f"restart {[len([t for t in r['stamps'] if t > restarted_us]) for r in results]}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--viewers":
        viewers_main(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    else:
        ff.main()
