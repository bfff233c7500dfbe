#!/usr/bin/python3
"""More ways to watch: per-client ?fps, the pixel variants ?mirror=1 and
?width=N (encoded once per variant, not per client; widths rounded down to a
multiple of 16; at most --max-variants at a time, 503 beyond), and GET
/ws/stream read by a WebSocket client written here by hand (standard library
only).

The tests assert behaviour, not speed: frames keep arriving, sequence numbers
advance, a variant costs one encode per source frame however many watch it.

Run: /usr/bin/python3 tests/integration/test_variants.py --binary build/release/freshframe
"""

import json
import struct
import time

import ffharness as ff

FFWS_HEADER = struct.Struct("<4sHHQQHH4x")  # docs/websocket.md
OP_CLOSE, OP_PING, OP_PONG, OP_BINARY = 0x8, 0x9, 0xA, 0x2


def parse_message(payload):
    magic, version, header_length, sequence, capture_us, width, height = \
        FFWS_HEADER.unpack_from(payload)
    return {"magic": magic, "version": version, "header_length": header_length,
            "sequence": sequence, "capture_us": capture_us, "width": width, "height": height,
            "jpeg": payload[header_length:]}


def assert_streamed(tc, result, clients=1):
    """`probe --json` output: every client read frames, each with a readable
    timecode strip (so latency was measured); no rate or latency bound."""
    summary = json.dumps({k: v for k, v in result.items() if k != "_stderr"})[:3000]
    tc.assertEqual(result.get("_exit_status", 0), 0, summary)
    tc.assertEqual(result["clients"], clients, summary)
    tc.assertEqual(result["failed_clients"], 0, summary)
    tc.assertEqual(result["no_strip"], 0, summary)
    for i, client in enumerate(result["per_client"]):
        tc.assertFalse(client.get("error"), f"client {i}: {summary}")
        tc.assertGreaterEqual(client["frames"], 3, f"client {i}: {summary}")
    tc.assertGreater(result["latency_ms"]["count"], 0, summary)


def wait_no_variants(tc, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not tc.server.stats().get("variants"):
            return
        time.sleep(0.1)
    tc.fail(f"variants still listed: {tc.server.stats().get('variants')}")


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


class Variants(ff.ServerTestCase):
    SERVER_ARGS = ("--detector", "none")

    def _wait_no_variants(self, timeout=5.0):
        wait_no_variants(self, timeout)

    def test_probe_reads_latency_from_the_mirrored_strip(self):
        result = ff.run_probe(self.server.stream_url("/stream.mjpg?mirror=1"), seconds=3)
        assert_streamed(self, result)
        self._wait_no_variants()
        self.assertServerAlive()

    def test_two_mirrored_clients_cost_one_encode_per_frame(self):
        probe = ff.ProbeProcess(self.server.stream_url("/stream.mjpg?mirror=1"), seconds=5,
                                clients=2).start()
        try:
            self.assertTrue(wait_for(lambda: any(v["clients"] == 2 for v in
                                                 self.server.stats().get("variants", []))),
                            self.server.stats().get("variants"))
            first = self.server.stats()
            time.sleep(1.5)
            stats = self.server.stats()
        finally:
            result = probe.result(timeout=30)
        assert_streamed(self, result, clients=2)
        variants = stats.get("variants")
        self.assertEqual(len(variants), 1, variants)
        self.assertEqual(variants[0]["mirror"], True, variants)
        self.assertEqual(variants[0]["clients"], 2, variants)
        self.assertEqual(variants[0]["width"], 640, variants)
        # One mirrored encode per source frame, not one per client: over the
        # same interval the variant encoder encoded no more frames than the
        # source produced (+2 for the two samples' offsets), and some.
        encoded = (stats["stages"]["encode_variants"]["frames"]
                   - first["stages"]["encode_variants"]["frames"])
        captured = stats["stages"]["capture"]["frames"] - first["stages"]["capture"]["frames"]
        self.assertGreater(encoded, 0, stats["stages"])
        self.assertLessEqual(encoded, captured + 2, stats["stages"])
        self.assertEqual(variants[0]["encoded_frames"] - first["variants"][0]["encoded_frames"],
                         encoded, variants)
        # Nobody asked for the default stream.
        self.assertEqual(stats["watchers"], 0)
        self._wait_no_variants()

    def test_nearby_widths_share_one_rounded_variant(self):
        readers = [ff.MjpegReader(self.server.port, f"/stream.mjpg?width={w}")
                   for w in (320, 330, 334)]
        try:
            for reader in readers:
                self.assertEqual(reader.status, 200, reader.raw_head)
                _, body = reader.read_part()
                self.assertEqual(ff.jpeg_size(body), (320, 240))  # rounded down to 16s
            variants = self.server.stats()["variants"]
            self.assertEqual(len(variants), 1, variants)
            self.assertEqual((variants[0]["width"], variants[0]["clients"]), (320, 3), variants)
        finally:
            for reader in readers:
                reader.close()
        self._wait_no_variants()

    def test_width_scales_the_jpeg(self):
        reader = ff.MjpegReader(self.server.port, "/stream.mjpg?width=320")
        try:
            self.assertEqual(reader.status, 200, reader.raw_head)
            for _ in range(3):
                _, body = reader.read_part()
                self.assertTrue(ff.is_jpeg(body))
                self.assertEqual(ff.jpeg_size(body), (320, 240))
        finally:
            reader.close()
        result = ff.run_probe(self.server.stream_url("/?action=stream&width=320"), seconds=2)
        assert_streamed(self, result)  # the strip is drawn again at 320 px

    def test_fps_caps_a_client(self):
        result = ff.run_probe(self.server.stream_url("/stream.mjpg?fps=10"), seconds=3)
        assert_streamed(self, result)
        # The cap holds (a slow machine only sends fewer): 10/s for 3 s, +2.
        self.assertLessEqual(result["per_client"][0]["frames"], 10 * 3 + 2, result)

    def test_invalid_options_are_400(self):
        for path in ("/stream.mjpg?fps=0", "/stream.mjpg?fps=31", "/stream.mjpg?fps=abc",
                     "/stream.mjpg?width=17", "/stream.mjpg?width=1280", "/?action=stream&mirror=x",
                     "/ws/stream?width=8"):
            status, _, body = self.server.get(path)
            self.assertEqual(status, 400, f"{path}: {body!r}")
            self.assertTrue(any(word in body for word in (b"fps", b"width", b"mirror")), body)
        status, headers, _ = self.server.get("/ws/stream")  # no upgrade
        self.assertEqual(status, 426)
        self.assertEqual(headers.get("upgrade"), "websocket")
        self.assertServerAlive()

    def test_websocket_messages(self):
        ws = ff.WsClient(self.server.port, "/ws/stream")
        try:
            self.assertEqual(ws.status, 101, ws.headers)
            self.assertEqual(ws.headers.get("sec-websocket-accept"), ws.expected_accept)
            last = 0
            for i in range(10):
                fin, opcode, payload = ws.read_frame()
                now_us = ff.mono_s() * 1e6
                self.assertTrue(fin)
                self.assertEqual(opcode, OP_BINARY)
                m = parse_message(payload)
                self.assertEqual(m["magic"], b"FFWS")
                self.assertEqual((m["version"], m["header_length"]), (1, 32))
                self.assertGreater(m["sequence"], last, f"message {i}")
                last = m["sequence"]
                age_s = (now_us - m["capture_us"]) / 1e6
                self.assertTrue(-0.01 < age_s < 1.0, f"message {i}: {age_s:.3f}s old")
                self.assertTrue(ff.is_jpeg(m["jpeg"]))
                self.assertEqual(ff.jpeg_size(m["jpeg"]), (m["width"], m["height"]))
                self.assertEqual((m["width"], m["height"]), (640, 480))
            # A ping is answered with a pong carrying the same data.
            ws.send_frame(OP_PING, b"hello")
            for _ in range(50):
                _, opcode, payload = ws.read_frame()
                if opcode == OP_PONG:
                    self.assertEqual(payload, b"hello")
                    break
            else:
                self.fail("no pong")
            # A close frame gets one back.
            ws.send_frame(OP_CLOSE, struct.pack(">H", 1000))
            for _ in range(50):
                _, opcode, _ = ws.read_frame()
                if opcode == OP_CLOSE:
                    break
            else:
                self.fail("no close frame")
        finally:
            ws.close()

    def test_websocket_variant_and_rate(self):
        ws = ff.WsClient(self.server.port, "/ws/stream?mirror=1&width=320&fps=5")
        try:
            self.assertEqual(ws.status, 101, ws.headers)
            ws.read_frame()
            start = time.monotonic()
            sequences = []
            while time.monotonic() - start < 2.0:
                _, opcode, payload = ws.read_frame()
                self.assertEqual(opcode, OP_BINARY)
                m = parse_message(payload)
                self.assertEqual(ff.jpeg_size(m["jpeg"]), (320, 240))
                sequences.append(m["sequence"])
            elapsed = time.monotonic() - start
            # Frames keep coming, each newer than the last; and never faster
            # than the cap (a slow machine only sends fewer): 5/s, +2 for the
            # edges of the interval.
            self.assertGreaterEqual(len(sequences), 2, sequences)
            self.assertEqual(sequences, sorted(set(sequences)), sequences)
            self.assertLessEqual(len(sequences), 5 * elapsed + 2, sequences)
        finally:
            ws.close()
        self._wait_no_variants()


class VariantCap(ff.ServerTestCase):
    """--max-variants: a new distinct variant beyond the cap gets 503 before
    any stream header; viewers of the variants in use are unaffected."""

    SERVER_ARGS = ("--detector", "none", "--max-variants", "2")

    def _refused(self, path):
        headers = None
        if path.startswith("/ws/"):  # a real handshake: a plain GET gets 426 first
            headers = {"Upgrade": "websocket", "Connection": "Upgrade",
                       "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                       "Sec-WebSocket-Version": "13"}
        status, headers, body = self.server.get(path, headers=headers)
        self.assertEqual(status, 503, f"{path}: {body!r}")
        self.assertEqual(headers.get("retry-after"), "5", headers)
        self.assertTrue(headers.get("content-type", "").startswith("application/json"), headers)
        reason = json.loads(body)["error"]
        self.assertIn("--max-variants", reason)
        self.assertNotIn("\n", reason)
        return reason

    def test_a_variant_beyond_the_cap_is_refused_and_the_others_stream_on(self):
        viewers = [ff.StreamingClient(self.server.port, "/stream.mjpg?width=320"),
                   ff.StreamingClient(self.server.port, "/stream.mjpg?mirror=1")]
        try:
            self.assertTrue(wait_for(lambda: all(v.parts >= 2 for v in viewers)),
                            [v.error for v in viewers])
            log_lines = len(self.server.stderr(tail=1 << 20).splitlines())
            # N+1 distinct variants: the last is refused, on every route, and
            # with the variants in use named.
            reason = self._refused("/stream.mjpg?width=160")
            self.assertIn("width=320", reason)
            self.assertIn("mirror=1", reason)
            self._refused("/?action=stream&mirror=1&width=320")
            self._refused("/ws/stream?width=480")
            for _ in range(20):  # a client that retries at once
                self._refused("/stream.mjpg?width=160")
            # ... and no log flood: at most one line per refused request (none
            # at the default level).
            self.assertLessEqual(len(self.server.stderr(tail=1 << 20).splitlines()) - log_lines,
                                 23, self.server.stderr())
            # More clients of a variant in use, and the default stream, are
            # served: 330 is the 320 variant (rounded down).
            for path in ("/stream.mjpg?width=330", "/stream.mjpg?mirror=1", "/stream.mjpg"):
                reader = ff.MjpegReader(self.server.port, path)
                try:
                    self.assertEqual(reader.status, 200, f"{path}: {reader.raw_head!r}")
                    reader.read_part()
                finally:
                    reader.close()
            # The viewers kept streaming throughout.
            before = [v.parts for v in viewers]
            self.assertTrue(wait_for(lambda: all(v.parts >= b + 5 for v, b in
                                                 zip(viewers, before))),
                            ([v.parts for v in viewers], before, [v.error for v in viewers]))
            self.assertEqual([v.error for v in viewers], [None, None])
            stats = self.server.stats()
            variants = stats["variants"]
            self.assertEqual(sorted((v["mirror"], v["width"]) for v in variants),
                             [(False, 320), (True, 640)], variants)
            self.assertEqual(stats["rejected"]["max_variants"], 23, stats["rejected"])
            # A HEAD or a plain GET of the WebSocket route takes no place.
            self.assertEqual(self.server.get("/stream.mjpg?width=160", method="HEAD").status, 200)
            self.assertEqual(self.server.get("/ws/stream?width=160").status, 426)
        finally:
            for viewer in viewers:
                viewer.stop()
        # Once the viewers are gone, their places are free again.
        wait_no_variants(self)
        reader = ff.MjpegReader(self.server.port, "/stream.mjpg?width=160")
        try:
            self.assertEqual(reader.status, 200, reader.raw_head)
            _, body = reader.read_part()
            self.assertEqual(ff.jpeg_size(body), (160, 120))
        finally:
            reader.close()
        wait_no_variants(self)
        self.assertServerAlive()


if __name__ == "__main__":
    ff.main()
