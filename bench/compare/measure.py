"""Measuring a system under test from outside: its process tree's CPU and
memory from /proc, and its viewers (strip_sampler, `freshframe probe`,
fanout_client).

A system may be several processes (the guide's Flask process and its model
process, gunicorn's master and worker, freshframe's capture/infer/serve), so
CPU and memory are summed over every process descended from the ones the
harness started, as bench/fanout/run.py and bench/latency measure a single
process: utime+stime from /proc/PID/stat, VmHWM (peak RSS) from
/proc/PID/status. Summed peak RSS counts pages shared between processes
(libraries, freshframe's shared-memory bus) once per process, so PSS
(/proc/PID/smaps_rollup, shared pages split between their users) is
reported next to it.
"""

import json
import math
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.realpath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "integration"))
import ffharness  # noqa: E402  (die-with-parent, probe invocation and JSON parsing)

CLK_TCK = os.sysconf("SC_CLK_TCK")


def now_us():
    """CLOCK_MONOTONIC in microseconds: the clock of the strip and the sampler."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def popen(args, **kwargs):
    """Popen of any program, killed if this harness dies (ffharness's rule)."""
    return subprocess.Popen(args, preexec_fn=ffharness._die_with_parent, **kwargs)


# --------------------------------------------------------------------------
# /proc

def _stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()  # fields from 3 (state) on


def _all_parents():
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = int(_stat_fields(entry)[1])  # field 4: ppid
            except (OSError, IndexError, ValueError):
                pass  # exited while we looked
    return parents


def tree(roots):
    """The live PIDs of `roots` and all their descendants."""
    parents = _all_parents()
    children = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], [r for r in roots if r in parents]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def start_time(pid):
    """Field 22, in clock ticks since boot: tells a PID from a reused one."""
    try:
        return int(_stat_fields(pid)[19])
    except (OSError, IndexError, ValueError):
        return None


def cpu_seconds(pids):
    """{pid: user+sys CPU seconds} of the PIDs still alive."""
    out = {}
    for pid in pids:
        try:
            f = _stat_fields(pid)
            out[pid] = (int(f[11]) + int(f[12])) / CLK_TCK  # utime, stime (fields 14, 15)
        except (OSError, IndexError, ValueError):
            pass
    return out


def cpu_between(before, after):
    """CPU seconds spent between two cpu_seconds() readings (processes that
    started in between count from zero)."""
    return sum(v - before.get(pid, 0.0) for pid, v in after.items())


def _status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory_mb(pids, pss=True):
    """(sum of VmHWM, sum of VmRSS, sum of PSS) in MB over `pids`."""
    hwm = sum(_status_kb(p, "VmHWM") for p in pids) / 1024.0
    rss = sum(_status_kb(p, "VmRSS") for p in pids) / 1024.0
    return hwm, rss, (sum(_pss_kb(p) for p in pids) / 1024.0 if pss else None)


# --------------------------------------------------------------------------
# Viewers

class Sampler:
    """strip_sampler: one viewer, every part's arrival and capture time."""

    def __init__(self, program, url, seconds, samples_path):
        self.path = samples_path
        self.seconds = seconds
        self.proc = popen([program, "--url", url, "--seconds", f"{seconds:.3f}", "--samples",
                           samples_path], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, errors="replace")

    def result(self):
        """(summary dict, [(recv_us, capture_us, bytes)])."""
        try:
            out, err = self.proc.communicate(timeout=self.seconds + 15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        try:
            summary = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            summary = {"error": f"strip_sampler exited {self.proc.returncode}: {err[-500:]}"}
        samples = []
        try:
            with open(self.path) as f:
                for line in f:
                    a, b, c = line.split(",")
                    samples.append((int(a), int(b), int(c)))
        except (OSError, ValueError):
            pass
        return summary, samples


class Probe:
    """`freshframe probe URL --clients K --json` in the background."""

    def __init__(self, binary, url, seconds, clients):
        ffharness.BINARY = binary
        self.p = ffharness.ProbeProcess(url, seconds=round(seconds, 1), clients=clients).start()

    def result(self):
        try:
            return self.p.result()
        except AssertionError as e:
            return {"error": str(e)}


class Churn:
    """fanout_client --mode churn: viewers that join and leave (freshframe
    only: it needs Content-Length framing, not chunked transfer coding)."""

    def __init__(self, program, url, clients, seconds, min_life_ms, max_life_ms):
        self.seconds = seconds
        self.proc = popen([program, "--url", url, "--mode", "churn", "--clients", str(clients),
                           "--seconds", f"{seconds:g}", "--min-life-ms", str(min_life_ms),
                           "--max-life-ms", str(max_life_ms)], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          errors="replace")

    def result(self):
        try:
            out, err = self.proc.communicate(timeout=self.seconds + 30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        for line in reversed(out.strip().splitlines()):
            if line.startswith("{"):
                return json.loads(line)
        return {"error": f"fanout_client exited {self.proc.returncode}: {err[-500:]}"}


# --------------------------------------------------------------------------
# Figures

def dig(d, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def percentile(sorted_values, q):
    """Nearest rank, as `freshframe probe` computes it."""
    if not sorted_values:
        return None
    rank = math.ceil(q / 100.0 * len(sorted_values))
    return sorted_values[min(max(rank, 1), len(sorted_values)) - 1]


def latency_figures(samples, start_us, end_us):
    """Figures of the parts that arrived in [start_us, end_us)."""
    inside = [s for s in samples if start_us <= s[0] < end_us]
    lat = sorted((r - c) / 1000.0 for r, c, _ in inside if c >= 0)
    seconds = max(1e-9, (end_us - start_us) / 1e6)
    distinct, last = 0, None
    for _, c, _ in inside:
        if c >= 0 and c != last:
            distinct += 1
            last = c
    out = {"parts": len(inside), "parts_fps": len(inside) / seconds,
           "new_fps": distinct / seconds, "no_strip": sum(1 for s in inside if s[1] < 0),
           "lat_count": len(lat), "mb_per_s": sum(s[2] for s in inside) / seconds / 1e6}
    for q in (50, 90, 99):
        out[f"p{q}"] = percentile(lat, q)
    out["max"] = lat[-1] if lat else None
    out["mean"] = sum(lat) / len(lat) if lat else None
    return out
