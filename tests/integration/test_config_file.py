#!/usr/bin/python3
"""The TOML config file from the command line (src/app/config.h):
- `check-config FILE` prints "FILE: ok, N streams: a, b" and exits 0, or
  prints one "FILE:LINE:COL: KEY: what is wrong" line on stderr and exits 2;
- examples/freshframe.toml is valid;
- `run --config BAD` exits 2 with the position before anything starts;
- `run --config FILE` beside another run flag exits 2 naming the key to
  write instead.
(Serving several streams from a file is tested with the multi-stream server.)

Run: /usr/bin/python3 tests/integration/test_config_file.py --binary build/release/freshframe
"""

import os
import tempfile
import unittest

import ffharness as ff

GOOD = """\
[server]
port = 0

[defaults]
detector = "none"

[streams.front]
source = "pattern:320x240@30"
mirror = true

[streams.yard]
source = "pattern:320x240@15"
hud = false
"""

# (file text, expected "LINE:COL: KEY: what" after "FILE:")
BAD = [
    ("[streams.a]\nquality = 0\n", "2:11: streams.a.quality: Value 0 not in range 1 to 100"),
    ("[streams.a]\nport = 1\n", "2:1: streams.a.port: a server key: put it in [server]"),
    ("[streams.a]\nqualty = 5\n", "2:1: streams.a.qualty: unknown key; did you mean quality?"),
    ("[streams.\"a b\"]\n", "1:1: streams.a b: a stream name is 1 to 64 of A-Z a-z 0-9 _ -"),
    ("[server]\nport = 1\n", "1:1: streams: no stream: add a [streams.NAME] table"),
    ("[streams.a]\nmirror = \"yes\"\n",
     "2:10: streams.a.mirror: expected true or false, not a string"),
    ("[streams.a]\n[streams.a]\n", "2:1: TOML: Error while parsing table header: cannot "
     "redefine existing table 'streams.a'"),
    ("[streams.a]\npublish = \"cam\"\n[streams.b]\npublish = \"cam\"\n",
     "4:11: streams.b.publish: streams a and b would both write bus cam"),
]


def nonempty_lines(text):
    return [line for line in text.splitlines() if line.strip()]


class ConfigFileTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="freshframe_config_")
        self.addCleanup(self.dir.cleanup)

    def write(self, text, name="ff.toml"):
        path = os.path.join(self.dir.name, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def test_check_config_ok(self):
        path = self.write(GOOD)
        cp = ff.run_cli(["check-config", path], timeout=15)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(cp.stdout, f"{path}: ok, 2 streams: front, yard\n")
        self.assertEqual(cp.stderr, "")

    def test_the_example_is_valid(self):
        path = os.path.join(ff.REPO_ROOT, "examples", "freshframe.toml")
        cp = ff.run_cli(["check-config", path], timeout=15)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(cp.stdout, f"{path}: ok, 2 streams: front, yard\n")

    def test_check_config_errors_exit_2_with_the_position(self):
        for text, expected in BAD:
            with self.subTest(expected=expected):
                path = self.write(text)
                cp = ff.run_cli(["check-config", path], timeout=15)
                self.assertEqual(cp.returncode, 2, cp.stderr)
                self.assertEqual(cp.stdout, "")
                lines = nonempty_lines(cp.stderr)
                self.assertEqual(len(lines), 1, cp.stderr)
                self.assertTrue(lines[0].startswith(f"{path}:{expected}"),
                                f"{lines[0]!r} should start with {path}:{expected}")

    def test_check_config_of_a_missing_file(self):
        path = os.path.join(self.dir.name, "missing.toml")
        cp = ff.run_cli(["check-config", path], timeout=15)
        self.assertEqual(cp.returncode, 2, cp.stderr)
        self.assertEqual(cp.stderr, f"{path}: cannot read the config file\n")

    def test_run_with_a_bad_config_exits_2_before_starting(self):
        path = self.write("[server]\nport = 0\n[streams.cam]\nquality = 500\n")
        cp = ff.run_cli(["run", "--config", path], timeout=15)
        self.assertEqual(cp.returncode, 2, cp.stderr)
        self.assertEqual(nonempty_lines(cp.stderr),
                         [f"freshframe: error: {path}:4:11: streams.cam.quality: "
                          "Value 500 not in range 1 to 100"])
        self.assertNotIn("serving on", cp.stdout)

    def test_run_config_with_another_flag_exits_2(self):
        path = self.write(GOOD)
        for flag, value, where in (("--port", "1", "port in [server]"),
                                   ("--quality", "50", "quality in [streams.NAME]"),
                                   ("--no-hud", None, "hud = false in [streams.NAME]")):
            with self.subTest(flag=flag):
                args = ["run", "--config", path, flag] + ([value] if value else [])
                cp = ff.run_cli(args, timeout=15)
                self.assertEqual(cp.returncode, 2, cp.stderr)
                lines = nonempty_lines(cp.stderr)
                self.assertEqual(len(lines), 1, cp.stderr)
                self.assertIn(f"{flag} cannot be given with --config: put {where}", lines[0])
                self.assertIn(path, lines[0])
                self.assertNotIn("serving on", cp.stdout)

    def test_run_config_allows_log_level(self):
        # --log-level is not a setting of the file; with a bad file the run
        # still stops at the file, not at the flag.
        path = self.write("[streams.cam]\nfps = 0\n")
        cp = ff.run_cli(["run", "--config", path, "--log-level", "debug"], timeout=15)
        self.assertEqual(cp.returncode, 2, cp.stderr)
        self.assertIn(f"{path}:2:7: streams.cam.fps: ", cp.stderr)


if __name__ == "__main__":
    ff.main()
