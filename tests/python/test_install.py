"""`cmake --install` puts the package where the prefix's Python finds it,
and the installed copy works on its own (no build tree on the path)."""
import os
import subprocess
import sys

import pytest

BUILD_DIR = os.environ.get("FRESHFRAME_BUILD_DIR")


@pytest.mark.skipif(not BUILD_DIR, reason="FRESHFRAME_BUILD_DIR (set by ctest) names the build")
def test_installed_package_imports_and_reads_a_bus(tmp_path):
    subprocess.run(["cmake", "--install", BUILD_DIR, "--prefix", str(tmp_path)], check=True,
                   stdout=subprocess.DEVNULL)
    version = "%d.%d" % sys.version_info[:2]
    site = tmp_path / "lib" / f"python{version}" / "dist-packages"
    assert (site / "freshframe" / "libfreshframe_bus.so").is_file()
    assert (tmp_path / "bin" / "freshframe").is_file()
    code = ("import freshframe, numpy as np, os\n"
            "name = 'pytest.install.%d' % os.getpid()\n"
            "out = freshframe.Publisher(name); sub = freshframe.Subscriber(name, timeout=5)\n"
            "out.publish(np.zeros((4, 4, 3), np.uint8)); f = next(sub)\n"
            "print(freshframe.__file__, f.width, f.is_view)\n"
            "del f; sub.close(); out.close(); freshframe.unlink(name)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    path, width, is_view = done.stdout.split()
    assert path.startswith(str(site)) and width == "4" and is_view == "True"
