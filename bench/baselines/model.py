"""The guide's `run_ml.py` side: capture, model, draw, multiprocessing.Queue.

The model is the same Haar face detection freshframe runs with its defaults
(`--detector faces`, src/infer/cascade_detector.cpp): Debian opencv-data's
haarcascade_frontalface_default.xml; frames wider than 640 px scaled down
with INTER_AREA first; grey, equalizeHist; detectMultiScale with scale
factor 1.1, 3 neighbours, 30 px minimum (scaled with the frame); one OpenCV
thread, as `--detector-threads 1`. Boxes and labels are drawn below the
timecode strip, as freshframe's annotator does, so the strip stays readable.
"""

import ctypes
import os
import signal
import sys
import time

import cv2

from camera import BufferedCamera, read_newest

CASCADE_DIRS = ("/usr/share/opencv4/haarcascades", "/usr/share/opencv/haarcascades",
                "/usr/local/share/opencv4/haarcascades")
CASCADE_FILE = "haarcascade_frontalface_default.xml"


def die_with_parent():
    """The process gets SIGKILL when its parent dies (PR_SET_PDEATHSIG), so a
    killed server never leaves its model process behind."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def find_cascade():
    for d in CASCADE_DIRS:
        path = os.path.join(d, CASCADE_FILE)
        if os.path.isfile(path):
            return path
    raise SystemExit(f"{CASCADE_FILE} not found in {', '.join(CASCADE_DIRS)} "
                     "(apt-get install opencv-data)")


class FaceDetector:
    def __init__(self, scale_factor=1.1, min_neighbours=3, min_size=30, max_width=640):
        self.cascade = cv2.CascadeClassifier(find_cascade())
        self.scale_factor, self.min_neighbours = scale_factor, min_neighbours
        self.min_size, self.max_width = min_size, max_width

    def detect(self, bgr):
        """[(x, y, w, h, score)] in frame pixels, surest first."""
        scale = 1.0
        if self.max_width > 0 and bgr.shape[1] > self.max_width:
            scale = self.max_width / bgr.shape[1]
            small = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        else:
            small = bgr
        gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
        side = max(1, round(self.min_size * scale))
        boxes, neighbours = self.cascade.detectMultiScale2(
            gray, self.scale_factor, self.min_neighbours, 0, (side, side))
        out = []
        for (x, y, w, h), n in zip(boxes, neighbours):
            score = min(1.0, n / (4 * max(1, self.min_neighbours)))
            out.append((round(x / scale), round(y / scale), round(w / scale), round(h / scale),
                        score))
        out.sort(key=lambda d: -d[4])
        return out


def draw(image, detections):
    """Boxes and "face 0.75" labels, clipped to the rows below the strip."""
    top = min(2 * (image.shape[1] // 64 if image.shape[1] >= 320 else 0), image.shape[0])
    body = image[top:]  # a view: drawing here cannot reach the strip
    font = max(0.4, image.shape[1] / 1600.0)
    thickness = max(1, image.shape[1] // 480)
    for x, y, w, h, score in detections:
        y -= top
        cv2.rectangle(body, (x, y), (x + w - 1, y + h - 1), (80, 200, 120), thickness, cv2.LINE_AA)
        text = f"face {score:.2f}"
        (tw, th), tb = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
        ty = y - 4 if y - 4 - th >= 0 else y + th + 4
        body[max(0, ty - th - 2):max(0, ty + tb + 2), max(0, x):max(0, x + tw + 4)] = (80, 200, 120)
        cv2.putText(body, text, (x + 2, ty), cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return image


def run_ml(queue, options, newest_only):
    """The capture+model process: reads the camera, runs the model, draws,
    and puts every processed frame on `queue` (an unbounded
    multiprocessing.Queue, as in the guide).

    newest_only=False is the guide's first design: one cap.read() per loop,
    which returns the OLDEST buffered frame. newest_only=True is its fix:
    read_latest_frame() (see camera.read_newest) before each inference."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server stops us; Ctrl-C goes to it
    cv2.setNumThreads(1)  # freshframe's --detector-threads 1 default
    width, height = options["size"]
    cap = BufferedCamera(width, height, options["fps"], options["buffers"],
                         label=options["name"]).open()
    detector = FaceDetector()
    read = (lambda: read_newest(cap)) if newest_only else cap.read
    processed_count, reported = 0, time.monotonic()
    while True:
        ret, frame = read()
        if not ret:
            break
        processed = draw(frame, detector.detect(frame))  # model_inference_and_draw(frame)
        queue.put(processed)
        processed_count += 1
        if time.monotonic() - reported >= 1.0:
            # Not in the guide: a count for bench/compare (the model's rate).
            reported = time.monotonic()
            print(f"run_ml: {processed_count} frames processed at {reported:.3f}", file=sys.stderr,
                  flush=True)
