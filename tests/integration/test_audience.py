#!/usr/bin/python3
"""A large audience: 1000 MJPEG viewers of one stream, on loopback, all get
frames, and the server lets every one of them go when they leave.

999 viewers are one fanout_client process (bench/fanout/fanout_client.cpp,
built next to the binary: one epoll thread, counts the multipart parts of
each connection); the 1000th is `freshframe probe`, which reads the timecode
strip. The bounds are generous (the clients and the server share two cores):
this checks behaviour, not speed; bench/fanout measures speed.

Run: /usr/bin/python3 tests/integration/test_audience.py --binary build/release/freshframe
"""

import json
import os
import subprocess
import sys
import threading
import time

import ffharness as ff

VIEWERS = 1000
WINDOW_S = 5.0
MIN_PARTS = 5  # each viewer, over the window: 1 fps of the source's 30


def fanout_client():
    return os.path.join(os.path.dirname(ff.BINARY), "bench", "fanout_client")


class Audience(ff.ServerTestCase):
    SERVER_ARGS = ("--source", "pattern:640x480@30", "--detector", "none",
                   "--max-clients", str(VIEWERS + 10), "--max-connections-per-address", "0")

    def wait_clients(self, want, timeout):
        deadline = time.monotonic() + timeout
        count = None
        while time.monotonic() < deadline:
            count = self.server.stats().get("client_count")
            if count == want:
                return count
            time.sleep(0.25)
        return count

    def test_a_thousand_viewers_all_get_frames(self):
        client = fanout_client()
        self.assertTrue(os.access(client, os.X_OK), f"fanout_client not built: {client}")
        viewers = subprocess.Popen(
            [client, "--url", self.server.stream_url(), "--clients", str(VIEWERS - 1),
             "--stdin-control", "--ready-timeout", "60"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=ff._die_with_parent)
        killer = threading.Timer(100, viewers.kill)  # bounded whatever happens
        killer.start()
        try:
            ready = viewers.stdout.readline().strip()
            self.assertEqual(ready, f"ready {VIEWERS - 1}/{VIEWERS - 1} streaming",
                             f"not every viewer streamed: {ready!r}\n{self.server.stderr(3000)}")
            probe = ff.ProbeProcess(self.server.stream_url(), seconds=WINDOW_S + 2)
            probe.start()
            time.sleep(1.0)
            viewers.stdin.write("go\n")
            viewers.stdin.flush()
            time.sleep(WINDOW_S / 2)
            connected = self.server.stats().get("client_count")
            time.sleep(WINDOW_S / 2)
            viewers.stdin.write("stop\n")
            viewers.stdin.flush()
            out, err = viewers.communicate(timeout=30)
            result = json.loads(out.strip().splitlines()[-1])
            probed = probe.result(timeout=30)
        finally:
            killer.cancel()
            if viewers.poll() is None:
                viewers.kill()
                viewers.communicate()

        self.assertEqual(connected, VIEWERS, "clients in /api/stats during the window")
        self.assertEqual(result["failed"], 0, f"viewers failed: {result.get('errors')}")
        parts = [c["parts"] for c in result["per_client"]]
        self.assertEqual(len(parts), VIEWERS - 1)
        starved = [p for p in parts if p < MIN_PARTS]
        sys.stderr.write(f"{VIEWERS} viewers: parts per viewer in {WINDOW_S:g} s: min "
                         f"{min(parts)}, median {sorted(parts)[len(parts) // 2]}, max "
                         f"{max(parts)}; fps min/median {result['fps']}\n")
        self.assertFalse(starved, f"{len(starved)} viewers got fewer than {MIN_PARTS} parts in "
                                  f"{WINDOW_S:g} s")
        # The probe reads the capture timecode off every frame it gets.
        self.assertEqual(probed.get("failed_clients"), 0, f"probe: {probed}")
        self.assertGreaterEqual(probed.get("frames", 0), MIN_PARTS, f"probe: {probed}")
        self.assertEqual(probed.get("no_strip"), 0, f"probe: frames without a strip: {probed}")
        self.assertServerAlive()
        # Every session is let go once its viewer has left.
        self.assertEqual(self.wait_clients(0, 20), 0, "sessions left after the viewers closed")


if __name__ == "__main__":
    ff.main()
