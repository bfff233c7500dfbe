"""What the benchmarks read about the processes they start (Linux /proc),
shared by bench/*/run.py (import after putting bench/ on sys.path)."""
import ctypes
import os
import signal

CLK_TCK = os.sysconf("SC_CLK_TCK")


def die_with_parent():
    """preexec_fn: the child gets SIGKILL when the benchmark dies."""
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def cpu_seconds(pid):
    """user+sys CPU seconds of `pid` from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def status_mb(pid, key):
    """VmRSS / VmHWM etc. of `pid` in MB (from /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    return None
