#!/usr/bin/env python3
"""H.264 out: /stream.h264 and /ws/h264, decoded by PyAV (Debian python3-av).

- /stream.h264 decodes from its first byte (it starts at an IDR), at the
  source rate, the timecode strip reads on every frame, the latency is
  bounded, and it costs far fewer bytes than /stream.mjpg of the same frames;
- /ws/h264: one message per access unit, header "FFH4", consecutive
  sequence numbers, the keyframe flag true exactly for IDRs, the first one an
  IDR; every message decodes on its own arrival (no frame held back);
- a client that stops reading skips to the next IDR: after any gap in the
  sequence the next message is an IDR, nothing fails to decode, and its
  skips are counted in /api/stats;
- a flood of key requests forces no more IDRs than the rate limit allows;
- nothing is encoded without an H.264 viewer; /api/stats and /metrics show
  the encoder and its viewers;
- bad input: per-client options (400), no Upgrade (426), no credentials
  (401), an unknown --h264-encoder (exit 2 naming the available ones),
  --h264-encoder none (404).
"""
import socket
import statistics
import struct
import sys
import time
import unittest

import ffharness as ff
import jpeg_strip

try:
    import av
except ImportError:  # pragma: no cover - Debian's python3-av is a test dependency
    av = None

FFH4_HEADER = struct.Struct("<4sHHQQHHB3x")  # docs/websocket.md, "/ws/h264"
OP_TEXT = 0x1
WIDTH, HEIGHT = 640, 480
SOURCE = f"pattern:{WIDTH}x{HEIGHT}@30"


def nal_types(annexb):
    """The NAL unit types of an Annex-B access unit, in order."""
    types = []
    i = 0
    while True:
        i = annexb.find(b"\x00\x00\x01", i)
        if i < 0 or i + 3 >= len(annexb):
            return types
        types.append(annexb[i + 3] & 0x1F)
        i += 3


def parse_h264_message(payload):
    magic, version, header_length, sequence, capture_us, width, height, flags = \
        FFH4_HEADER.unpack_from(payload)
    return {"magic": magic, "version": version, "header_length": header_length,
            "sequence": sequence, "capture_us": capture_us, "width": width,
            "height": height, "keyframe": bool(flags & 1), "au": payload[header_length:]}


def strip_of(frame):
    return jpeg_strip.read_strip_gray(frame.to_ndarray(format="gray"),
                                      int(ff.mono_s() * 1e6) + 1_000_000)


def read_messages(ws, seconds, limit=10_000):
    """Binary messages for `seconds`, each with its arrival (CLOCK_MONOTONIC s)."""
    out = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(out) < limit:
        fin, opcode, payload = ws.read_frame()
        if opcode == 0x2:
            out.append((ff.mono_s(), parse_h264_message(payload)))
    return out


def client_entry(stats, path):
    return next((c for c in stats.get("clients", []) if c["path"].startswith(path)), None)


@unittest.skipIf(av is None, "PyAV (Debian python3-av) is not installed")
class H264Stream(ff.ServerTestCase):
    SERVER_ARGS = ("--source", SOURCE, "--detector", "none")

    def test_stream_h264_decodes_at_source_rate_with_the_strip(self):
        sock = ff.connect(self.server.port)
        sock.sendall(f"GET /stream.h264 HTTP/1.1\r\nHost: 127.0.0.1:{self.server.port}\r\n\r\n"
                     .encode())
        buf = ff._Buffered(sock)
        status, _, headers = ff._parse_head(buf.read_until(b"\r\n\r\n"))
        self.assertEqual(status, 200)
        self.assertEqual(headers.get("content-type"), "video/h264")
        codec = av.CodecContext.create("h264", "r")
        frames, latencies, unread = [], [], 0
        received = len(buf.buf)
        data, buf.buf = buf.buf, b""
        start = time.monotonic()
        first_frame_at = None
        while time.monotonic() - start < 5.0:
            for packet in codec.parse(data):
                for frame in codec.decode(packet):
                    now = ff.mono_s()
                    first_frame_at = first_frame_at or now
                    strip = strip_of(frame)
                    if strip is None:
                        unread += 1
                    else:
                        latencies.append((now * 1e6 - strip[0]) / 1000.0)
                    frames.append(now)
            data = sock.recv(1 << 16)
            self.assertTrue(data, "server closed /stream.h264")
            received += len(data)
        elapsed = time.monotonic() - start
        sock.close()
        self.assertGreater(len(frames), 30, "too few frames decoded")
        self.assertEqual(unread, 0, f"{unread} of {len(frames)} frames without a readable strip")
        fps = (len(frames) - 1) / (frames[-1] - frames[0])
        ff.assert_fps_within(self, fps, "/stream.h264")
        # Generous: the parser holds each frame until the next one starts.
        self.assertLess(statistics.median(latencies), 250, f"latency {latencies[:20]}")
        h264_rate = received / elapsed

        reader = ff.MjpegReader(self.server.port)
        mjpeg_bytes, start = 0, time.monotonic()
        while time.monotonic() - start < 3.0:
            _, body = reader.read_part()
            mjpeg_bytes += len(body)
        reader.close()
        mjpeg_rate = mjpeg_bytes / (time.monotonic() - start)
        print(f"\n/stream.h264 {h264_rate * 8 / 1000:.0f} kbit/s, /stream.mjpg "
              f"{mjpeg_rate * 8 / 1000:.0f} kbit/s (ratio {h264_rate / mjpeg_rate:.3f}), "
              f"latency p50 {statistics.median(latencies):.1f} ms", file=sys.stderr)
        self.assertLess(h264_rate, mjpeg_rate / 3, "H.264 should cost far fewer bytes than MJPEG")

    def test_ws_h264_messages_decode_one_by_one(self):
        ws = ff.WsClient(self.server.port, "/ws/h264")
        self.assertEqual(ws.status, 101)
        messages = read_messages(ws, 3.0)
        ws.close()
        self.assertGreater(len(messages), 45)
        first = messages[0][1]
        self.assertTrue(first["keyframe"], "the first access unit must be an IDR")
        codec = av.CodecContext.create("h264", "r")
        latencies = []
        for i, (arrived, m) in enumerate(messages):
            self.assertEqual(m["magic"], b"FFH4")
            self.assertEqual(m["version"], 1)
            self.assertEqual((m["width"], m["height"]), (WIDTH, HEIGHT))
            if i:
                self.assertEqual(m["sequence"], messages[i - 1][1]["sequence"] + 1,
                                 "a reader that keeps up gets every access unit")
            types = nal_types(m["au"])
            self.assertEqual(m["keyframe"], 5 in types, f"flag vs NAL types {types}")
            if m["keyframe"]:
                self.assertLess(types.index(7), types.index(5), "SPS before the IDR")
                self.assertIn(8, types, "PPS with the IDR")
            decoded = codec.decode(av.Packet(m["au"]))
            self.assertEqual(len(decoded), 1, f"access unit {i} gave {len(decoded)} frames: "
                             "a frame held back or a B-frame")
            strip = strip_of(decoded[0])
            self.assertIsNotNone(strip, f"no strip on access unit {i}")
            self.assertEqual(strip[0], m["capture_us"], "header stamp = the stamp in the pixels")
            latencies.append((arrived * 1e6 - m["capture_us"]) / 1000.0)
        self.assertLess(statistics.median(latencies), 150, f"latency {latencies[:20]}")

    def test_slow_reader_skips_to_the_next_idr(self):
        ws = ff.WsClient(self.server.port, "/ws/h264")
        ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        messages = read_messages(ws, 0.5)
        time.sleep(2.5)  # not reading: the server must skip, not queue
        messages += read_messages(ws, 5.0)
        codec = av.CodecContext.create("h264", "r")
        gaps = 0
        for i, (_, m) in enumerate(messages):
            if i and m["sequence"] != messages[i - 1][1]["sequence"] + 1:
                gaps += 1
                self.assertTrue(m["keyframe"], f"after a gap, access unit {m['sequence']} "
                                "is not an IDR")
            for frame in codec.decode(av.Packet(m["au"])):
                self.assertIsNotNone(strip_of(frame))
        self.assertGreaterEqual(gaps, 1, "the stalled reader should have skipped")
        stats = self.server.stats()
        entry = client_entry(stats, "/ws/h264")
        ws.close()
        self.assertIsNotNone(entry, stats.get("clients"))
        self.assertGreaterEqual(entry["skips_to_key"], 1, entry)
        self.assertGreaterEqual(stats["h264"]["skips_to_key"], 1, stats["h264"])

    def test_key_request_flood_is_rate_limited(self):
        before = self.server.stats()["h264"]
        ws = ff.WsClient(self.server.port, "/ws/h264")
        read_messages(ws, 0.3)
        start = time.monotonic()
        while time.monotonic() - start < 3.0:
            ws.send_frame(OP_TEXT, b"key")
            time.sleep(0.01)
        elapsed = time.monotonic() - start
        after = self.server.stats()["h264"]
        ws.close()
        forced = sum(after["idr_forced"].values()) - sum(before["idr_forced"].values())
        requested = (after["idr_requested"]["client"] - before["idr_requested"].get("client", 0))
        self.assertGreater(requested, 100, after)
        self.assertGreaterEqual(forced, 2, "key requests should force IDRs")
        self.assertLessEqual(forced, 2 * elapsed + 3, f"{forced} IDRs in {elapsed:.1f} s")

    def test_stats_and_metrics(self):
        ws = ff.WsClient(self.server.port, "/ws/h264")
        read_messages(ws, 1.0)
        stats = self.server.stats()
        metrics = ff.http_get(self.server.port, "/metrics").body.decode()
        ws.close()
        h264 = stats["h264"]
        for key in ("encoder", "frames", "keyframes", "bytes", "kbps", "idr_requested",
                    "idr_forced", "viewers", "skips_to_key", "dropped"):
            self.assertIn(key, h264)
        self.assertEqual(h264["encoder"], "libx264")
        self.assertGreaterEqual(h264["idr_requested"]["join"], 1)
        self.assertIsNotNone(client_entry(stats, "/ws/h264"))
        for series in ('freshframe_h264_frames_total{stream="default"}',
                       'freshframe_h264_idr_forced_total{stream="default",reason="join"}',
                       'freshframe_clients{stream="default",route="websocket-h264"} 1'):
            self.assertIn(series, metrics)

    def test_no_encoding_without_viewers(self):
        ff.wait_for(lambda: not client_entry(self.server.stats(), "/ws/h264"), 5, "no viewers")
        time.sleep(0.5)
        before = self.server.stats()["h264"]["frames"]
        time.sleep(1.0)
        self.assertEqual(self.server.stats()["h264"]["frames"], before)

    def test_bad_requests(self):
        port = self.server.port
        for path in ("/stream.h264?fps=5", "/stream.h264?width=320", "/stream.h264?mirror=1"):
            self.assertEqual(ff.http_get(port, path).status, 400, path)
        self.assertEqual(ff.http_get(port, "/ws/h264").status, 426)
        head = ff.http_get(port, "/stream.h264", method="HEAD")
        self.assertEqual(head.status, 200)
        self.assertEqual(head.headers.get("content-type"), "video/h264")
        self.assertEqual(ff.http_get(port, "/streams/nosuch/stream.h264").status, 404)


@unittest.skipIf(av is None, "PyAV (Debian python3-av) is not installed")
class H264Auth(ff.ServerTestCase):
    SERVER_ARGS = ("--source", SOURCE, "--detector", "none", "--token", "s3cret-token-123")

    def test_credentials_required(self):
        port = self.server.port
        self.assertEqual(ff.http_get(port, "/stream.h264").status, 401)
        refused = ff.WsClient(port, "/ws/h264")
        self.assertEqual(refused.status, 401)
        refused.close()
        ws = ff.WsClient(port, "/ws/h264?token=s3cret-token-123")
        self.assertEqual(ws.status, 101)
        self.assertTrue(read_messages(ws, 1.0, limit=1)[0][1]["keyframe"])
        ws.close()


class H264Flags(unittest.TestCase):
    def test_unknown_encoder_lists_the_available_ones(self):
        result = ff.run_cli(["run", "--source", SOURCE, "--h264-encoder", "nosuch264"])
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn("libx264", result.stderr)

    def test_encoder_none_has_no_h264(self):
        with ff.Server("--source", SOURCE, "--detector", "none", "--h264-encoder", "none") as srv:
            self.assertEqual(ff.http_get(srv.port, "/stream.h264").status, 404)
            self.assertNotIn("h264", srv.stats())
            self.assertEqual(ff.http_get(srv.port, "/stream.mjpg", method="HEAD").status, 200)


if __name__ == "__main__":
    ff.main()
