#!/usr/bin/python3
"""The guide's run_ml.py with freshframe: the model stays in Python (Haar faces
here), freshframe captures, draws, encodes and serves. README: "Your own Python model".

  freshframe run --source /dev/video0 --publish cam0 --detector bus:cam0.detections &
  PYTHONPATH=build/release/python python3 examples/python/run_ml.py cam0
"""
import sys

import cv2

import freshframe

name = sys.argv[1] if len(sys.argv) > 1 else "cam0"
cascade = cv2.CascadeClassifier("/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml")
cv2.setNumThreads(1)  # as freshframe's --detector-threads 1: leave cores to capture and encoding

sub = freshframe.Subscriber(name + ".raw")  # newest frame only; waits for the writer
out = freshframe.DetectionPublisher(name + ".detections", detector="python:haar")
for frame in sub:  # frame.image: HxWx3 uint8 BGR, a read-only view of shared memory
    gray = cv2.equalizeHist(cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY))
    boxes, hits = cascade.detectMultiScale2(gray, 1.1, 3, 0, (30, 30))
    out.publish(frame, [freshframe.Detection("face", min(1.0, n / 12), box)
                        for box, n in zip(boxes, hits)])
