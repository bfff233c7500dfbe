"""Fixtures for the freshframe Python package's tests (run by ctest as
python.package with PYTHONPATH=build/<preset>/python; or by hand:
  PYTHONPATH=build/release/python /usr/bin/python3 -m pytest -q tests/python)."""
import os
import subprocess
import sys
import textwrap

import pytest

import freshframe


@pytest.fixture
def bus_name(request):
    """A bus name unique to this test and process, unlinked before and after
    (with the .detections bus next to it)."""
    name = f"pytest.{request.node.name}.{os.getpid()}".replace("[", ".").replace("]", "")
    names = [name, name + ".detections"]
    for n in names:
        freshframe.unlink(n)
    yield name
    for n in names:
        freshframe.unlink(n)


class Child:
    """A Python child process running `code` with the package importable;
    killed (by its own PID) at the end of the test."""

    def __init__(self, code, *args):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        self.process = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), *map(str, args)], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def readline(self):
        return self.process.stdout.readline().strip()

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture
def child():
    started = []

    def start(code, *args):
        c = Child(code, *args)
        started.append(c)
        return c

    yield start
    for c in started:
        c.stop()
