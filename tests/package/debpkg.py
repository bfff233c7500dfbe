"""Helpers of the package tests (tests/package): arguments, commands with a
bound on time, the package's control data, and the state of an installation
that a purge must leave behind.

Both tests take `--deb PATH` (the package `make deb` built) and
`--version VERSION` (CMakeLists.txt's), and are skipped unless root: they
install the package into this machine (test_deb.py) or into a container
booted from an overlay of it (test_service.py).
"""

import os
import shutil
import subprocess
import sys
import unittest

DEB = None
VERSION = None
PACKAGE = "freshframe"
CONFFILE = "/etc/freshframe/freshframe.toml"
UNIT_DIR = "/lib/systemd/system"
PYTHON_DIR = "/usr/lib/python3/dist-packages/freshframe"
DOC_DIR = "/usr/share/doc/freshframe"


# Run with /usr/bin/python3 -I (the system path only), on this machine or
# inside the container: `CLIENT PORT [BUS UID]` checks the page, reads one
# MJPEG part ("jpeg ok BYTES") and, given a bus and its writer's uid, one
# frame through the system's Python package ("bus SHAPE FILE").
CLIENT = r'''
import socket, sys, urllib.request
port = int(sys.argv[1])
page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read()
assert b"<html" in page.lower(), page[:200]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
data = b""
while True:
    start = data.find(b"\xff\xd8")
    end = data.find(b"\xff\xd9", start + 2) if start >= 0 else -1
    if end > 0:
        break
    chunk = s.recv(65536)
    assert chunk, data[:300]
    data += chunk
print("jpeg ok", end + 2 - start)
if len(sys.argv) > 2:
    import freshframe
    with freshframe.Subscriber(sys.argv[2], timeout=10, allow_owner=int(sys.argv[3])) as sub:
        frame = sub.read(10)
        print("bus", frame.image.shape, freshframe.__file__)
'''


def skip_reason():
    if os.geteuid() != 0:
        return "installing a package needs root (CI runs as root): skipped"
    for tool in ("dpkg", "dpkg-deb"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed: skipped"
    return None


def run(args, timeout=120, check=True, input=None, env=None):
    """Runs a command, returns (rc, stdout, stderr) as text; fails loudly
    with everything it printed when check and rc != 0."""
    full_env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C.UTF-8")
    full_env.pop("PYTHONPATH", None)
    if env:
        full_env.update(env)
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                          input=input if input is not None else "", env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)}: exit {proc.returncode}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc.returncode, proc.stdout, proc.stderr


def control(deb):
    """The control file's fields, continuation lines joined."""
    _, out, _ = run(["dpkg-deb", "--field", deb])
    fields, key = {}, None
    for line in out.splitlines():
        if line.startswith((" ", "\t")) and key:
            fields[key] += "\n" + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            fields[key] = value.strip()
    return fields


def depends_names(field):
    """Package names of a Depends-style field, alternatives flattened."""
    names = set()
    for clause in field.split(","):
        for alternative in clause.split("|"):
            name = alternative.strip().split(" ")[0].split(":")[0]
            if name:
                names.add(name)
    return names


def contents(deb):
    """The archive's paths, as installed ("/usr/bin/freshframe"), with modes."""
    _, out, _ = run(["dpkg-deb", "--contents", deb])
    entries = {}
    for line in out.splitlines():
        parts = line.split(None, 5)
        path = parts[5].split(" -> ")[0]
        entries["/" + path.lstrip("./").rstrip("/")] = parts[0]
    entries.pop("/", None)
    return entries


def control_member(deb, name):
    """A file of the control archive (conffiles, postinst...) as text."""
    _, out, _ = run(["dpkg-deb", "--info", deb, name], check=False)
    return out


def installed_version(root_cmd=()):
    rc, out, _ = run([*root_cmd, "dpkg-query", "-W", "-f=${Status} ${Version}", PACKAGE],
                     check=False)
    words = out.split(" ")
    if rc != 0 or len(words) < 4 or words[2] != "installed":
        return None
    return words[3]


def main():
    global DEB, VERSION
    argv = list(sys.argv)
    for flag in ("--deb", "--version"):
        if flag in argv:
            i = argv.index(flag)
            if i + 1 >= len(argv):
                sys.exit(f"{flag} needs a value")
            if flag == "--deb":
                DEB = os.path.abspath(argv[i + 1])
            else:
                VERSION = argv[i + 1]
            del argv[i:i + 2]
    if not DEB or not VERSION:
        sys.exit("usage: test_*.py --deb PATH --version VERSION")
    unittest.main(argv=argv, verbosity=2)
