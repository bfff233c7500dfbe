#!/usr/bin/env python3
"""Several cameras in one server: `run --config FILE` with three streams.

Each stream streams at its source rate (probe on /streams/NAME/stream.mjpg),
the URLs of one camera serve the first stream, /?action=stream_N and
snapshot_N the N-th, /api/streams lists them, /metrics labels every series
by stream; an unknown name is 404; a source that cannot be opened at start
leaves the stream reconnecting and the others running; a source that dies
later does too; SIGHUP adds, removes and restarts streams while a viewer of
an unchanged stream sees no gap, and a config with an error changes nothing.
"""
import json
import os
import signal
import tempfile
import threading
import time
import unittest

import ffharness as ff

# Distinct sizes tell the streams apart in their snapshots.
SIZES = {"front": (320, 240), "back": (352, 288), "side": (384, 224)}
RATE = 15


def stream_table(name, source, extra=""):
    return f'[streams.{name}]\nsource = "{source}"\n{extra}\n'


def pattern(name):
    w, h = SIZES[name]
    return f"pattern:{w}x{h}@{RATE}"


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


class ConfigServer(ff.Server):
    """`freshframe run --config FILE` (the port comes from the file: 0)."""

    def __init__(self, config_path):
        super().__init__()
        self.args = ["run", "--config", config_path]


class StreamsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        cls.config = os.path.join(cls.dir.name, "streams.toml")
        # "dead" names a port nothing listens on: it cannot be opened at start.
        write(cls.config, "[server]\nport = 0\n\n[defaults]\ndetector = \"none\"\n\n" +
              stream_table("front", pattern("front")) + stream_table("back", pattern("back")) +
              stream_table("side", pattern("side")) +
              stream_table("dead", "http://127.0.0.1:9/stream.mjpg"))
        cls.server = ConfigServer(cls.config)
        try:
            cls.server.start()
        except BaseException:
            cls.server.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.server.close()
        cls.dir.cleanup()

    def get_json(self, path):
        status, _, body = ff.http_get(self.server.port, path)
        self.assertEqual(status, 200, f"{path}: {body[:300]!r}")
        return json.loads(body)

    def snapshot_size(self, path):
        status, headers, body = ff.http_get(self.server.port, path)
        self.assertEqual(status, 200, f"{path}: {body[:300]!r}")
        return ff.jpeg_size(body)

    def streams(self):
        return {s["name"]: s for s in self.get_json("/api/streams")["streams"]}

    def test_every_stream_at_its_source_rate(self):
        probes = [ff.ProbeProcess(self.server.url + f"streams/{name}/stream.mjpg", seconds=4).start()
                  for name in SIZES]
        for name, probe in zip(SIZES, probes):
            result = probe.result()
            ff.assert_probe_ok(self, result, source_fps=RATE)

    def test_old_urls_serve_the_first_stream_and_numbers_pick_the_others(self):
        self.assertEqual(self.snapshot_size("/snapshot.jpg"), SIZES["front"])
        self.assertEqual(self.snapshot_size("/?action=snapshot"), SIZES["front"])
        self.assertEqual(self.snapshot_size("/?action=snapshot_1"), SIZES["back"])
        self.assertEqual(self.snapshot_size("/?action=snapshot_2"), SIZES["side"])
        self.assertEqual(self.snapshot_size("/streams/side/snapshot.jpg"), SIZES["side"])
        reader = ff.MjpegReader(self.server.port, "/?action=stream_1")
        try:
            _, body = reader.read_part()
            self.assertEqual(ff.jpeg_size(body), SIZES["back"])
        finally:
            reader.close()
        reader = ff.MjpegReader(self.server.port, "/stream.mjpg")
        try:
            _, body = reader.read_part()
            self.assertEqual(ff.jpeg_size(body), SIZES["front"])
        finally:
            reader.close()
        self.assertEqual(self.get_json("/api/stats")["stream"], "front")
        self.assertEqual(self.get_json("/streams/back/api/stats")["stream"], "back")

    def test_unknown_streams_are_404_and_a_bare_name_redirects(self):
        for path in ("/streams/nope/stream.mjpg", "/streams/nope/", "/?action=stream_9",
                     "/?action=snapshot_9", "/streams/front/metrics"):
            status, _, body = ff.http_get(self.server.port, path)
            self.assertEqual(status, 404, f"{path}: {body[:200]!r}")
        status, headers, _ = ff.http_get(self.server.port, "/streams/back")
        self.assertEqual(status, 301)
        self.assertEqual(headers.get("location"), "/streams/back/")

    def test_pages_grid_at_root_and_each_stream_its_own(self):
        status, _, grid = ff.http_get(self.server.port, "/")
        self.assertEqual(status, 200)
        status, _, page = ff.http_get(self.server.port, "/streams/front/")
        self.assertEqual(status, 200)
        self.assertNotEqual(grid, page, "with several streams / is the grid, not a stream's page")
        self.assertIn(b"api/streams", grid)

    def test_api_streams_lists_every_stream(self):
        streams = ff.wait_for(
            lambda: (lambda s: s if s["front"]["fps"] > 0 else None)(self.streams()), 10,
            "front's fps in /api/streams")
        self.assertEqual(list(streams), ["front", "back", "side", "dead"])
        for index, name in enumerate(streams):
            s = streams[name]
            for key in ("index", "path", "source", "state", "width", "height", "fps", "viewers",
                        "detector", "detection_fps", "latency_ms"):
                self.assertIn(key, s, f"{name}: {s}")
            self.assertEqual(s["index"], index)
            self.assertEqual(s["path"], f"streams/{name}/")
        self.assertEqual(streams["front"]["state"], "live")
        self.assertEqual(streams["front"]["detector"], "none")
        # The dead source started reconnecting; its credentials-free spec is shown.
        self.assertEqual(streams["dead"]["state"], "reconnecting")
        self.assertIn("127.0.0.1:9", streams["dead"]["source"])

    def test_metrics_label_every_stream(self):
        status, _, body = ff.http_get(self.server.port, "/metrics")
        self.assertEqual(status, 200)
        text = body.decode()
        for name in ("front", "back", "side", "dead"):
            self.assertIn(f'freshframe_stage_frames_total{{stream="{name}",stage="capture"}}', text)
        self.assertIn('freshframe_source_up{stream="dead"} 0', text)
        self.assertIn('freshframe_source_up{stream="front"} 1', text)
        self.assertIn("freshframe_streams 4", text)


class SourceDiesTest(unittest.TestCase):
    """One stream's upstream (another freshframe) dies: the others keep their rate."""

    def test_others_keep_full_rate(self):
        with tempfile.TemporaryDirectory() as tmp, ff.Server(
                "--source", "pattern:320x240@15", "--detector", "none") as upstream:
            config = os.path.join(tmp, "c.toml")
            write(config, "[server]\nport = 0\n\n" +
                  stream_table("local", "pattern:320x240@15", 'detector = "none"') +
                  stream_table("remote", upstream.url + "stream.mjpg", 'detector = "none"'))
            with ConfigServer(config) as server:
                ff.wait_for(lambda: json.loads(ff.http_get(server.port, "/api/streams").body)
                            ["streams"][1]["fps"] > 5, 15, "the remote stream running")
                upstream.stop(signal.SIGKILL)
                ff.wait_for(lambda: json.loads(ff.http_get(server.port, "/api/streams").body)
                            ["streams"][1]["state"] == "reconnecting", 15,
                            "the remote stream reconnecting")
                result = ff.run_probe(server.url + "streams/local/stream.mjpg", seconds=3)
                ff.assert_probe_ok(self, result, source_fps=15)


class ReloadTest(unittest.TestCase):
    """SIGHUP: change one stream, add one, remove one; the unchanged one's
    viewer sees no gap; a broken file changes nothing."""

    def test_reload(self):
        with tempfile.TemporaryDirectory() as tmp:
            config = os.path.join(tmp, "c.toml")
            head = "[server]\nport = 0\n\n[defaults]\ndetector = \"none\"\n\n"
            write(config, head + stream_table("keep", "pattern:320x240@15") +
                  stream_table("change", "pattern:320x240@15", "quality = 80") +
                  stream_table("drop", "pattern:320x240@15"))
            with ConfigServer(config) as server:
                port = server.port
                gaps = []
                errors = []
                stop = threading.Event()

                def watch():
                    reader = ff.MjpegReader(port, "/streams/keep/stream.mjpg")
                    last = time.monotonic()
                    try:
                        while not stop.is_set():
                            reader.read_part()
                            now = time.monotonic()
                            gaps.append(now - last)
                            last = now
                    except Exception as e:  # noqa: BLE001 - reported below
                        if not stop.is_set():
                            errors.append(repr(e))
                    finally:
                        reader.close()

                watcher = threading.Thread(target=watch, daemon=True)
                watcher.start()
                ff.wait_for(lambda: len(gaps) > 10, 10, "the viewer of 'keep' receiving")
                changed_viewer = ff.MjpegReader(port, "/streams/change/stream.mjpg")
                changed_viewer.read_part()

                write(config, head + stream_table("keep", "pattern:320x240@15") +
                      stream_table("change", "pattern:320x240@15", "quality = 60") +
                      stream_table("added", "pattern:352x288@15"))
                os.kill(server.proc.pid, signal.SIGHUP)
                names = lambda: [s["name"] for s in json.loads(
                    ff.http_get(port, "/api/streams").body)["streams"]]
                ff.wait_for(lambda: names() == ["keep", "change", "added"], 15,
                            f"the reloaded streams (have {names()})")
                config_of = json.loads(ff.http_get(port, "/streams/change/api/config").body)
                self.assertEqual(config_of["quality"], 60)
                status, _, _ = ff.http_get(port, "/streams/drop/api/stats")
                self.assertEqual(status, 404)
                status, _, body = ff.http_get(port, "/streams/added/snapshot.jpg")
                self.assertEqual(status, 200)
                self.assertEqual(ff.jpeg_size(body), (352, 288))
                # The restarted stream's viewer was let go (its page reconnects).
                with self.assertRaises(Exception):
                    for _ in range(100):
                        changed_viewer.read_part()
                changed_viewer.close()

                # A broken file: logged with its position, nothing changes.
                write(config, head + "[streams.keep]\nsource = \"pattern\"\nquality = 500\n")
                os.kill(server.proc.pid, signal.SIGHUP)
                ff.wait_for(lambda: "still running the previous config" in server.stderr(), 10,
                            "the reload error in the log")
                self.assertRegex(server.stderr(), r"c\.toml:\d+:\d+: streams\.keep\.quality")
                self.assertEqual(names(), ["keep", "change", "added"])

                time.sleep(1.0)
                stop.set()
                watcher.join(timeout=10)
                self.assertEqual(errors, [], "the viewer of the unchanged stream was cut off")
                # 15 fps: parts every ~67 ms; a restart of the stream would be
                # a gap of seconds (or a closed connection, above).
                self.assertLess(max(gaps[1:]), 1.0, f"largest gap {max(gaps[1:]):.3f} s")
                self.assertTrue(server.alive(), server.stderr())


if __name__ == "__main__":
    ff.main()
