#!/usr/bin/python3
"""Video files as --source: played at their own frame rate, --loop, the end of
a file without --loop, and sources that cannot be used.

The test video is made here without cv2 or ffmpeg: a `freshframe run` on the
test pattern at 25 fps is recorded from /stream.mjpg, and its JPEGs are
written into an MJPG AVI by a small RIFF writer below. The frames carry the
pattern's timecode strip from when they were recorded, so latency figures are
meaningless here: the checks are frame rate, frame counts and states.

Run: /usr/bin/python3 tests/integration/test_files.py --binary build/release/freshframe
"""

import os
import shutil
import struct
import tempfile
import time
import unittest

import ffharness as ff

FILE_FPS = 25
FILE_FRAMES = 50  # 2 s
WIDTH, HEIGHT = 320, 240
FPS_TOLERANCE = 1.0

_tmpdir = None
_video = None


# --------------------------------------------------------------------------
# A minimal AVI (RIFF) writer for MJPEG frames: hdrl (avih, strl (strh, strf)),
# movi ('00dc' chunks), idx1.

def _chunk(fourcc, data):
    return fourcc + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")


def _list(kind, payload):
    return b"LIST" + struct.pack("<I", len(payload) + 4) + kind + payload


def mjpeg_avi(jpegs, fps, width, height):
    count = len(jpegs)
    biggest = max(len(j) for j in jpegs)
    avih = struct.pack("<14I",
                       1_000_000 // fps,       # dwMicroSecPerFrame
                       biggest * fps,          # dwMaxBytesPerSec
                       0,                      # dwPaddingGranularity
                       0x10,                   # dwFlags: AVIF_HASINDEX
                       count,                  # dwTotalFrames
                       0,                      # dwInitialFrames
                       1,                      # dwStreams
                       biggest,                # dwSuggestedBufferSize
                       width, height, 0, 0, 0, 0)
    strh = struct.pack("<4s4sIHHIIIIIIiI4h",
                       b"vids", b"MJPG", 0, 0, 0, 0,
                       1, fps,                 # dwScale, dwRate: fps = rate / scale
                       0, count, biggest,
                       -1, 0,                  # dwQuality (default), dwSampleSize
                       0, 0, width, height)    # rcFrame
    strf = struct.pack("<IiiHH4sIiiII",        # BITMAPINFOHEADER
                       40, width, height, 1, 24, b"MJPG", width * height * 3, 0, 0, 0, 0)
    hdrl = _list(b"hdrl", _chunk(b"avih", avih) +
                 _list(b"strl", _chunk(b"strh", strh) + _chunk(b"strf", strf)))
    movi = b""
    index = b""
    for jpeg in jpegs:
        # idx1 offsets count from the 'movi' FOURCC.
        index += struct.pack("<4sIII", b"00dc", 0x10, 4 + len(movi), len(jpeg))
        movi += _chunk(b"00dc", jpeg)
    body = b"AVI " + hdrl + _list(b"movi", movi) + _chunk(b"idx1", index)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def record_pattern_jpegs(count):
    """`count` consecutive JPEGs of a 320x240@25 pattern, from /stream.mjpg."""
    with ff.Server("--source", f"pattern:{WIDTH}x{HEIGHT}@{FILE_FPS}",
                   "--detector", "none") as server:
        reader = ff.MjpegReader(server.port)
        try:
            jpegs = []
            while len(jpegs) < count:
                _, body = reader.read_part()
                if not ff.is_jpeg(body):
                    raise AssertionError(f"part {len(jpegs)} is not a JPEG: {body[:40]!r}")
                jpegs.append(body)
            return jpegs
        finally:
            reader.close()


def setUpModule():
    global _tmpdir, _video
    _tmpdir = tempfile.mkdtemp(prefix="freshframe_files_")
    jpegs = record_pattern_jpegs(FILE_FRAMES)
    for jpeg in jpegs:
        if ff.jpeg_size(jpeg) != (WIDTH, HEIGHT):
            raise AssertionError(f"recorded frame is {ff.jpeg_size(jpeg)}, not {WIDTH}x{HEIGHT}")
    _video = os.path.join(_tmpdir, "pattern.avi")
    with open(_video, "wb") as f:
        f.write(mjpeg_avi(jpegs, FILE_FPS, WIDTH, HEIGHT))


def tearDownModule():
    if _tmpdir is not None:
        shutil.rmtree(_tmpdir, ignore_errors=True)


def wait_for_state(server, state, timeout):
    """Polls /api/stats until source.state == state; returns (stats, seconds)."""
    start = time.monotonic()
    stats = None
    while time.monotonic() - start < timeout:
        stats = server.stats()
        if stats.get("source", {}).get("state") == state:
            return stats, time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"source.state never became {state!r} within {timeout}s; last stats "
                         f"source: {stats and stats.get('source')}\nstderr:\n{server.stderr()}")


class FilesTest(unittest.TestCase):

    def assertFpsNear(self, fps, what):
        self.assertIsInstance(fps, (int, float), what)
        self.assertLessEqual(abs(fps - FILE_FPS), FPS_TOLERANCE,
                             f"{what}: {fps:.2f} fps, expected {FILE_FPS} +/- {FPS_TOLERANCE}")

    def test_loop_plays_at_the_files_rate_past_its_end(self):
        seconds = 3  # longer than the 2 s file
        with ff.Server("--source", _video, "--loop", "--detector", "none") as server:
            result = ff.run_probe(server.url, seconds=seconds)
            summary = {k: v for k, v in result.items() if k != "_stderr"}
            self.assertEqual(result.get("_exit_status"), 0, f"probe failed: {result}")
            self.assertEqual(result["failed_clients"], 0, summary)
            self.assertFpsNear(result["per_client"][0]["fps"], "probe of a looping 25 fps file")
            # Past the end of the 50-frame file, without a gap.
            self.assertGreater(result["frames"], FILE_FRAMES + 10, summary)
            self.assertGreaterEqual(result["frames"], (FILE_FPS - FPS_TOLERANCE) * seconds - 2,
                                    summary)
            stats = server.stats()
            source = stats["source"]
            self.assertEqual(source["state"], "live", source)
            self.assertEqual(source["spec"], "file:" + _video, source)
            self.assertEqual((source["width"], source["height"]), (WIDTH, HEIGHT), source)
            self.assertAlmostEqual(float(source["fps"]), FILE_FPS, delta=0.01, msg=source)
            self.assertTrue(server.alive())

    def test_end_of_file_keeps_the_last_frame(self):
        started = time.monotonic()
        with ff.Server("--source", _video, "--detector", "none") as server:
            stats, _ = wait_for_state(server, "ended", timeout=15)
            played = time.monotonic() - started
            source = stats["source"]
            # Paced, not decoded as fast as possible: the 2 s file takes ~2 s.
            self.assertGreater(played, 1.5, f"ended after {played:.2f}s: not paced")
            self.assertIn("end of file " + _video, source["message"], source)
            self.assertIn(f"after {FILE_FRAMES} frames", source["message"], source)
            self.assertIn("end of file", server.stderr())
            time.sleep(0.5)
            self.assertTrue(server.alive(), f"server exited at the end of the file:\n"
                            f"{server.stderr()}")
            status, headers, body = server.get("/snapshot.jpg")
            self.assertEqual(status, 200, body[:200])
            self.assertTrue(ff.is_jpeg(body), body[:40])
            self.assertEqual(ff.jpeg_size(body), (WIDTH, HEIGHT))
            self.assertEqual(server.stats()["source"]["state"], "ended")

    def test_missing_file_exits_1_naming_it(self):
        missing = os.path.join(_tmpdir, "no-such-video.avi")
        cp = ff.run_cli(["run", "--port", "0", "--detector", "none", "--source", missing],
                        timeout=20)
        self.assertEqual(cp.returncode, 1, f"exit {cp.returncode}; stderr {cp.stderr[-2000:]!r}")
        self.assertIn(missing, cp.stderr)
        self.assertIn("no such file", cp.stderr)
        self.assertNotIn("serving on", cp.stdout)

    def test_unsupported_scheme_exits_2(self):
        cp = ff.run_cli(["run", "--port", "0", "--detector", "none", "--source", "foo://x"],
                        timeout=20)
        self.assertEqual(cp.returncode, 2, f"exit {cp.returncode}; stderr {cp.stderr[-2000:]!r}")
        self.assertIn("foo", cp.stderr)
        self.assertNotIn("serving on", cp.stdout)


if __name__ == "__main__":
    ff.main()
