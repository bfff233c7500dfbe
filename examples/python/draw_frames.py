#!/usr/bin/python3
"""The second topology: your code draws its own pictures, freshframe serves them.

  freshframe capture --source /dev/video0 --out cam0.raw &
  PYTHONPATH=build/release/python python3 examples/python/draw_frames.py cam0.raw cam0.annotated &
  freshframe serve --in cam0.annotated
"""
import sys

import cv2

import freshframe

source, target = (sys.argv[1:3] + ["cam0.raw", "cam0.annotated"][len(sys.argv[1:3]):])
cascade = cv2.CascadeClassifier("/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml")
cv2.setNumThreads(1)

out = freshframe.Publisher(target, detector="python:haar")  # also writes TARGET.detections
for frame in freshframe.Subscriber(source):
    image = frame.image.copy()  # the frame is a read-only view: draw on a copy
    top = 2 * (frame.width // 64)  # draw below the timecode strip: it must stay readable
    gray = cv2.equalizeHist(cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY))
    boxes, hits = cascade.detectMultiScale2(gray, 1.1, 3, 0, (30, 30))
    found = [freshframe.Detection("face", min(1.0, n / 12), box) for box, n in zip(boxes, hits)]
    for x, y, w, h in boxes:
        cv2.rectangle(image[top:], (int(x), int(y) - top), (int(x + w), int(y + h) - top), (0, 255, 0), 2)
    out.publish(image, like=frame, detections=found)  # stamps carried over: latency stays measurable
