#!/usr/bin/python3
"""/api/stats: shape and figures with one client; nothing is encoded while
nobody watches.

Run: /usr/bin/python3 tests/integration/test_stats.py --binary build/release/freshframe
"""

import time

import ffharness as ff

STAGES = ("capture", "grab", "infer", "annotate", "encode", "send")
PERCENTILE_KEYS = ("count", "p50", "p90", "p99", "max", "mean")
NUMBER = (int, float)


class StatsTest(ff.ServerTestCase):
    SERVER_ARGS = ()

    def _check_percentiles(self, p, where):
        self.assertIsInstance(p, dict, where)
        for k in PERCENTILE_KEYS:
            self.assertIn(k, p, where)
            self.assertIsInstance(p[k], NUMBER, f"{where}.{k}")

    def test_stats_with_one_client(self):
        client = ff.StreamingClient(self.server.port)
        try:
            time.sleep(3.0)
            self.assertIsNone(client.error, f"stream client failed: {client.error!r}")
            stats = self.server.stats()
            local_port = client.reader.local_port()
        finally:
            client.stop()
        text = str(stats)[:3000]
        for key in ("version", "uptime_s", "source", "detector", "overlay", "stages", "clients",
                    "client_count"):
            self.assertIn(key, stats, text)
        self.assertIsInstance(stats["version"], str)
        self.assertIsInstance(stats["uptime_s"], NUMBER)
        self.assertGreater(stats["uptime_s"], 2.0, text)
        src = stats["source"]
        for key in ("spec", "width", "height", "fps"):
            self.assertIn(key, src, text)
        self.assertEqual((src["width"], src["height"]), (640, 480), text)
        self.assertAlmostEqual(float(src["fps"]), 30.0, delta=0.01, msg=text)
        self.assertEqual(stats["detector"], "faces", text)
        self.assertEqual(stats["overlay"], "latest", text)

        for name in STAGES:
            self.assertIn(name, stats["stages"], text)
            st = stats["stages"][name]
            for key in ("fps", "frames", "skipped", "work_ms", "latency_ms"):
                self.assertIn(key, st, f"stages.{name}: {st}")
            self.assertIsInstance(st["fps"], NUMBER)
            self.assertIsInstance(st["frames"], int)
            self.assertIsInstance(st["skipped"], int)
            self._check_percentiles(st["work_ms"], f"stages.{name}.work_ms")
            self._check_percentiles(st["latency_ms"], f"stages.{name}.latency_ms")
        cap_fps = stats["stages"]["capture"]["fps"]
        self.assertTrue(25.5 <= cap_fps <= 34.5, f"stages.capture.fps {cap_fps} is not ~30")
        self.assertGreater(stats["stages"]["encode"]["frames"], 0, text)

        clients = stats["clients"]
        self.assertIsInstance(clients, list)
        self.assertEqual(len(clients), 1, f"clients: {clients}")
        self.assertEqual(stats["client_count"], 1, text)
        c = clients[0]
        for key in ("id", "peer", "path", "sent", "skipped", "fps", "connected_s"):
            self.assertIn(key, c, f"client entry: {c}")
        self.assertEqual(c["peer"], f"127.0.0.1:{local_port}", f"client entry: {c}")
        self.assertEqual(c["path"], "/stream.mjpg", f"client entry: {c}")
        self.assertGreater(c["sent"], 0, f"client entry: {c}")
        self.assertGreater(c["connected_s"], 1.0, f"client entry: {c}")


class IdleEncodeTest(ff.ServerTestCase):
    """Nothing is encoded while nobody watches."""
    SERVER_ARGS = ()

    def test_no_encoding_without_viewers(self):
        time.sleep(2.0)
        first = self.server.stats()["stages"]["encode"]["frames"]
        time.sleep(1.0)
        second = self.server.stats()["stages"]["encode"]["frames"]
        self.assertLessEqual(second - first, 2,
                             f"encode.frames went {first} -> {second} in 1 s with no viewer")
        client = ff.StreamingClient(self.server.port)
        try:
            time.sleep(1.5)
            self.assertIsNone(client.error, f"stream client failed: {client.error!r}")
            third = self.server.stats()["stages"]["encode"]["frames"]
        finally:
            client.stop()
        self.assertGreaterEqual(third - second, 15,
                                f"encode.frames went {second} -> {third} in 1.5 s with a viewer "
                                f"that received {client.parts} parts")


if __name__ == "__main__":
    ff.main()
