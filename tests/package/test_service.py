"""freshframe.service under a running systemd (issue 20): the package
installed into a container booted from this machine (booted.py), then

- the install creates the user, enables and starts the unit; it serves the
  page, the stream and a bus in /dev/shm that the system Python package
  reads; the process runs as freshframe, in group video, with no
  capabilities, no new privileges, a seccomp filter and LimitNOFILE;
  its log lines reach the journal at their priority;
- `systemctl reload` is SIGHUP (same process, new configuration);
- exit status 1 (a bind address not up yet) is retried until it works;
- a bad configuration fails `systemctl reload` (the old one keeps running)
  and `systemctl restart` (the unit fails, FILE:LINE:COL in `systemctl
  status`, and is not retried);
- freshframe@NAME.service runs /etc/freshframe/NAME.toml beside it;
- an upgrade restarts the service and keeps an administrator's disable;
- systemd-analyze verify passes and systemd-analyze security's exposure
  score is printed;
- removing the package stops every instance; purging removes the
  configuration, the cache and the enablement, and leaves an
  administrator's file in /etc/freshframe and the buses alone.
"""

import json
import os
import re
import shutil
import time
import unittest

import debpkg as deb
from booted import Booted

SKIP = deb.skip_reason()
DEB_INSIDE = "/var/tmp/fftest/freshframe.deb"
BUS = "fftest"

GOOD_CONFIG = """\
[server]
bind = "127.0.0.1"
port = 8080

[streams.pattern]
source = "pattern:320x240@30"
detector = "none"
quality = {quality}
publish = "{bus}"
"""


@unittest.skipIf(SKIP, SKIP or "")
class ServiceTest(unittest.TestCase):
    """Steps in order (test_1 ... test_6): each needs the ones before."""

    @classmethod
    def setUpClass(cls):
        cls.machine = Booted(f"fftest{os.getpid()}")
        cls.machine.__enter__()
        m = cls.machine
        if deb.installed_version(root_cmd=["nsenter", "--target", str(m.leader), "--all"]):
            cls.machine.stop()
            raise unittest.SkipTest("freshframe is installed on this machine (and so in the "
                                    "container): `dpkg -P freshframe` first")
        os.makedirs(m.path("/var/tmp/fftest"))
        shutil.copy(deb.DEB, m.path(DEB_INSIDE))

    @classmethod
    def tearDownClass(cls):
        cls.machine.stop()

    # -- helpers -----------------------------------------------------------
    def sh(self, *args, check=True, timeout=120):
        return self.machine.run(list(args), check=check, timeout=timeout)

    def show(self, unit, prop):
        return self.sh("systemctl", "show", unit, "-p", prop, "--value")[1].strip()

    def wait_active(self, unit, timeout=30.0):
        deadline = time.monotonic() + timeout
        while True:
            state = self.sh("systemctl", "is-active", unit, check=False)[1].strip()
            if state == "active":
                rc, _, _ = self.sh("/usr/bin/python3", "-c",
                                   "import urllib.request,sys; urllib.request.urlopen("
                                   f"'http://127.0.0.1:{self.port_of(unit)}/healthz', timeout=2)",
                                   check=False)
                if rc == 0:
                    return
            if time.monotonic() > deadline:
                status = self.sh("systemctl", "status", unit, "--no-pager", "-n", "30",
                                 check=False)[1]
                self.fail(f"{unit} not serving after {timeout} s ({state}):\n{status}")
            time.sleep(0.2)

    @staticmethod
    def port_of(unit):
        return 8081 if "@" in unit else 8080

    def write_config(self, path, text):
        with open(self.machine.path(path), "w") as f:
            f.write(text)

    def exists(self, path):
        """Inside the container (its /dev is its own, not the overlay's)."""
        return self.sh("test", "-e", path, check=False)[0] == 0

    def uid(self):
        return int(self.sh("id", "-u", "freshframe")[1])

    # -- steps -------------------------------------------------------------
    def test_1_install_starts_a_hardened_service(self):
        self.sh("dpkg", "--install", DEB_INSIDE, timeout=180)
        self.assertEqual(self.sh("systemctl", "is-enabled", "freshframe")[1].strip(), "enabled")
        self.wait_active("freshframe")
        _, out, _ = self.sh("/usr/bin/python3", "-I", "-c", deb.CLIENT, "8080")
        self.assertIn("jpeg ok", out)

        pid = self.show("freshframe", "MainPID")
        status = self.sh("cat", f"/proc/{pid}/status")[1]
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        self.assertEqual(fields["Uid"].split()[0], str(self.uid()))
        video = self.sh("getent", "group", "video")[1].split(":")[2]
        self.assertIn(video, fields["Groups"].split())
        self.assertEqual(fields["NoNewPrivs"].strip(), "1")
        self.assertEqual(int(fields["CapBnd"], 16), 0)
        self.assertEqual(int(fields["CapEff"], 16), 0)
        self.assertEqual(fields["Seccomp"].strip(), "2")
        # LimitNOFILE=65536, or the most the container's manager may give
        # (its own hard limit, when it cannot raise it).
        self.assertEqual(self.show("freshframe", "LimitNOFILE"), "65536")
        manager_hard = int(re.search(r"Max open files\s+\d+\s+(\d+)",
                                     self.sh("cat", "/proc/1/limits")[1]).group(1))
        limits = self.sh("cat", f"/proc/{pid}/limits")[1]
        self.assertEqual(int(re.search(r"Max open files\s+(\d+)", limits).group(1)),
                         min(65536, manager_hard), limits)

        # The journal has the lines, at their priority, without the prefix.
        _, out, _ = self.sh("journalctl", "-u", "freshframe", "-o", "json", "--no-pager")
        entries = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        messages = [(e.get("PRIORITY"), e.get("MESSAGE", "")) for e in entries
                    if e.get("_PID") == pid]
        self.assertIn(("6", "freshframe: serving on http://127.0.0.1:8080/"), messages)
        self.assertTrue(any(p == "6" and m.startswith("info ") for p, m in messages), messages)
        self.assertFalse([m for _, m in messages if re.match(r"<\d>", str(m))], messages)

    def test_2_reload_and_dev_shm(self):
        pid = self.show("freshframe", "MainPID")
        self.write_config(deb.CONFFILE, GOOD_CONFIG.format(quality=70, bus=BUS))
        self.sh("systemctl", "reload", "freshframe")
        self.assertEqual(self.show("freshframe", "MainPID"), pid, "a reload is not a restart")
        # The reloaded stream publishes a bus: /dev/shm is reachable.
        deadline = time.monotonic() + 20
        while not self.exists(f"/dev/shm/freshframe.{BUS}"):
            if time.monotonic() > deadline:
                self.fail("no bus in /dev/shm after the reload: " + self.sh(
                    "journalctl", "-u", "freshframe", "--no-pager", "-n", "30")[1])
            time.sleep(0.2)
        self.assertEqual(self.sh("stat", "-c", "%a %U", f"/dev/shm/freshframe.{BUS}")[1].strip(),
                         "600 freshframe")
        _, out, _ = self.sh("/usr/bin/python3", "-I", "-c", deb.CLIENT, "8080", BUS,
                            str(self.uid()), timeout=60)
        self.assertIn("bus (240, 320, 3) /usr/lib/python3/dist-packages/freshframe", out)

    def test_3_bad_config(self):
        pid = self.show("freshframe", "MainPID")
        # Line 3, column 8: a value that is not TOML.
        self.write_config(deb.CONFFILE, '[server]\nbind = "127.0.0.1"\nport = eighty\n')
        rc, _, _ = self.sh("systemctl", "reload", "freshframe", check=False)
        self.assertNotEqual(rc, 0, "a reload with a bad file must fail")
        self.assertEqual(self.sh("systemctl", "is-active", "freshframe")[1].strip(), "active")
        self.assertEqual(self.show("freshframe", "MainPID"), pid, "the old configuration runs on")

        rc, _, _ = self.sh("systemctl", "restart", "freshframe", check=False)
        self.assertNotEqual(rc, 0, "a start with a bad file must fail")
        self.assertEqual(self.sh("systemctl", "is-failed", "freshframe", check=False)[1].strip(),
                         "failed")
        _, status, _ = self.sh("systemctl", "status", "freshframe", "--no-pager", "-n", "20",
                               check=False)
        print("\n" + status, flush=True)
        self.assertRegex(status, r"/etc/freshframe/freshframe\.toml:3:\d+:")
        time.sleep(7)  # RestartSec=5: a retry would have happened by now
        self.assertEqual(self.show("freshframe", "NRestarts"), "0")
        self.assertEqual(self.sh("systemctl", "is-failed", "freshframe", check=False)[1].strip(),
                         "failed")

        self.write_config(deb.CONFFILE, GOOD_CONFIG.format(quality=80, bus=BUS))
        self.sh("systemctl", "restart", "freshframe")
        self.wait_active("freshframe")

    def test_3b_retried_until_the_address_is_up(self):
        """Exit 1 (here: the bind address is not up yet, as at boot) is
        retried without a limit, and the service comes up by itself."""
        address = "10.250.250.1"
        self.write_config(deb.CONFFILE, GOOD_CONFIG.format(quality=80, bus=BUS).replace(
            "127.0.0.1", address))
        self.sh("systemctl", "restart", "--no-block", "freshframe")
        deadline = time.monotonic() + 30
        while int(self.show("freshframe", "NRestarts") or 0) < 2:
            if time.monotonic() > deadline:
                self.fail("exit 1 was not retried: " + self.sh(
                    "systemctl", "status", "freshframe", "--no-pager", check=False)[1])
            time.sleep(0.5)
        _, log, _ = self.sh("journalctl", "-u", "freshframe", "--no-pager", "-n", "40")
        self.assertIn(f"cannot listen on {address}:8080", log)
        self.sh("ip", "address", "add", f"{address}/32", "dev", "lo")
        deadline = time.monotonic() + 30
        while self.sh("systemctl", "is-active", "freshframe", check=False)[1].strip() != "active":
            if time.monotonic() > deadline:
                self.fail("not up once the address was: " + self.sh(
                    "systemctl", "status", "freshframe", "--no-pager", check=False)[1])
            time.sleep(0.5)
        self.write_config(deb.CONFFILE, GOOD_CONFIG.format(quality=80, bus=BUS))
        self.sh("systemctl", "restart", "freshframe")
        self.wait_active("freshframe")

    def test_4_instances_verify_and_security(self):
        self.write_config("/etc/freshframe/second.toml",
                          GOOD_CONFIG.format(quality=60, bus=BUS + "2").replace("8080", "8081"))
        self.sh("systemctl", "start", "freshframe@second")
        self.wait_active("freshframe@second")
        _, out, _ = self.sh("/usr/bin/python3", "-I", "-c", deb.CLIENT, "8081")
        self.assertIn("jpeg ok", out)
        for unit in ("freshframe.service", "freshframe@second.service"):
            rc, out, err = self.sh("systemd-analyze", "verify", unit, check=False)
            ours = [line for line in (out + err).splitlines() if "freshframe" in line]
            self.assertEqual((rc, ours), (0, []), out + err)
        _, out, _ = self.sh("systemd-analyze", "security", "--no-pager", "freshframe.service")
        score = re.search(r"Overall exposure level for freshframe\.service: ([\d.]+) (\S+)", out)
        self.assertTrue(score, out)
        print(f"\nsystemd-analyze security freshframe.service: {score.group(1)} "
              f"{score.group(2)}\n" + "\n".join(
                  line for line in out.splitlines() if line.startswith("✗")), flush=True)
        self.assertLess(float(score.group(1)), 3.0, "exposure above OK")

    def test_5_upgrade_restarts_and_keeps_a_disable(self):
        pids = {unit: self.show(unit, "MainPID") for unit in ("freshframe", "freshframe@second")}
        self.sh("dpkg", "--install", DEB_INSIDE, timeout=180)
        for unit, pid in pids.items():
            self.wait_active(unit)
            self.assertNotEqual(self.show(unit, "MainPID"), pid, f"an upgrade restarts {unit}")
        self.assertIn("quality = 80", self.sh("cat", deb.CONFFILE)[1])
        self.sh("systemctl", "disable", "freshframe")
        self.sh("dpkg", "--install", DEB_INSIDE, timeout=180)
        self.assertEqual(self.sh("systemctl", "is-enabled", "freshframe", check=False)[1].strip(),
                         "disabled")
        self.sh("systemctl", "enable", "freshframe")

    def test_6_remove_stops_purge_cleans(self):
        self.sh("dpkg", "--remove", deb.PACKAGE, timeout=120)
        for unit in ("freshframe", "freshframe@second"):
            self.assertNotEqual(self.sh("systemctl", "is-active", unit, check=False)[1].strip(),
                                "active", f"{unit} still running after remove")
        self.assertNotEqual(self.sh("pgrep", "-u", "freshframe", check=False)[0], 0)
        self.sh("dpkg", "--purge", deb.PACKAGE, timeout=120)
        self.assertEqual(sorted(os.listdir(self.machine.path("/etc/freshframe"))),
                         ["second.toml"], "purge removes the conffile, keeps the admin's file")
        for gone in ("/var/cache/freshframe", "/lib/systemd/system/freshframe.service",
                     "/etc/systemd/system/multi-user.target.wants/freshframe.service"):
            self.assertFalse(os.path.lexists(self.machine.path(gone)), gone)
        self.assertTrue(self.exists(f"/dev/shm/freshframe.{BUS}"), "purge touched a bus")


if __name__ == "__main__":
    deb.main()
