#!/usr/bin/python3
"""Writes freshframe(1) and one page per subcommand (freshframe-run(1), ...)
from the built binary's --help with help2man, gzipped as Debian ships them.

    manpages.py BINARY VERSION INCLUDE.h2m OUT_DIR

The subcommands are read from `freshframe --help`, so a new one gets its page
without an edit here. help2man runs each through a wrapper that sets argv[0]
to the installed name, so no build path reaches a page.
"""
import gzip
import os
import re
import shlex
import subprocess
import sys
import tempfile

SUMMARY = "low-latency live video with detection, to any number of browsers"


def subcommands(help_text):
    """(name, description) of each line under "Subcommands:" (CLI11 puts a
    long name alone on its line, its description on the next)."""
    found = []
    lines = help_text.split("\n")
    start = next(i for i, line in enumerate(lines) if line.strip() == "Subcommands:") + 1
    for line in lines[start:]:
        if not line.strip():
            break
        match = re.match(r"^  (\S+)(?:\s{2,}(.*))?$", line)
        if match:
            found.append([match.group(1), (match.group(2) or "").strip()])
        elif found and line.startswith("   "):
            found[-1][1] = (found[-1][1] + " " + line.strip()).strip()
    return found


def wrapper(directory, name, binary, args):
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write("#!/bin/bash\nexec -a freshframe %s %s \"$@\"\n"
                % (shlex.quote(binary), " ".join(shlex.quote(a) for a in args)))
    os.chmod(path, 0o755)
    return path


def help2man(program, name, version, out, include=None, see_also=None):
    command = ["help2man", "--no-info", "--no-discard-stderr", "--section=1",
               "--name=" + name, "--version-string=" + version,
               "--source=freshframe " + version, "--manual=freshframe", "--output=" + out]
    if include:
        command.append("--include=" + include)
    if see_also:
        command.append("--include=" + see_also)
    command.append(program)
    subprocess.run(command, check=True, env=dict(os.environ, COLUMNS="80", LC_ALL="C.UTF-8"))


def gzip_page(path):
    # -9n: no name or time in the header, so the package is reproducible.
    with open(path, "rb") as f:
        data = f.read()
    with open(path + ".gz", "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as z:
            z.write(data)
    os.remove(path)


def main():
    binary, version, include, out_dir = sys.argv[1:5]
    binary = os.path.abspath(binary)
    os.makedirs(out_dir, exist_ok=True)
    top_help = subprocess.run([binary, "--help"], check=True, capture_output=True,
                              text=True).stdout
    commands = subcommands(top_help)
    if not commands:
        sys.exit("manpages.py: no subcommands in %s --help" % binary)
    with tempfile.TemporaryDirectory() as tmp:
        see_main = os.path.join(tmp, "see-main.h2m")
        with open(see_main, "w") as f:
            f.write("[SEE ALSO]\n" + ",\n".join(
                ".BR freshframe\\-%s (1)" % name for name, _ in commands) + "\n")
        page = os.path.join(out_dir, "freshframe.1")
        help2man(wrapper(tmp, "freshframe", binary, []), SUMMARY, version, page, include, see_main)
        gzip_page(page)
        see_sub = os.path.join(tmp, "see-sub.h2m")
        with open(see_sub, "w") as f:
            f.write("[SEE ALSO]\n.BR freshframe (1)\n")
        for name, description in commands:
            page = os.path.join(out_dir, "freshframe-%s.1" % name)
            program = wrapper(tmp, "freshframe-" + name, binary, [name])
            help2man(program, description[0].lower() + description[1:], version, page,
                     see_also=see_sub)
            gzip_page(page)


if __name__ == "__main__":
    main()
