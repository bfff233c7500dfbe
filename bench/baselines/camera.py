"""An emulated camera with a driver buffer queue, like freshframe's
`--source bufcam:WxH@FPS/N` (src/capture/buffered_camera.h,
docs/capture-latency.md).

A V4L2 camera captures on its own clock into N driver buffers; `read()`
(VIDIOC_DQBUF underneath cv2.VideoCapture.read) hands out the OLDEST filled
buffer; when all N are full the driver has nowhere to write and DROPS THE NEW
capture. OpenCV's V4L2 backend asks for 4 buffers. This class reproduces that
with the test pattern as the picture: a driver thread captures every 1/fps on
absolute deadlines, stamps CLOCK_MONOTONIC at the deadline, renders the
pattern with that stamp in its timecode strip, and queues it if a buffer is
free. `read()` has cv2.VideoCapture's shape: (True, frame), waiting for a
capture if none is queued.
"""

import collections
import threading
import time

from pattern import Pattern, monotonic_us


class BufferedCamera:
    def __init__(self, width=640, height=480, fps=30.0, buffers=4, label="guide"):
        self.width, self.height, self.fps, self.buffers = width, height, fps, buffers
        self._pattern = Pattern(width, height, fps, label)
        self._filled = threading.Condition()
        self._queue = collections.deque()  # oldest first, at most `buffers`
        self._stop = threading.Event()
        self._thread = None
        self.captured = 0
        self.dropped = 0

    def open(self):
        self._thread = threading.Thread(target=self._capture, name="camera-driver", daemon=True)
        self._thread.start()
        return self

    def release(self):
        self._stop.set()
        with self._filled:
            self._filled.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def read(self):
        """The oldest queued frame, as cv2.VideoCapture.read() returns it on
        a V4L2 camera: (True, frame); (False, None) once released."""
        with self._filled:
            while not self._queue and not self._stop.is_set():
                self._filled.wait(0.5)
            if not self._queue:
                return False, None
            return True, self._queue.popleft()

    def _capture(self):
        period = 1.0 / self.fps
        start = time.monotonic()
        index = 0
        while not self._stop.is_set():
            deadline = start + index * period
            now = time.monotonic()
            if now - deadline > period:
                # Fell behind by more than a frame (busy machine): skip the
                # missed deadlines, as freshframe's pattern source does.
                index = int((now - start) / period)
                deadline = start + index * period
            if deadline > now and self._stop.wait(deadline - now):
                return
            capture_us = monotonic_us()
            frame = self._pattern.render(index + 1, capture_us)
            index += 1
            with self._filled:
                self.captured += 1
                if len(self._queue) < self.buffers:
                    self._queue.append(frame)
                    self._filled.notify()
                else:
                    self.dropped += 1  # every buffer is full: the new capture is lost


def read_newest(cap, waited_s=0.002):
    """The guide's `read_latest_frame(cap)`, in the only form that returns.

    The guide reads until read() fails; on a live camera read() waits for
    the next capture and succeeds, so that loop never returns (bench/sources
    and docs/capture-latency.md show it). This keeps reading while read()
    returns at once (those frames were buffered) and returns the first frame
    that had to be waited for: the newest there is. It is freshframe's
    `timed-drain` consumer (src/capture/buffered_camera.cpp), same 2 ms."""
    while True:
        before = time.monotonic()
        ret, frame = cap.read()
        if not ret or time.monotonic() - before >= waited_s:
            return ret, frame
