#!/usr/bin/python3
"""The bus protocol as documented: docs/examples/bus_reader.py, a reader
written from docs/bus-protocol.md alone (Python, mmap, futex), reads the
frames `freshframe capture` publishes, survives a SIGKILLed and restarted
writer, and rejects objects that are not a bus.

Run: /usr/bin/python3 tests/integration/test_bus_python.py --binary build/release/freshframe
"""

import os
import re
import signal
import subprocess
import tempfile
import time
import unittest

import ffharness as ff

READER = os.path.join(ff.REPO_ROOT, "docs", "examples", "bus_reader.py")
READER_PYTHON = "/usr/bin/python3"  # the example's documented interpreter (with python3-numpy)
SHM = "/dev/shm"
LINE_RE = re.compile(r"^index=(\d+) sequence=(\d+) (\d+)x(\d+) capture_us=(-?\d+) latency_ms=(-?[0-9.]+)$")


def have_numpy():
    try:
        return subprocess.run([READER_PYTHON, "-c", "import numpy"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


HAVE_NUMPY = have_numpy()


@unittest.skipUnless(HAVE_NUMPY, f"numpy is not importable by {READER_PYTHON} "
                     "(install python3-numpy): the example reader needs it")
class BusPythonTest(unittest.TestCase):

    def setUp(self):
        self.procs = []   # every process this test started (stopped in tearDown, by PID)
        self.names = []   # bus names whose /dev/shm objects this test may have created

    def tearDown(self):
        for proc, _ in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=ff.STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for proc, log in self.procs:
            for f in (log, proc.stdout, proc.stderr):
                if f is not None:
                    f.close()
        for name in self.names:
            self.unlink(name)

    # -- helpers
    def bus_name(self, tag):
        name = f"{tag}{os.getpid()}"
        self.names.append(name)
        self.unlink(name)  # a leftover of an earlier run
        return name

    @staticmethod
    def unlink(name):
        # The bus and a temporary object of an interrupted resize (NAME.new.PID).
        for entry in os.listdir(SHM):
            if entry == f"freshframe.{name}" or entry.startswith(f"freshframe.{name}.new."):
                try:
                    os.unlink(os.path.join(SHM, entry))
                except FileNotFoundError:
                    pass

    def start_capture(self, name, source="pattern:320x240@30"):
        log = tempfile.TemporaryFile()
        proc = ff.popen(["capture", "--source", source, "--out", name], stdin=subprocess.DEVNULL,
                        stdout=log, stderr=subprocess.STDOUT)
        self.procs.append((proc, log))
        # Fail at once, with its output, if it cannot run (e.g. a binary
        # without the `capture` subcommand); the bus appears when it opens it.
        deadline = time.monotonic() + ff.STARTUP_TIMEOUT_S
        while not os.path.exists(os.path.join(SHM, f"freshframe.{name}")):
            if proc.poll() is not None:
                self.fail(f"freshframe capture --out {name} exited with {proc.returncode}:\n"
                          f"{self.capture_log(proc)}")
            if time.monotonic() > deadline:
                self.fail(f"freshframe capture did not create bus {name}:\n{self.capture_log(proc)}")
            time.sleep(0.02)
        return proc

    def capture_log(self, proc):
        for p, log in self.procs:
            if p is proc and log is not None:
                log.flush()
                log.seek(0)
                return log.read().decode("utf-8", "replace")[-4000:]
        return ""

    def start_reader(self, name, *args):
        proc = subprocess.Popen([READER_PYTHON, "-B", READER, name] + list(args),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, errors="replace",
                                preexec_fn=ff._die_with_parent)
        self.procs.append((proc, None))
        return proc

    def run_reader(self, name, *args, timeout=60):
        proc = self.start_reader(name, *args)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            self.fail(f"bus_reader.py {name} {' '.join(args)} did not exit within {timeout}s\n"
                      f"stdout: {out!r}\nstderr: {err!r}")
        return proc.returncode, out, err

    def parse(self, out, err):
        frames = []
        for line in out.splitlines():
            m = LINE_RE.match(line)
            self.assertIsNotNone(m, f"unexpected reader output line {line!r}\nstderr: {err!r}")
            index, sequence, w, h, capture_us = (int(m.group(i)) for i in range(1, 6))
            frames.append({"index": index, "sequence": sequence, "size": (w, h),
                           "capture_us": capture_us, "latency_ms": float(m.group(6))})
        return frames

    def check_frames(self, frames, count, context):
        self.assertEqual(len(frames), count, context)
        for f in frames:
            self.assertEqual(f["size"], (320, 240), context)
            self.assertGreater(f["capture_us"], 0, context)
            self.assertTrue(0 <= f["latency_ms"] < 1000,
                            f"implausible latency {f['latency_ms']} ms\n{context}")
        indices = [f["index"] for f in frames]
        self.assertEqual(indices, sorted(set(indices)), f"publish indices not increasing\n{context}")

    def write_object(self, name, data):
        self.names.append(name)
        with open(os.path.join(SHM, f"freshframe.{name}"), "wb") as f:
            f.write(data)

    # -- tests
    def test_reads_frames_from_capture(self):
        name = self.bus_name("pytest")
        capture = self.start_capture(name)
        rc, out, err = self.run_reader(name, "--count", "5", "--timeout", "10")
        context = f"reader stdout:\n{out}\nreader stderr: {err!r}\ncapture log:\n{self.capture_log(capture)}"
        self.assertIsNone(capture.poll(), f"capture exited with {capture.returncode}\n{context}")
        self.assertEqual(rc, 0, context)
        self.check_frames(self.parse(out, err), 5, context)

    def test_reader_survives_a_killed_and_restarted_writer(self):
        name = self.bus_name("pytestkill")
        first = self.start_capture(name)
        reader = self.start_reader(name, "--count", "20", "--timeout", "10")
        lines = []
        deadline = time.monotonic() + 20
        while len(lines) < 5 and time.monotonic() < deadline:
            line = reader.stdout.readline()
            if not line:
                break
            lines.append(line)
        self.assertEqual(len(lines), 5, f"reader printed {lines!r} before the kill\n"
                         f"capture log:\n{self.capture_log(first)}")
        first.kill()
        first.wait()  # reaped: a zombie would still count as a live writer
        second = self.start_capture(name)
        # Read on to EOF through the same buffered file (communicate() would
        # bypass what readline() has buffered). Bounded: the reader gives up
        # after --timeout without a new frame.
        lines.extend(reader.stdout)
        try:
            reader.wait(timeout=30)
        except subprocess.TimeoutExpired:
            reader.kill()
            reader.wait()
        out, err = "".join(lines), reader.stderr.read()
        context = (f"reader stdout:\n{out}\nreader stderr: {err!r}\n"
                   f"second capture log:\n{self.capture_log(second)}")
        self.assertEqual(reader.returncode, 0, context)
        self.assertIsNone(second.poll(), f"the second capture exited with {second.returncode}\n{context}")
        self.check_frames(self.parse(out, err), 20, context)

    def test_not_a_bus_exits_2(self):
        name = f"junk{os.getpid()}"
        self.write_object(name, b"\xa5garbage" * 1024)
        rc, out, err = self.run_reader(name, "--count", "1", "--timeout", "2")
        self.assertEqual(rc, 2, f"stdout {out!r} stderr {err!r}")
        self.assertIn("not a freshframe bus", err)
        self.assertEqual(out, "")

    def test_other_layout_version_exits_2(self):
        name = f"junkv{os.getpid()}"
        header = (0x3153554246524646).to_bytes(8, "little") + (99).to_bytes(4, "little")
        self.write_object(name, header + bytes(8192 - len(header)))
        rc, out, err = self.run_reader(name, "--count", "1", "--timeout", "2")
        self.assertEqual(rc, 2, f"stdout {out!r} stderr {err!r}")
        self.assertIn("version 99", err)

    def test_invalid_name_exits_2(self):
        rc, out, err = self.run_reader("../etc", "--count", "1", "--timeout", "1")
        self.assertEqual(rc, 2, f"stdout {out!r} stderr {err!r}")

    def test_no_writer_times_out_with_1(self):
        name = self.bus_name("pytestnone")
        t0 = time.monotonic()
        rc, out, err = self.run_reader(name, "--count", "1", "--timeout", "0.5")
        self.assertEqual(rc, 1, f"stdout {out!r} stderr {err!r}")
        self.assertLess(time.monotonic() - t0, 20)
        self.assertFalse(os.path.exists(os.path.join(SHM, f"freshframe.{name}")),
                         "the example reader must not create a bus")


if __name__ == "__main__":
    ff.main()
