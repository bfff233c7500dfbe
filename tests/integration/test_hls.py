#!/usr/bin/env python3
"""RTMP push to nginx-rtmp, which writes HLS (issue 18), across hosts made of
network namespaces (netns.Hosts) on one bridge:

    ff     10.89.0.1  freshframe run --source pattern --gop 1
                          --rtmp-out 'rtmp://10.89.0.2/live/cam?key=KEY'
                          --rtmp-out 'rtmp://10.89.0.2/live/intruder?key=WRONG'
    cdn    10.89.0.2  /usr/sbin/nginx with libnginx-mod-rtmp, configured by
                      examples/nginx-rtmp.conf (addresses, directories and the
                      key replaced; nothing else)
    viewer 10.89.0.3  fetches http://10.89.0.2:8080/hls/cam.m3u8 and its
                      segments, decodes them with PyAV

What is checked (generous bounds: timing belongs to bench/scaleout):
- the playlist appears over HTTP, its segments decode, and the timecode
  strip (docs/timecode.md) reads on every decoded frame; the HLS latency is
  measured from the strip against the clock and printed (seconds);
- the stream key is a secret: nginx refuses a push with a wrong key (that
  output stays "retrying" with an error), the key shows nowhere in
  /api/stats (the URL is redacted), and the HLS names carry the stream
  name, not the key;
- a stuck nginx (SIGSTOP: it accepts TCP but reads nothing) costs the
  connection, not a queue: freshframe gives the write up after its I/O
  timeout, keeps serving its own viewers meanwhile, and pushes again once
  nginx runs (SIGCONT);
- nginx restarted: freshframe reconnects by itself, new segments appear,
  and /api/stats counts the reconnects.

Needs root (namespaces) and nginx with libnginx-mod-rtmp; skipped with a
message otherwise.
"""
import io
import json
import os
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import unittest

import ffharness as ff
import jpeg_strip
import netns

try:
    import av
except ImportError:  # pragma: no cover - Debian's python3-av is a test dependency
    av = None

PORT = 8080     # freshframe's HTTP on host ff
HLS_PORT = 8080  # nginx's HTTP on host cdn (the example's)
NGINX = "/usr/sbin/nginx"
RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
EXAMPLE = os.path.join(ff.REPO_ROOT, "examples", "nginx-rtmp.conf")
FRAGMENT_S = 1.0  # the example's hls_fragment
GOP_S = 1  # --gop: no longer than the fragment (nginx cuts segments at IDRs)


def skip_reason():
    reason = netns.skip_reason()
    if reason:
        return reason
    if not os.path.exists(NGINX) or not os.path.exists(RTMP_MODULE):
        return "nginx with libnginx-mod-rtmp is not installed: skipped"
    if av is None:
        return "PyAV (Debian python3-av) is not installed: skipped"
    return None


SKIP = skip_reason()
read_all, text, wait_for = netns.read_all, netns.text, netns.wait_for
if av is not None:
    # nginx-rtmp's segments declare an AAC stream that never carries data:
    # libavformat's warnings about it say nothing here.
    av.logging.set_level(av.logging.ERROR)


def parse_playlist(body):
    """[(duration_s, uri)] of a media playlist, and its media sequence."""
    lines = body.decode("utf-8").splitlines()
    if not lines or lines[0].strip() != "#EXTM3U":
        raise AssertionError(f"not a playlist: {body[:200]!r}")
    sequence = 0
    segments = []
    duration = None
    for line in lines:
        line = line.strip()
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            sequence = int(line.split(":", 1)[1])
        elif line.startswith("#EXTINF:"):
            duration = float(line.split(":", 1)[1].split(",")[0])
        elif line and not line.startswith("#"):
            segments.append((duration, line))
    return segments, sequence


def decode_segment(data):
    """[(strip t_us or None)] for every frame of an MPEG-TS segment."""
    out = []
    with av.open(io.BytesIO(data), format="mpegts") as container:
        for frame in container.decode(video=0):
            gray = frame.to_ndarray(format="gray")
            strip = jpeg_strip.read_strip_gray(gray, int(ff.mono_s() * 1e6) + 1_000_000)
            out.append(strip[0] if strip else None)
    return out


def find_outputs(stats):
    """Every "outputs" entry of /api/stats, wherever the stream sits."""
    found = []
    if isinstance(stats, dict):
        for key, value in stats.items():
            if key == "outputs" and isinstance(value, list):
                found.extend(value)
            else:
                found.extend(find_outputs(value))
    elif isinstance(stats, list):
        for value in stats:
            found.extend(find_outputs(value))
    return found


@unittest.skipIf(SKIP, SKIP)
class HlsTest(unittest.TestCase):

    def setUp(self):
        self.key = "k-" + secrets.token_hex(12)
        self.token = "t-" + secrets.token_hex(12)
        self.dir = tempfile.mkdtemp(prefix="ffhls")
        # nginx's workers run as www-data (the example's `user`): they write
        # the HLS files and must get through the temporary directory.
        os.chmod(self.dir, 0o755)
        self.token_file = os.path.join(self.dir, "token")
        with open(self.token_file, "w") as f:
            f.write(self.token + "\n")
        self.hosts = netns.Hosts(["ff", "cdn", "viewer"]).__enter__()
        self.files = []
        self.nginx = None
        self.ff = None

    def tearDown(self):
        self.hosts.close()
        for f in self.files:
            f.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- nginx on host cdn
    def write_nginx_conf(self):
        with open(EXAMPLE) as f:
            conf = f.read()
        # docs/deploy-hls.md shows this very file.
        with open(os.path.join(ff.REPO_ROOT, "docs", "deploy-hls.md")) as f:
            self.assertIn("```nginx\n" + conf.rstrip("\n") + "\n```", f.read(),
                          "docs/deploy-hls.md must show examples/nginx-rtmp.conf as it is")
        for old, new in (("10.0.0.2", self.hosts.addr("cdn")),
                         ("/var/lib/nginx", os.path.join(self.dir, "lib")),
                         ("/var/log/nginx", os.path.join(self.dir, "log")),
                         ("/run/", self.dir + "/"),
                         ("CHANGE-ME", self.key)):
            self.assertIn(old, conf, f"examples/nginx-rtmp.conf lost {old!r}")
            conf = conf.replace(old, new)
        for sub in ("lib", "lib/hls", "log"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        shutil.chown(os.path.join(self.dir, "lib", "hls"), "www-data", "www-data")
        os.chmod(os.path.join(self.dir, "lib"), 0o755)
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        cp = self.hosts.run("cdn", [NGINX, "-t", "-p", self.dir, "-c", self.conf])
        self.assertEqual(cp.returncode, 0, f"nginx -t: {cp.stderr}")

    def start_nginx(self):
        err = tempfile.TemporaryFile()
        self.files.append(err)
        self.nginx = self.hosts.popen("cdn", [NGINX, "-p", self.dir, "-c", self.conf,
                                              "-g", "daemon off;"],
                                      stdout=err, stderr=err)
        netns.wait_port(self.hosts, "viewer", self.hosts.addr("cdn"), HLS_PORT)
        netns.wait_port(self.hosts, "ff", self.hosts.addr("cdn"), 1935)

    def nginx_pids(self):
        """nginx's master (the process we started: `ip netns exec` execs it)
        and its workers."""
        pids = [self.nginx.pid]
        for pid in list(pids):
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    pids.extend(int(p) for p in f.read().split())
        return pids

    def error_log(self):
        path = os.path.join(self.dir, "log", "hls-error.log")
        return open(path).read() if os.path.exists(path) else ""

    # -- freshframe on host ff
    def start_freshframe(self, args):
        argv = [ff.BINARY, "run", "--bind", self.hosts.addr("ff"), "--port", str(PORT),
                "--token-file", self.token_file] + list(args)
        self.ff = netns.start_freshframe(self.hosts, "ff", argv)
        return self.ff

    def stats(self):
        with self.hosts.inside("viewer"):
            r = ff.http_get(PORT, "/api/stats", host=self.hosts.addr("ff"),
                            headers={"Authorization": "Bearer " + self.token})
        self.assertEqual(r.status, 200)
        return json.loads(r.body.decode("utf-8")), r.body

    def output(self, name):
        stats, _ = self.stats()
        rtmp = [o for o in find_outputs(stats) if o.get("kind") == "rtmp"]
        self.assertEqual(len(rtmp), 2, stats)
        # Both targets read rtmp://10.89.0.2/live/***: they come in flag order.
        return rtmp[0] if name == "cam" else rtmp[1]

    # -- the viewer on host viewer
    def hls_get(self, path, timeout=10.0):
        with self.hosts.inside("viewer"):
            return ff.http_get(HLS_PORT, path, host=self.hosts.addr("cdn"), timeout=timeout)

    def playlist(self):
        r = self.hls_get("/hls/cam.m3u8")
        if r.status != 200:
            raise AssertionError(f"playlist: HTTP {r.status}")
        return parse_playlist(r.body)

    def segment(self, uri):
        r = self.hls_get("/hls/" + uri)
        self.assertEqual(r.status, 200, uri)
        return r.body

    def new_segment_after(self, known, timeout):
        """Waits for a segment not in `known`; returns (uri, time it was
        first listed, CLOCK_MONOTONIC s)."""
        def fresh():
            segments, _ = self.playlist()
            new = [uri for _, uri in segments if uri not in known]
            return (new[-1], ff.mono_s()) if new else None
        return wait_for("a new HLS segment", fresh, timeout)

    def test_push_hls_decode_latency_stuck_and_restart(self):
        self.write_nginx_conf()
        cdn = self.hosts.addr("cdn")
        # nginx is not there yet: a warning and a retry, never an exit.
        self.start_freshframe([
            "--source", "pattern:640x480@30", "--detector", "none", "--gop", str(GOP_S),
            "--rtmp-out", f"rtmp://{cdn}/live/cam?key={self.key}",
            "--rtmp-out", f"rtmp://{cdn}/live/intruder?key=WRONG"])
        wait_for("the output retrying while nginx is down",
                 lambda: self.output("cam")["state"] == "retrying", 15)
        self.assertIsNone(self.ff.poll())
        self.start_nginx()

        # The playlist appears over HTTP; segments decode, the strip reads.
        wait_for("the output connected", lambda: self.output("cam")["state"] == "connected", 30)
        segments = wait_for("a playlist with 3 segments",
                            lambda: (lambda p: p[0] if len(p[0]) >= 3 else None)(self.playlist()),
                            30)
        for duration, uri in segments:
            self.assertLessEqual(duration, FRAGMENT_S * 2 + 0.5, segments)
            self.assertTrue(uri.startswith("cam-") and uri.endswith(".ts"), uri)
        # Latency, measured on fresh segments as they appear:
        # - edge: a segment is listed this long after its first frame was
        #   captured (at least one fragment: nginx closes a segment at the
        #   IDR after hls_fragment);
        # - player: a player that starts, as hls.js and Safari do, three
        #   segments from the end of the playlist shows pictures this old.
        known = {uri for _, uri in segments}
        edge, player, frames, unread = [], [], 0, 0
        for _ in range(4):
            uri, listed_s = self.new_segment_after(known, 15)
            playlist_now, _ = self.playlist()
            fetched_s = ff.mono_s()
            known |= {u for _, u in playlist_now}
            strips = decode_segment(self.segment(uri))
            frames += len(strips)
            unread += strips.count(None)
            read = [s for s in strips if s is not None]
            self.assertTrue(read, f"{uri}: no frame with a readable strip")
            edge.append(listed_s - read[0] / 1e6)
            if len(playlist_now) >= 3:
                start = decode_segment(self.segment(playlist_now[-3][1]))
                start_read = [s for s in start if s is not None]
                if start_read:
                    player.append(fetched_s - start_read[0] / 1e6)
        self.assertGreater(frames, 4 * 15, "too few frames in 4 segments")
        self.assertEqual(unread, 0, f"{unread} of {frames} decoded frames without a strip")
        print(f"\nHLS latency (hls_fragment {FRAGMENT_S:g}s, --gop {GOP_S}): segment listed "
              f"{statistics.median(edge):.2f} s after its first frame was captured "
              f"(min {min(edge):.2f}, max {max(edge):.2f}); a player starting 3 segments "
              f"from the end shows pictures "
              f"{statistics.median(player) if player else float('nan'):.2f} s old; "
              f"{frames} frames decoded, strip read on all", file=sys.stderr)
        self.assertLess(statistics.median(edge), 10.0)

        # The key is a secret: the wrong one is refused by nginx, and the
        # keys show nowhere in /api/stats.
        intruder = wait_for("the wrong key refused",
                            lambda: (lambda o: o if o["state"] == "retrying" and
                                     o.get("error") else None)(self.output("intruder")), 30)
        self.assertEqual(intruder["connects"], 0, intruder)
        self.assertIn("publishing refused", intruder["error"])
        _, raw = self.stats()
        self.assertNotIn(self.key.encode(), raw)
        self.assertNotIn(b"WRONG", raw)
        self.assertEqual(self.output("cam")["target"], f"rtmp://{cdn}/live/***")
        # Nor in the log (freshframe's own lines or libavformat's).
        self.assertNotIn(self.key, text(self.ff.err))
        self.assertNotIn("WRONG", text(self.ff.err))
        self.assertEqual(self.hls_get("/hls/intruder.m3u8").status, 404)

        # A stuck nginx: it accepts TCP (the kernel does) but reads nothing.
        pids = self.nginx_pids()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            # The socket buffers fill, the write makes no progress for the
            # I/O timeout (3 s): the connection is given up and retried.
            stuck = wait_for("the write given up", lambda: (
                lambda o: o if o["state"] in ("retrying", "connecting") and o["reconnects"] == 0
                and o.get("error") else None)(self.output("cam")), 40)
            self.assertIn("not reading", stuck.get("error", ""), stuck)
            # freshframe's own viewers never noticed.
            with self.hosts.inside("viewer"):
                reader = ff.MjpegReader(PORT, host=self.hosts.addr("ff"),
                                        path="/stream.mjpg?token=" + self.token)
                self.assertEqual(reader.status, 200)
                for _ in range(10):
                    reader.read_part()
                reader.close()
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
        wait_for("pushing again after the stall",
                 lambda: (lambda o: o["state"] == "connected" and o["reconnects"] >= 1)(
                     self.output("cam")), 40)
        self.assertEqual(self.output("cam")["state"], "connected")

        # nginx restarted: freshframe reconnects by itself; new segments.
        reconnects = self.output("cam")["reconnects"]
        netns.stop(self.nginx)
        # What was listed before (nginx is down: read its directory).
        with open(os.path.join(self.dir, "lib", "hls", "cam.m3u8"), "rb") as f:
            known = {uri for _, uri in parse_playlist(f.read())[0]}
        self.start_nginx()
        wait_for("reconnected after the restart",
                 lambda: self.output("cam")["reconnects"] > reconnects, 40)
        uri, _ = self.new_segment_after(known, 30)
        strips = decode_segment(self.segment(uri))
        self.assertTrue(strips and None not in strips, f"{uri}: {len(strips)} frames")
        cam = self.output("cam")
        print(f"after the stall and the restart: {cam['reconnects']} reconnects, "
              f"{cam['frames']} frames pushed, {cam.get('dropped')} dropped, "
              f"{cam.get('skips_to_key')} skips to a keyframe", file=sys.stderr)
        self.assertIsNone(self.ff.poll())
        self.assertNotIn(self.key, text(self.ff.err))


if __name__ == "__main__":
    ff.main()
