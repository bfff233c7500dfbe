#!/usr/bin/python3
"""Reads frames from a freshframe bus without freshframe (docs/bus-protocol.md).

  /usr/bin/python3 docs/examples/bus_reader.py NAME [--count N] [--timeout S]

Prints one line per frame; exits 0 after N frames, 1 when no new frame came
within S seconds, 2 on a bad bus. A copy-only reader: it never registers or
pins. Linux, x86-64 (whose loads are not reordered with each other, which the
seqlock check relies on); stdlib + numpy.
"""
import argparse, ctypes, fcntl, mmap, os, platform, re, struct, sys, time
import numpy as np

MAGIC, VERSION, HEADER_BYTES, SLOT_HEADER_BYTES, STATE_REPLACED = 0x3153554246524646, 1, 4288, 128, 2
SYS_FUTEX = {"x86_64": 202, "aarch64": 98}.get(platform.machine())  # None: poll instead
libc = ctypes.CDLL(None)
align = lambda n: (n + 4095) // 4096 * 4096
load64 = lambda addr: ctypes.c_uint64.from_address(addr).value  # one aligned 8-byte load
load32 = lambda addr: ctypes.c_uint32.from_address(addr).value
# SlotHeader after its seq word (offsets 8..127), little-endian, no padding.
SLOT_FIELDS = ("publish_index writer_epoch sequence source_id width height format channels row_bytes pixel_bytes "
               "detections_sequence capture_us grab_us infer_start_us infer_end_us publish_us encode_us checksum").split()
SLOT_FORMAT = "<QQQIiiIIIQQqqqqqqQ"


class BadBus(Exception):
    pass


class Bus:
    def __init__(self, mm):
        self.mm, self.buf = mm, np.frombuffer(mm, np.uint8)
        self.base = self.buf.ctypes.data  # address of the mapping
        (magic, version, header_bytes, self.count, slot_header_bytes, self.capacity, self.stride,
         self.slots, total) = struct.unpack_from("<QIIIIQQQQ", mm, 0)
        if magic != MAGIC:
            raise BadBus("not a freshframe bus (bad magic)")
        if version != VERSION:
            raise BadBus(f"layout version {version}, this reader speaks {VERSION}")
        if (header_bytes, slot_header_bytes) != (HEADER_BYTES, SLOT_HEADER_BYTES) or not 2 <= self.count <= 255 \
                or self.slots != align(HEADER_BYTES) or self.stride != align(SLOT_HEADER_BYTES + self.capacity) \
                or total != self.slots + self.stride * self.count or total > len(mm):
            raise BadBus("inconsistent header")

    def try_copy(self, index, slot):
        """(meta, pixels) of frame `index` in `slot`, or None if it was overwritten meanwhile."""
        at = self.slots + slot * self.stride
        if slot >= self.count or load64(self.base + at) != 2 * index:  # seq: complete frame `index`
            return None
        meta = dict(zip(SLOT_FIELDS, struct.unpack_from(SLOT_FORMAT, self.mm, at + 8)))
        w, h, ch, row, nbytes = (meta[k] for k in ("width", "height", "channels", "row_bytes", "pixel_bytes"))
        if w <= 0 or h <= 0 or ch not in (1, 3) or row != w * ch or nbytes != row * h or nbytes > self.capacity:
            return None
        pixels = self.buf[at + SLOT_HEADER_BYTES:at + SLOT_HEADER_BYTES + nbytes].copy().reshape(h, w, ch)
        return (meta, pixels) if load64(self.base + at) == 2 * index else None  # unchanged during the copy?


def open_bus(name):
    """The mapped bus, or None while /dev/shm/freshframe.NAME is missing or being created."""
    try:
        fd = os.open(f"/dev/shm/freshframe.{name}", os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        st = os.fstat(fd)  # trust only our own buses, never world-writable ones (section 1)
        if st.st_uid != os.geteuid():
            raise BadBus(f"owned by uid {st.st_uid}, not by this user (uid {os.geteuid()})")
        if st.st_mode & 0o7002:
            raise BadBus(f"mode {st.st_mode & 0o7777:04o}: world-writable or special bits")
        fcntl.flock(fd, fcntl.LOCK_SH)  # waits while a creator initialises it
        fcntl.flock(fd, fcntl.LOCK_UN)
        size = os.fstat(fd).st_size
        mm = mmap.mmap(fd, size) if size else None
    finally:
        os.close(fd)
    if mm is None or (size >= 8 and struct.unpack_from("<Q", mm)[0] == 0):
        return None  # empty or magic 0: being created (a freshframe process initialises it)
    if size < HEADER_BYTES:
        raise BadBus("not a freshframe bus (too small)")
    return Bus(mm)


def futex_wait(addr, seen, seconds):
    if SYS_FUTEX is None:
        return time.sleep(min(seconds, 0.002))
    ts = (ctypes.c_long * 2)(int(seconds), int(seconds % 1 * 1e9))  # FUTEX_WAIT (0), shared
    libc.syscall(ctypes.c_long(SYS_FUTEX), ctypes.c_void_p(addr), 0, ctypes.c_uint32(seen), ts, None, 0)


def next_frame(bus, name, last_index, deadline):
    """(bus, index, meta, pixels) of the newest frame but `last_index`; pixels None on timeout."""
    failed, failures = 0, 0  # a `newest` whose slot keeps failing: corrupt, skipped (section 8)
    while True:
        if bus is None or load32(bus.base + 56) == STATE_REPLACED:
            bus = open_bus(name) or bus  # (re)open the name: follows a replaced bus
        seen = load32(bus.base + 128) if bus else 0  # the futex word before newest: no lost wake-up
        live = bus is not None and load32(bus.base + 56) != STATE_REPLACED
        newest = load64(bus.base + 72) if live else 0
        if newest != 0 and newest >> 8 != last_index and (newest != failed or failures < 16):
            frame = bus.try_copy(newest >> 8, newest & 0xFF)
            if frame is not None:
                return (bus, newest >> 8) + frame
            failures = failures + 1 if newest == failed else 1
            failed = newest
            if failures == 16:
                print(f"bus_reader: bus {name} is corrupt: slot {newest & 0xFF} never holds frame "
                      f"{newest >> 8}; waiting for the next frame", file=sys.stderr)
            if time.monotonic() < deadline:
                continue  # overwritten meanwhile: take the newest again
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return bus, None, None, None
        if live:
            futex_wait(bus.base + 128, seen, min(remaining, 1.0))
        else:
            time.sleep(min(remaining, 0.01))  # no bus yet, or its successor is not installed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("name")
    ap.add_argument("--count", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each frame")
    args = ap.parse_args()
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,200}", args.name):
        print(f"bus_reader: invalid bus name {args.name!r} (1-200 of A-Z a-z 0-9 . _ -)", file=sys.stderr)
        return 2
    bus, last = None, 0
    try:
        for _ in range(args.count):
            bus, index, meta, pixels = next_frame(bus, args.name, last, time.monotonic() + args.timeout)
            if pixels is None:
                print(f"bus_reader: no new frame on bus {args.name} within {args.timeout}s", file=sys.stderr)
                return 1
            last, now_us = index, time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
            h, w, _ = pixels.shape
            print(f"index={index} sequence={meta['sequence']} {w}x{h} capture_us={meta['capture_us']} "
                  f"latency_ms={(now_us - meta['capture_us']) / 1000:.3f}", flush=True)
    except BadBus as e:
        print(f"bus_reader: /dev/shm/freshframe.{args.name}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
