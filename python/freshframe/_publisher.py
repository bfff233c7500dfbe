"""Publisher (frames) and DetectionPublisher (detection sets) onto buses."""
import ctypes
import json
import math
import threading

import numpy as np

from ._lib import BusError, Closing, FrameMeta, encode_name, last_error, lib, owner_arg

_MAX_LABEL_BYTES = 64  # what freshframe's bus detector accepts (docs/detectors.md)


class Detection:
    """One detected object: `box` is (x, y, w, h) in pixels of the image the
    model saw (top-left corner, width, height); score in [0, 1]."""

    __slots__ = ("label", "score", "box")

    def __init__(self, label, score, box):
        if not isinstance(label, str) or not label or len(label.encode("utf-8")) > _MAX_LABEL_BYTES:
            raise ValueError(f"label is a non-empty str of at most {_MAX_LABEL_BYTES} bytes, "
                             f"not {label!r}")
        try:
            score = float(score)
            x, y, w, h = (float(v) for v in box)
        except (TypeError, ValueError):
            raise ValueError(f"score is a number and box is (x, y, w, h) numbers; got score "
                             f"{score!r}, box {box!r}") from None
        if not all(math.isfinite(v) for v in (score, x, y, w, h)) or w < 0 or h < 0:
            raise ValueError(f"box (x, y, w, h) needs finite numbers and w, h >= 0; got {box!r}")
        self.label, self.score = label, score
        self.box = (int(round(x)), int(round(y)), int(round(w)), int(round(h)))

    @classmethod
    def from_xyxy(cls, label, score, x1, y1, x2, y2):
        """From corners, as most models (ultralytics' boxes.xyxy) give them."""
        return cls(label, score, (x1, y1, float(x2) - float(x1), float(y2) - float(y1)))

    def to_json(self):
        return {"label": self.label, "score": round(self.score, 3), "box": list(self.box)}

    def __repr__(self):
        return f"Detection(label={self.label!r}, score={self.score:.3f}, box={self.box})"


class _Writer:
    def __init__(self, name, slots, allow_owner):
        self.name = name
        self._lock = threading.Lock()
        self._handle = lib.ff_writer_open(encode_name(name), int(slots), owner_arg(allow_owner))
        if not self._handle:
            raise BusError(f"cannot publish on bus {name}: {last_error()}")

    def call(self, function, *args):
        """function(handle, *args) -> 1 published, 0 dropped; BusError on -1."""
        with self._lock:
            if not self._handle:
                raise BusError(f"bus {self.name}: the publisher is closed")
            result = function(self._handle, *args)
        if result < 0:
            raise BusError(f"bus {self.name}: {last_error()}")
        return result == 1

    def counters(self):
        with self._lock:
            if not self._handle:
                return 0, 0
            return lib.ff_writer_published(self._handle), lib.ff_writer_dropped(self._handle)

    def close(self):
        with self._lock:
            if self._handle:
                lib.ff_writer_close(self._handle)
                self._handle = None


class _Closable(Closing):
    def close(self):
        """Gives up the writer role (the bus stays; readers keep waiting)."""
        self._writer.close()

    @property
    def published(self):
        return self._writer.counters()[0]

    @property
    def dropped(self):
        """Frames dropped because readers pinned every slot."""
        return self._writer.counters()[1]


class DetectionPublisher(_Closable):
    """Publishes detection sets on a text bus, for `freshframe run|infer
    --detector bus:NAME` (which draws them on every fresh frame) and for
    /api/detections and /api/events.

        out = freshframe.DetectionPublisher("cam0.detections", detector="yolov8n")
        out.publish(frame, [freshframe.Detection("person", 0.91, (x, y, w, h))])

    Boxes are in the coordinates of the image the model saw: the frame's,
    or pass size=(width, height) when the model ran on a resized copy (the
    boxes are scaled to the frame by freshframe). Only one process may
    publish on a bus at a time.
    """

    def __init__(self, name, detector="python", slots=0, allow_owner=None):
        if not isinstance(detector, str) or not detector:
            raise ValueError(f"detector is a non-empty str naming the model, not {detector!r}")
        self.name, self.detector = name, detector
        self._writer = _Writer(name, slots, allow_owner)

    def publish(self, frame, detections, size=None):
        """Publishes the detections found on `frame` (a freshframe.Frame).
        True when published, False when dropped (never waits)."""
        return self._writer.call(lib.ff_writer_publish_text, *self._text(frame, detections, size))

    def _text(self, frame, detections, size):
        if not hasattr(frame, "seq") or not hasattr(frame, "capture_us"):
            raise ValueError("publish(frame, detections): frame is the freshframe.Frame the "
                             f"model ran on, not {type(frame).__name__}")
        items = []
        for d in detections:
            if not isinstance(d, Detection):
                raise ValueError(f"detections are freshframe.Detection objects, not {d!r}")
            items.append(d.to_json())
        width, height = (frame.width, frame.height) if size is None else size
        if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
            raise ValueError(f"size is (width, height) in pixels, not {size!r}")
        text = json.dumps({
            "sequence": frame.seq, "capture_us": frame.capture_us,
            "infer_start_us": getattr(frame, "read_us", 0), "infer_end_us": lib.ff_now_us(),
            "width": width, "height": height, "detector": self.detector,
            "detector_running": True, "detections": items}, separators=(",", ":")).encode()
        return text, len(text), frame.seq


def _check_image(image):
    expected = "an HxWx3 (BGR) or HxW (gray) uint8 numpy array, C-contiguous"
    if not isinstance(image, np.ndarray):
        raise ValueError(f"publish() takes {expected}; got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"publish() takes {expected}; got dtype {image.dtype} "
                         "(convert with image.astype(np.uint8))")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)) or image.size == 0:
        raise ValueError(f"publish() takes {expected}; got shape {image.shape}")
    if not image.flags.c_contiguous:
        raise ValueError(f"publish() takes {expected}; got a non-contiguous array (a slice or "
                         "a transposed view): pass np.ascontiguousarray(image)")


class Publisher(_Closable):
    """Publishes frames on a bus, for `freshframe serve --in NAME` (or any
    reader): the second topology, where your code draws its own pictures.

        out = freshframe.Publisher("cam0.annotated")
        out.publish(image, like=frame)

    like: the Frame the image was made from. Its sequence and capture stamps
    are carried over, so latency stays measurable end to end, and the time
    from reading it to publishing counts as inference (infer_start_us,
    infer_end_us). Keep the timecode strip (the top 2 * (width // 64) rows)
    as it was, or readers cannot measure latency.
    detections: optional list of Detection, published on NAME.detections
    for `serve`'s /api/detections and /api/events.
    slots: slots of a bus this creates (0: 8); allow_owner: as Subscriber's.
    """

    def __init__(self, name, slots=0, detector="python", allow_owner=None):
        self.name = name
        self._writer = _Writer(name, slots, allow_owner)
        self._detections = None
        self._detector = detector
        self._allow_owner = allow_owner
        self._sequence = 0

    def publish(self, image, like=None, detections=None):
        """Copies `image` into the bus. True when published, False when
        dropped because readers pinned every slot (never waits)."""
        _check_image(image)
        now = lib.ff_now_us()
        meta = FrameMeta()
        if like is not None:
            meta.sequence, meta.source_id = like.seq, like.source_id
            meta.capture_us, meta.grab_us = like.capture_us, like.grab_us
            meta.infer_start_us, meta.infer_end_us = like.read_us, now
            meta.detections_sequence = like.seq
            self._sequence = like.seq
        else:
            self._sequence += 1
            meta.sequence, meta.capture_us = self._sequence, now
        # publish_us stays 0: the bus stamps it when the copied frame becomes
        # visible, so readers measure the hand-off itself.
        height, width = image.shape[:2]
        channels = 1 if image.ndim == 2 else 3
        published = self._writer.call(
            lib.ff_writer_publish, ctypes.byref(meta), image.ctypes.data_as(ctypes.c_void_p),
            width, height, channels, image.strides[0])
        if detections is not None:
            if like is None:
                raise ValueError("publish(image, detections=...) needs like=frame: detections "
                                 "belong to the frame they were found on")
            if self._detections is None:
                self._detections = DetectionPublisher(self.name + ".detections", self._detector,
                                                      allow_owner=self._allow_owner)
            self._detections.publish(like, detections, size=(width, height))
        return published

    def close(self):
        super().close()
        if self._detections is not None:
            self._detections.close()
