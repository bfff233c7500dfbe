#!/usr/bin/python3
"""The command line: bad values exit 2 with one line, a port in use and a
missing cascade exit 1 with a clear message, SIGTERM/SIGINT exit 0 quickly.

Run: /usr/bin/python3 tests/integration/test_cli.py --binary build/release/freshframe
"""

import signal
import socket
import subprocess
import time
import unittest

import ffharness as ff

BAD_ARGS = [
    ["--source", "pattern:0x0@0"],
    ["--port", "70000"],
    ["--port", "-1"],
    ["--quality", "0"],
    ["--quality", "101"],
    ["--detector", "bogus"],
    ["--overlay", "bogus"],
    ["--bogus"],
]


def nonempty_lines(text):
    return [line for line in text.splitlines() if line.strip()]


class CliTest(unittest.TestCase):

    def test_bad_values_exit_2_with_one_line(self):
        for bad in BAD_ARGS:
            with self.subTest(args=bad):
                # --port 0 (unless the case is about --port) so a binary that
                # wrongly starts does not collide with anything.
                args = ["run"] + ([] if "--port" in bad else ["--port", "0"]) + bad
                cp = ff.run_cli(args, timeout=15)
                lines = nonempty_lines(cp.stderr)
                self.assertEqual(cp.returncode, 2, f"{bad}: exit {cp.returncode}, stderr {cp.stderr!r}")
                self.assertEqual(len(lines), 1, f"{bad}: stderr should be one line: {cp.stderr!r}")
                self.assertNotIn("serving on", cp.stdout)

    def test_port_in_use_exits_1(self):
        blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            blocker.bind(("127.0.0.1", 0))
            blocker.listen(1)
            port = blocker.getsockname()[1]
            cp = ff.run_cli(["run", "--port", str(port), "--detector", "none"], timeout=20)
            self.assertEqual(cp.returncode, 1, f"exit {cp.returncode} (negative = killed by a signal); "
                             f"stderr {cp.stderr[-2000:]!r}")
            lines = [line for line in nonempty_lines(cp.stderr) if str(port) in line]
            self.assertTrue(lines, f"no stderr line mentions port {port}: {cp.stderr[-2000:]!r}")
            self.assertNotIn("serving on", cp.stdout)
        finally:
            blocker.close()

    def test_missing_cascade_exits_1(self):
        path = "/nonexistent/x.xml"
        cp = ff.run_cli(["run", "--port", "0", "--cascade", path], timeout=20)
        self.assertEqual(cp.returncode, 1, f"exit {cp.returncode}; stderr {cp.stderr[-2000:]!r}")
        self.assertIn(path, cp.stderr, "the error should name the cascade path tried")
        self.assertNotIn("serving on", cp.stdout)

    def _check_signal(self, sig, with_client):
        server = ff.Server("--detector", "none")
        reader = None
        try:
            server.start()
            if with_client:
                reader = ff.MjpegReader(server.port, "/stream.mjpg")
                reader.read_part()
            t0 = time.monotonic()
            server.proc.send_signal(sig)
            try:
                rc = server.proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                self.fail(f"{sig.name}: still running 2 s after the signal\n"
                          f"stderr:\n{server.stderr()}")
            took = time.monotonic() - t0
            self.assertEqual(rc, 0, f"{sig.name}: exit {rc} after {took:.2f}s\n"
                             f"stderr:\n{server.stderr()}")
        finally:
            if reader is not None:
                reader.close()
            server.close()

    def test_sigterm_and_sigint_exit_0(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            for with_client in (False, True):
                with self.subTest(signal=sig.name, streaming_client=with_client):
                    self._check_signal(sig, with_client)


if __name__ == "__main__":
    ff.main()
