"""Subscriber and Frame: the newest frames of a bus as numpy arrays."""
import ctypes
import threading
import time

import numpy as np

from ._lib import (FORMAT_GRAY8, BusError, Closing, FrameOut, encode_name, last_error, lib,
                   owner_arg)

# Waits are cut into slices this long, so Ctrl-C (and close() from another
# thread) is noticed within about this time while a read waits forever.
_WAIT_SLICE_MS = 100
DEFAULT_VIEWS = 2
MAX_VIEWS = 15  # the C reader holds one more entry, for a frame being copied


class Frame:
    """One frame of a bus.

    `image` is an HxWx3 (BGR) or HxW (gray) uint8 numpy array. Unless
    `is_view` is False it is a read-only view of the bus's shared memory
    (no copy), which stays valid and unchanged as long as the array (or any
    slice of it) is referenced. `copy()` gives a writable Frame of your own.

    Stamps are CLOCK_MONOTONIC microseconds (freshframe.now_us()), 0 = not
    done: capture_us (the source made the picture), grab_us, infer_start_us,
    infer_end_us, publish_us, encode_us. `read_us` is when this process got
    the frame (a Publisher counts inference from there).
    """

    __slots__ = ("image", "seq", "source_id", "width", "height", "format", "capture_us",
                 "grab_us", "infer_start_us", "infer_end_us", "publish_us", "encode_us",
                 "detections_sequence", "publish_index", "writer_epoch", "read_us", "is_view")

    @property
    def sequence(self):
        return self.seq

    @property
    def age_ms(self):
        """How long ago the picture was captured, in milliseconds."""
        return (lib.ff_now_us() - self.capture_us) / 1000.0 if self.capture_us else None

    def copy(self):
        """This frame with its own writable copy of the pixels."""
        other = Frame.__new__(Frame)
        for field in Frame.__slots__:
            setattr(other, field, getattr(self, field))
        other.image = self.image.copy()
        other.is_view = False
        return other

    def __repr__(self):
        kind = "view" if self.is_view else "copy"
        return (f"<freshframe.Frame seq={self.seq} {self.width}x{self.height} {self.format} "
                f"capture_us={self.capture_us} {kind}>")


class _Pixels:
    """A slot's pixels as numpy sees them (read-only, no copy)."""

    def __init__(self, pixels, shape, strides):
        self.__array_interface__ = {"version": 3, "typestr": "|u1", "shape": shape,
                                    "strides": strides, "data": (pixels, True)}


class _Pin(_Pixels):
    """Owns one view of the bus: numpy keeps it as the array's base, so the
    view is released only when the array and all its slices are gone."""

    def __init__(self, reader, view_id, pixels, shape, strides):
        super().__init__(pixels, shape, strides)
        self._reader, self._view_id = reader, view_id

    def __del__(self):
        self._reader.release_later(self._view_id)


class _Reader:
    """The C reader and its views. Views are released by their owners'
    finalizers, which may run on any thread and at any time (garbage
    collection), also in the middle of a read: they only queue the id, and
    the reading thread releases queued views before its next wait. Closing
    frees the C reader once no view is held any more."""

    def __init__(self, name, entries, allow_owner):
        self.name = name
        self._lock = threading.RLock()
        self._handle = lib.ff_reader_open(encode_name(name), entries, owner_arg(allow_owner))
        if not self._handle:
            raise BusError(f"cannot read bus {name}: {last_error()}")
        self._queued = []  # ids whose Frames are gone, to release
        self.live = 0  # views handed out and not gone yet
        self._reading = False
        self._closed = False

    def hold(self, limit):
        """Counts one more view handed out, unless `limit` are held."""
        with self._lock:
            if self.live >= limit:
                return False
            self.live += 1
            return True

    def release_later(self, view_id):
        with self._lock:
            self.live -= 1
            if self._closed and not self._reading:
                lib.ff_reader_release(self._handle, view_id)
                self._destroy_if_unused()
            else:
                self._queued.append(view_id)

    def read(self, timeout_ms, out):
        """ff_reader_read: 1, 0 (nothing within timeout_ms, or closed), -1."""
        with self._lock:
            if self._closed:
                return 0
            self._release_queued()
            self._reading = True
        try:
            return lib.ff_reader_read(self._handle, timeout_ms, ctypes.byref(out))
        finally:
            with self._lock:
                self._reading = False
                if self._closed:
                    self._release_queued()
                    self._destroy_if_unused()

    def release_now(self, view_id):
        with self._lock:
            if self._handle:
                lib.ff_reader_release(self._handle, view_id)

    def writer_alive(self):
        with self._lock:
            return bool(self._handle) and lib.ff_reader_writer_alive(self._handle) == 1

    def close(self):
        with self._lock:
            self._closed = True
            if not self._reading:
                self._release_queued()
                self._destroy_if_unused()

    @property
    def closed(self):
        return self._closed

    def _release_queued(self):
        while self._queued:
            lib.ff_reader_release(self._handle, self._queued.pop())

    def _destroy_if_unused(self):
        if self._handle and self.live <= 0:
            lib.ff_reader_close(self._handle)
            self._handle = None


class Subscriber(Closing):
    """The newest frames of bus `name`, one after another.

        sub = freshframe.Subscriber("cam0.raw")
        for frame in sub:            # always the newest frame
            model(frame.image)

    Each read waits for a frame newer than the last one returned (never an
    older one, never the same one twice); frames published meanwhile are
    skipped, and counted in `skipped`. The bus may not exist yet, its writer
    may restart or change the frame size: the subscriber follows.

    timeout: seconds iteration waits for a frame before raising BusError
        (None: forever; Ctrl-C still interrupts within 0.1 s).
    views: how many frames may be zero-copy views at once (default 2). A
        model that keeps references to its inputs (ultralytics' Results do)
        holds views; once `views` are held, further frames are copies
        (counted in `copies`) so the writer never runs out of slots. The
        bus must have at least views + 3 slots per subscriber (8 by default).
    allow_owner: a bus object owned by another user is refused (that user
        controls every byte you read) unless it is this uid, or "any".

    One thread reads a Subscriber at a time; Frames may be used and dropped
    on any thread.
    """

    def __init__(self, name, timeout=None, views=DEFAULT_VIEWS, allow_owner=None):
        if not isinstance(views, int) or not 1 <= views <= MAX_VIEWS:
            raise ValueError(f"views is an int from 1 to {MAX_VIEWS}, not {views!r}")
        self.name, self.timeout, self.views = name, timeout, views
        self.skipped = 0
        self.copies = 0
        self.last_error = None  # why the bus refused a frame (a corrupt slot), if it did
        self._reader = _Reader(name, views + 1, allow_owner)
        self._out = FrameOut()
        self._last = None  # (writer_epoch, publish_index) of the last frame returned

    @property
    def writer_alive(self):
        """Whether a writer process is attached to the bus and alive now."""
        return self._reader.writer_alive()

    def read(self, timeout=None):
        """The next newest frame, or None when none came within `timeout`
        seconds (None: wait forever) or the subscriber was closed."""
        deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
        while True:
            if deadline is None:
                slice_ms = _WAIT_SLICE_MS
            else:
                slice_ms = int(min(_WAIT_SLICE_MS, max(0.0, deadline - time.monotonic()) * 1000))
            result = self._reader.read(slice_ms, self._out)
            if result == 1:
                return self._frame(self._out)
            if result < 0:
                self.last_error = last_error()
            if self._reader.closed or (deadline is not None and time.monotonic() >= deadline):
                return None

    def __iter__(self):
        return self

    def __next__(self):
        if self._reader.closed:
            raise StopIteration
        frame = self.read(self.timeout)
        if frame is not None:
            return frame
        if self._reader.closed:
            raise StopIteration
        hint = f" (last error: {self.last_error})" if self.last_error else ""
        raise BusError(
            f"no frame on bus {self.name} within {self.timeout} s{hint}: is its writer running? "
            f"(e.g. freshframe capture --out {self.name}, or freshframe run --publish NAME for "
            "NAME.raw)")

    def close(self):
        """Stops reading; views still held stay valid until they are dropped."""
        self._reader.close()

    def _frame(self, out):
        meta = out.meta
        frame = Frame.__new__(Frame)
        frame.seq, frame.source_id = meta.sequence, meta.source_id
        frame.width, frame.height = meta.width, meta.height
        frame.format = "gray" if meta.format == FORMAT_GRAY8 else "bgr"
        frame.capture_us, frame.grab_us = meta.capture_us, meta.grab_us
        frame.infer_start_us, frame.infer_end_us = meta.infer_start_us, meta.infer_end_us
        frame.publish_us, frame.encode_us = meta.publish_us, meta.encode_us
        frame.detections_sequence = meta.detections_sequence
        frame.publish_index, frame.writer_epoch = out.publish_index, out.writer_epoch
        frame.read_us = lib.ff_now_us()
        if self._last is not None and self._last[0] == out.writer_epoch and \
                out.publish_index > self._last[1] + 1:
            self.skipped += out.publish_index - self._last[1] - 1
        self._last = (out.writer_epoch, out.publish_index)
        if out.channels == 3:
            shape, strides = (meta.height, meta.width, 3), (out.row_bytes, 3, 1)
        else:
            shape, strides = (meta.height, meta.width), (out.row_bytes, 1)
        if self._reader.hold(self.views):
            frame.image = np.asarray(_Pin(self._reader, out.view_id, out.pixels, shape, strides))
            frame.is_view = True
        else:
            # Every view is held: copy, and give the slot back at once.
            frame.image = np.array(_Pixels(out.pixels, shape, strides))
            self._reader.release_now(out.view_id)
            self.copies += 1
            frame.is_view = False
        return frame
