#!/usr/bin/python3
"""Slow consumers: a client that never reads does not slow anyone else, and a
client that reads slowly skips frames instead of getting a backlog.

Run: /usr/bin/python3 tests/integration/test_slow_clients.py --binary build/release/freshframe
"""

import sys
import time

import ffharness as ff

PAUSE_S = 2.0          # how long the slow reader stops reading
FRESH_S = 0.5          # a part counts as fresh if captured less than this ago
PARTS_AFTER_PAUSE = 4  # the part in flight + what kernel buffers may hold


class SlowClients(ff.ServerTestCase):
    SERVER_ARGS = ()

    def _stalled_client(self, path="/stream.mjpg"):
        # Tiny receive buffer, set before connect(); never recv().
        s = ff.connect(self.server.port, rcvbuf=2048)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        return s

    def test_stalled_client_does_not_slow_others(self):
        stalled = []
        try:
            stalled.append(self._stalled_client("/stream.mjpg"))
            stalled.append(self._stalled_client("/?action=stream"))
            time.sleep(1.0)  # let their buffers fill up
            result = ff.run_probe(self.server.url, seconds=5)
            ff.assert_probe_ok(self, result, clients=1, p99_ms=200.0)
            self.assertServerAlive()
            # For the log only: how the server accounts for the stalled ones.
            try:
                stats = self.server.stats()
                sys.stderr.write(f"clients while stalled: {stats.get('clients')}\n")
            except AssertionError as e:
                sys.stderr.write(f"(stats unavailable: {e})\n")
        finally:
            for s in stalled:
                s.close()

    def test_slow_reader_gets_fresh_frames(self):
        reader = ff.MjpegReader(self.server.port, "/stream.mjpg", rcvbuf=4096)
        try:
            self.assertEqual(reader.status, 200, reader.raw_head)
            headers, _ = reader.read_part()
            last_stamp = ff.part_timestamp(headers)
            for round_ in range(2):
                time.sleep(PAUSE_S)  # read nothing
                ages, stamps = [], []
                for _ in range(PARTS_AFTER_PAUSE):
                    headers, body = reader.read_part()
                    stamp = ff.part_timestamp(headers)
                    ages.append(round(ff.mono_s() - stamp, 3))
                    stamps.append(stamp)
                    self.assertGreater(stamp, last_stamp, "a part went back in time")
                    last_stamp = stamp
                    if ages[-1] < FRESH_S:
                        break
                sys.stderr.write(f"round {round_}: ages of parts after a {PAUSE_S}s pause: {ages}\n")
                self.assertLess(min(ages), FRESH_S,
                                f"after a {PAUSE_S}s pause the next {len(ages)} parts were all "
                                f"old (ages {ages} s): frames were queued, not skipped (parts "
                                f"already in the kernel's send buffer count too: a server must "
                                f"bound it, e.g. a small SO_SNDBUF or SIOCOUTQ before writing)")
            self.assertServerAlive()
        finally:
            reader.close()


if __name__ == "__main__":
    ff.main()
