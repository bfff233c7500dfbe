"""freshframe's test pattern and timecode strip, drawn in Python.

A port of src/capture/pattern_source.cpp (textured, scrolling background,
a cartoon face that Debian's frontal-face Haar cascade finds, a clock hand,
a text line) and of timecode::Write (src/core/timecode.cpp, spec in
shared/timecode.md). The baselines need the same picture as freshframe so
that the Haar detector does the same work on it and JPEG frames have the
same size, and the same strip so that `freshframe probe` and
bench/compare's strip_sampler measure them the same way.

The background's random shapes come from numpy's generator instead of
cv::RNG, so the pixels differ; the amount of structure (count, sizes, blur,
grid) is the same. bench/compare/README.md shows the detector's time per
frame on both patterns.
"""

import math
import time

import cv2
import numpy as np

STRIP_BITS = 64
STRIP_MIN_WIDTH = 320


def monotonic_us():
    """CLOCK_MONOTONIC in microseconds: the clock of the strip, shared by
    every process on the host (freshframe's MonotonicMicros)."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def strip_cell(width):
    return 0 if width < STRIP_MIN_WIDTH else width // STRIP_BITS


def strip_rows(width):
    return 2 * strip_cell(width)


def write_timecode(image, t_us):
    """Draws the 64-bit stamp t_us into rows [0, 2*cell) of a BGR image:
    band 1 holds the bits (white = 1, most significant first), band 2 their
    complement. Returns False if the frame is too small to carry a strip."""
    height, width = image.shape[:2]
    cell = strip_cell(width)
    if cell == 0 or height < 2 * cell:
        return False
    bits = np.array([(t_us >> (STRIP_BITS - 1 - i)) & 1 for i in range(STRIP_BITS)], np.uint8)
    band = np.repeat(bits * 255, cell)
    image[0:cell, :STRIP_BITS * cell] = band[None, :, None]
    image[cell:2 * cell, :STRIP_BITS * cell] = (255 - band)[None, :, None]
    return True


def _draw_face(image, c, size, silhouette=False):
    """DrawFace of pattern_source.cpp: skin, hair, eyes, brows, nose, mouth."""
    def at(x, y):
        return (c[0] + int(x * size), c[1] + int(y * size))

    def extent(w, h):
        return (int(w * size), int(h * size))

    def fill(centre, axes, start, end, bgr):
        colour = (255, 255, 255) if silhouette else bgr
        line = cv2.LINE_8 if silhouette else cv2.LINE_AA
        cv2.ellipse(image, centre, axes, 0, start, end, colour, cv2.FILLED, line)

    fill(c, extent(0.42, 0.55), 0, 360, (150, 180, 225))            # skin
    fill(at(0, -0.45), extent(0.44, 0.22), 180, 360, (40, 50, 70))  # hair
    for side in (-1.0, 1.0):
        fill(at(side * 0.17, -0.12), extent(0.11, 0.05), 0, 360, (60, 60, 70))   # eye
        fill(at(side * 0.17, -0.22), extent(0.12, 0.025), 0, 360, (50, 60, 80))  # brow
    fill(at(0, 0.08), extent(0.05, 0.1), 0, 360, (125, 150, 200))  # nose
    fill(at(0, 0.28), extent(0.15, 0.04), 0, 360, (70, 70, 140))   # mouth


class Pattern:
    """Renders frame `sequence` (1, 2, ...) of a width x height pattern at
    `fps`, stamped with `capture_us`. Not thread-safe: one renderer thread."""

    def __init__(self, width, height, fps, label="guide"):
        self.width, self.height, self.fps, self.label = width, height, fps, label
        self._build_background()

    def _build_background(self):
        w, h = self.width, self.height
        x = np.arange(w, dtype=np.float64)
        y = np.arange(h, dtype=np.float64)
        fx = 0.5 - 0.5 * np.cos(2 * math.pi * x / w)  # periodic in x: the scroll wraps
        fy = y / h
        bg = np.empty((h, w, 3), np.uint8)
        bg[:, :, 0] = (60 + 80 * fx)[None, :].astype(np.uint8)
        bg[:, :, 1] = (50 + 90 * fy)[:, None].astype(np.uint8)
        bg[:, :, 2] = (90 + 60 * (1 - fx))[None, :].astype(np.uint8)
        # Shapes at several scales: detectors and JPEG see something like a
        # scene (a flat frame makes Haar ~10x cheaper; shared/MEASUREMENTS.md).
        rng = np.random.default_rng(12345)
        for i in range(w * h // 4000):
            px, py = int(rng.integers(0, w)), int(rng.integers(0, h))
            r = int(rng.integers(3, max(4, h // 12)))
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            for shift in (0, -w):  # drawn twice so shapes wrap around the edge
                if i % 2 == 0:
                    cv2.circle(bg, (px + shift, py), r, colour, cv2.FILLED, cv2.LINE_AA)
                else:
                    cv2.rectangle(bg, (px + shift, py), (px + shift + 2 * r - 1, py + r - 1),
                                  colour, cv2.FILLED)
        bg = cv2.GaussianBlur(bg, (3, 3), 0)
        grid = max(16, w // 16)
        for gx in range(0, w, grid):
            cv2.line(bg, (gx, 0), (gx, h - 1), (30, 30, 30), 1)
        for gy in range(0, h, grid):
            cv2.line(bg, (0, gy), (w - 1, gy), (30, 30, 30), 1)
        face = max(8, h // 4)
        sw, sh = face + 4, int(face * 1.25) + 4
        self._face = face
        self._sprite = np.zeros((sh, sw, 3), np.uint8)
        _draw_face(self._sprite, (sw // 2, sh // 2), face)
        shape = np.zeros((sh, sw, 3), np.uint8)
        _draw_face(shape, (sw // 2, sh // 2), face, silhouette=True)
        self._mask = cv2.cvtColor(shape, cv2.COLOR_BGR2GRAY) > 0
        self._background = np.hstack([bg, bg])  # any scroll offset is one slice

    def render(self, sequence, capture_us):
        w, h = self.width, self.height
        scroll = (sequence * 4) % w
        image = self._background[:, scroll:scroll + w].copy()
        t = sequence / self.fps
        face = self._face
        cx = w // 2 + int((w // 2 - face) * math.sin(t * 0.35))
        cy = h // 2 + int((h // 4) * math.sin(t * 0.5))
        sh, sw = self._sprite.shape[:2]
        x0, y0 = cx - sw // 2, cy - sh // 2
        vx0, vy0 = max(0, x0), max(0, y0)
        vx1, vy1 = min(w, x0 + sw), min(h, y0 + sh)
        if vx1 > vx0 and vy1 > vy0:
            src = (slice(vy0 - y0, vy1 - y0), slice(vx0 - x0, vx1 - x0))
            np.copyto(image[vy0:vy1, vx0:vx1], self._sprite[src], where=self._mask[src][:, :, None])
        # A clock hand turning once every 4 s.
        radius = max(4, min(w, h) // 14)
        dial = (w - radius - 8, h - radius - max(24, h // 12))
        cv2.circle(image, dial, radius, (40, 200, 240), cv2.FILLED, cv2.LINE_AA)
        angle = t * 2 * math.pi / 4
        hand = (dial[0] + int(radius * math.cos(angle)), dial[1] + int(radius * math.sin(angle)))
        cv2.line(image, dial, hand, (20, 20, 20), max(1, radius // 8), cv2.LINE_AA)
        font = max(0.4, w / 1280.0)
        text = f"{self.label} #{sequence:06d}  {capture_us / 1e6:.3f} s"
        baseline_y = h - max(8, h // 40)
        (tw, th), tb = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
        image[max(0, baseline_y - th - 4):min(h, baseline_y + tb + 4), 4:min(w, 12 + tw)] = 0
        cv2.putText(image, text, (8, baseline_y), cv2.FONT_HERSHEY_SIMPLEX, font,
                    (255, 255, 255), 1, cv2.LINE_AA)
        write_timecode(image, capture_us)
        return image
