"""The Debian package on this machine (issue 20), as an administrator uses it:

- dpkg-deb: the files where Debian puts them (binary, Python package in the
  system path, units, man pages, docs, examples), nothing under /usr/local,
  the conffile, the maintainer scripts, and Depends computed from the
  libraries the binaries link (each NEEDED library's package is listed);
- lintian finds no error (the tags it prints are in the log);
- dpkg -i: the system user in group video, the installed binary runs a
  stream (page, MJPEG, a bus) as that user, `import freshframe` from the
  system path reads the bus, the man page is found, systemd-analyze verify
  passes both units;
- an upgrade keeps an edited conffile (and, when the package's own copy
  changed too, keeps the edit and leaves the new one beside it);
- remove keeps the configuration; purge removes it and everything the
  package made, and leaves what it did not make (an administrator's file
  under /etc/freshframe, a bus in /dev/shm).

Without systemd running (this machine's init is not systemd), the scripts
must skip the service: test_service.py boots systemd in a container for that.
"""

import glob
import os
import pwd
import grp
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

import debpkg as deb
from debpkg import run

SKIP = deb.skip_reason()


def read(path):
    with open(path) as f:
        return f.read()


@unittest.skipIf(SKIP, SKIP or "")
class DebPackageTest(unittest.TestCase):
    """Steps in order (test_1 ... test_5): each needs the ones before."""

    @classmethod
    def setUpClass(cls):
        if deb.installed_version() is not None:
            raise unittest.SkipTest(
                f"{deb.PACKAGE} {deb.installed_version()} is installed on this machine: "
                "the test installs and purges it, so it leaves an administrator's "
                "installation alone; `dpkg -P freshframe` first")
        cls.tmp = tempfile.mkdtemp(prefix="ffdeb.")
        cls.contents = deb.contents(deb.DEB)
        cls.fields = deb.control(deb.DEB)
        cls.extracted = os.path.join(cls.tmp, "extracted")
        run(["dpkg-deb", "--extract", deb.DEB, cls.extracted])

    @classmethod
    def tearDownClass(cls):
        # Whatever failed, the machine is left without the package.
        if deb.installed_version() is not None or os.path.exists("/var/lib/dpkg/info/freshframe.list"):
            run(["dpkg", "--purge", deb.PACKAGE], check=False)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_1_contents(self):
        f = self.fields
        self.assertEqual(f["Package"], "freshframe")
        self.assertEqual(f["Version"], deb.VERSION)
        self.assertEqual(f["Architecture"], run(["dpkg", "--print-architecture"])[1].strip())
        self.assertEqual(f["Section"], "video")
        for path in ["/usr/bin/freshframe", f"{deb.PYTHON_DIR}/__init__.py",
                     f"{deb.PYTHON_DIR}/libfreshframe_bus.so", deb.CONFFILE,
                     f"{deb.UNIT_DIR}/freshframe.service", f"{deb.UNIT_DIR}/freshframe@.service",
                     "/usr/share/man/man1/freshframe.1.gz", "/usr/share/man/man1/freshframe-run.1.gz",
                     f"{deb.DOC_DIR}/copyright", f"{deb.DOC_DIR}/changelog.gz",
                     f"{deb.DOC_DIR}/README.md", f"{deb.DOC_DIR}/deploy-debian.md",
                     f"{deb.DOC_DIR}/examples/freshframe.toml",
                     f"{deb.DOC_DIR}/examples/python/run_ml.py"]:
            self.assertIn(path, self.contents)
        self.assertTrue(self.contents["/usr/bin/freshframe"].startswith("-rwxr-xr-x"))
        allowed = ("/etc/freshframe", "/lib/systemd/system", "/usr/bin", "/usr/lib/python3/",
                   "/usr/share/man/", "/usr/share/doc/freshframe")
        for path, mode in self.contents.items():
            self.assertFalse(path.startswith("/usr/local"), path)
            if not mode.startswith("d"):
                self.assertTrue(path.startswith(allowed), f"unexpected path {path}")
        # The conffile, and maintainer scripts that are executable.
        self.assertEqual(deb.control_member(deb.DEB, "conffiles").split(), [deb.CONFFILE])
        _, info, _ = run(["dpkg-deb", "--info", deb.DEB])
        for script in ("postinst", "prerm", "postrm"):
            self.assertRegex(info, rf"\*\s+{script}\s")
        # The shipped configuration is valid as it stands.
        extracted = self.extracted
        rc, out, err = run([extracted + "/usr/bin/freshframe", "check-config",
                            extracted + deb.CONFFILE], check=False)
        self.assertEqual(rc, 0, out + err)
        self.assertIn("ok, 1 stream", out)

    def test_1_depends_from_the_binaries(self):
        """Every library the ELF files need comes from a package in Depends."""
        depends = deb.depends_names(self.fields["Depends"])
        libraries = set()
        for elf in (self.extracted + "/usr/bin/freshframe",
                    self.extracted + deb.PYTHON_DIR + "/libfreshframe_bus.so"):
            _, dynamic, _ = run(["readelf", "-d", elf])
            needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[(\S+)\]", dynamic))
            _, out, _ = run(["ldd", elf])
            for line in out.splitlines():
                match = re.search(r"=> (/\S+)", line)
                if match and line.split()[0] in needed:
                    libraries.add(os.path.realpath(match.group(1)))
        self.assertGreater(len(libraries), 10, libraries)
        for library in sorted(libraries):
            rc, out, _ = run(["dpkg-query", "-S", library], check=False)
            if rc != 0:  # merged /usr: dpkg knows /lib/..., ldd says /usr/lib/...
                rc, out, _ = run(["dpkg-query", "-S", library.replace("/usr/lib/", "/lib/", 1)],
                                 check=False)
            self.assertEqual(rc, 0, f"no package owns {library}")
            owner = out.split(":")[0]
            # A library's shlibs may name a virtual package its own provides
            # (libspdlog1.10 provides libspdlog1.10-fmt9).
            _, provides, _ = run(["dpkg-query", "-W", "-f=${Provides}", owner])
            self.assertTrue(depends & ({owner} | deb.depends_names(provides)),
                            f"{library} comes from {owner}, which Depends does not name")
        self.assertIn("adduser", depends)  # the postinst's, which no ELF file says
        # What the binary loads by name, not by linking: GStreamer plugins.
        recommends = deb.depends_names(self.fields["Recommends"])
        for package in ("python3-numpy", "opencv-data", "gstreamer1.0-plugins-bad",
                        "gstreamer1.0-plugins-good", "gstreamer1.0-nice"):
            self.assertIn(package, recommends)

    def test_2_lintian(self):
        if shutil.which("lintian") is None:
            self.fail("lintian is not installed (scripts/install-deps.sh installs it)")
        rc, out, err = run(["lintian", "--fail-on", "error", "--display-info", "--pedantic",
                            deb.DEB], check=False, timeout=300)
        print(f"\nlintian (exit {rc}):\n{out}{err}", flush=True)
        self.assertEqual(rc, 0, "lintian found errors")
        self.assertNotRegex(out, r"(?m)^E: ")

    def test_3_install_and_run(self):
        run(["dpkg", "--install", deb.DEB], timeout=180)
        self.assertEqual(deb.installed_version(), deb.VERSION)
        user = pwd.getpwnam("freshframe")
        self.assertLess(user.pw_uid, 1000, "a system user")
        self.assertIn(user.pw_shell, ("/usr/sbin/nologin", "/bin/false"))
        self.assertIn("freshframe", grp.getgrnam("video").gr_mem)
        conf = os.stat(deb.CONFFILE)
        self.assertEqual(stat.S_IMODE(conf.st_mode), 0o640)
        self.assertEqual(conf.st_gid, grp.getgrnam("freshframe").gr_gid)
        _, out, _ = run(["/usr/bin/freshframe", "--version"])
        self.assertEqual(out.strip(), deb.VERSION)
        _, out, _ = run(["man", "-w", "freshframe"])
        self.assertEqual(out.strip(), "/usr/share/man/man1/freshframe.1.gz")
        for unit in ("freshframe.service", "freshframe@demo.service"):
            rc, out, err = run(["systemd-analyze", "verify", unit], check=False)
            ours = [line for line in (out + err).splitlines() if "freshframe" in line]
            self.assertEqual((rc, ours), (0, []), out + err)

        # The installed binary, as the service's user, publishing a bus.
        bus = f"ffdebtest{os.getpid()}"
        proc = subprocess.Popen(
            ["runuser", "-u", "freshframe", "--", "/usr/bin/freshframe", "run",
             "--source", "pattern:320x240@30", "--detector", "none", "--port", "0",
             "--publish", bus],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/")
        try:
            line = proc.stdout.readline()
            match = re.search(r"serving on http://127\.0\.0\.1:(\d+)/", line)
            self.assertTrue(match, f"no URL line: {line!r} {proc.poll()}")
            port = int(match.group(1))
            # The page, a part, and the bus through the Python package from
            # the system path only (no PYTHONPATH, not the source tree).
            _, out, _ = run(["/usr/bin/python3", "-I", "-c", deb.CLIENT, str(port), bus,
                             str(user.pw_uid)], timeout=60)
            jpeg_bytes = int(re.search(r"jpeg ok (\d+)", out).group(1))
            self.assertGreater(jpeg_bytes, 1000)
            self.assertIn(f"{deb.PYTHON_DIR}/__init__.py", out)
            self.assertIn("(240, 320, 3)", out)
        finally:
            proc.terminate()
            try:
                proc.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
        # Buses outlive their writer by design (docs/bus-protocol.md): the
        # test removes the ones it made.
        made = glob.glob(f"/dev/shm/freshframe.{bus}*")
        self.assertTrue(made, "the run made no bus")
        for path in made:
            os.remove(path)

    def test_4_upgrade_keeps_an_edited_conffile(self):
        with open(deb.CONFFILE, "a") as f:
            f.write("# an administrator's edit\n")
        edited = read(deb.CONFFILE)
        # The next version, with the same conffile, then with a new one.
        same = self._repack("+test1", lambda root: None)
        run(["dpkg", "--install", same], timeout=180)
        self.assertEqual(deb.installed_version(), self.next_version)
        self.assertEqual(read(deb.CONFFILE), edited)
        self.assertEqual(stat.S_IMODE(os.stat(deb.CONFFILE).st_mode), 0o640)

        def new_default(root):
            with open(root + deb.CONFFILE, "a") as f:
                f.write("# the package's new default\n")
        changed = self._repack("+test2", new_default)
        run(["dpkg", "--install", "--force-confold", changed], timeout=180)
        self.assertEqual(read(deb.CONFFILE), edited)
        self.assertIn("new default", read(deb.CONFFILE + ".dpkg-dist"))

    def _repack(self, suffix, change):
        """This package as version VERSION + suffix (later), changed by `change`."""
        root = os.path.join(self.tmp, "repack" + suffix)
        run(["dpkg-deb", "--raw-extract", deb.DEB, root])
        change(root)
        control_path = os.path.join(root, "DEBIAN", "control")
        text = read(control_path)
        type(self).next_version = deb.VERSION + suffix
        text = re.sub(r"(?m)^Version: .*$", f"Version: {self.next_version}", text)
        with open(control_path, "w") as f:
            f.write(text)
        md5 = subprocess.run(["md5sum", "." + deb.CONFFILE], cwd=root, capture_output=True,
                             text=True, check=True).stdout
        sums_path = os.path.join(root, "DEBIAN", "md5sums")
        sums = [l for l in read(sums_path).splitlines() if deb.CONFFILE[1:] not in l]
        with open(sums_path, "w") as f:
            f.write("\n".join(sums + [md5.strip().replace("  ./", "  ")]) + "\n")
        out = os.path.join(self.tmp, f"freshframe_{suffix}.deb")
        run(["dpkg-deb", "--root-owner-group", "--build", root, out])
        return out

    def test_5_remove_then_purge(self):
        files = [p for p, mode in self.contents.items() if not mode.startswith("d")]
        # Things the package did not make: an administrator's token, a bus.
        token = "/etc/freshframe/token"
        with open(token, "w") as f:
            f.write("secret\n")
        bus = f"/dev/shm/freshframe.ffdebtest-admin{os.getpid()}"
        with open(bus, "wb") as f:
            f.write(b"not ours")
        try:
            run(["dpkg", "--remove", deb.PACKAGE], timeout=120)
            self.assertIsNone(deb.installed_version())
            self.assertFalse(os.path.exists("/usr/bin/freshframe"))
            self.assertTrue(os.path.exists(deb.CONFFILE), "remove keeps the configuration")
            run(["dpkg", "--purge", deb.PACKAGE], timeout=120)
            rc, _, _ = run(["dpkg-query", "-W", deb.PACKAGE], check=False)
            self.assertNotEqual(rc, 0, "dpkg still knows the package")
            left = [p for p in files if os.path.lexists(p)]
            self.assertEqual(left, [], "files of the package left after purge")
            self.assertEqual(sorted(os.listdir("/etc/freshframe")), ["token"],
                             "purge removes the conffile and its .dpkg-dist, keeps the admin's")
            self.assertFalse(os.path.exists("/var/cache/freshframe"))
            self.assertFalse(glob.glob("/etc/systemd/system/*/freshframe*"))
            self.assertFalse(glob.glob("/var/lib/systemd/deb-systemd-helper-enabled/*freshframe*"))
            self.assertTrue(os.path.exists(bus), "purge touched a bus")
            # The account stays, locked (postrm says why).
            self.assertTrue(run(["passwd", "--status", "freshframe"])[1].split()[1].startswith("L"))
        finally:
            os.remove(token)
            os.remove(bus)
        os.rmdir("/etc/freshframe")


if __name__ == "__main__":
    deb.main()
