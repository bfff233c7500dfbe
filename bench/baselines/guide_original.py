#!/usr/bin/python3
"""guide-original: the first design of shared/seed/flask-latency-guide.txt.

- The capture+model process (model.run_ml, newest_only=False) reads the
  camera once per loop (`ret, frame = cap.read()`: the OLDEST frame in the
  driver's buffers), runs the model, draws, and `queue.put(processed)` on an
  unbounded multiprocessing.Queue.
- The Flask process streams with the guide's original gen(): a global
  `image` and the global queue, polled with `queue.get(block=False)` on every
  iteration; when the queue is empty, the last image is sent again. Flask's
  threaded development server (app.run), one thread per viewer.

The guide quotes the original only in part; the pieces it names (global
`image` and `queue`, `get(block=False)` polling, flip + encode at quality 85
+ yield, the same lines its fixed gen() keeps) are reproduced as they are.
See bench/baselines/README.md.

    /usr/bin/python3 bench/baselines/guide_original.py --size 640x480 --port 8080
"""

import queue

import cv2
from flask import Flask, Response

import server

NAME = "guide-original"

QUEUE = None   # filled by the capture+model process
image = None   # the guide's global frame, shared by every viewer's gen()

app = Flask(__name__)


def gen():
    global image
    while True:
        try:
            image = QUEUE.get(block=False)
        except queue.Empty:
            pass  # nothing new: poll again on the next iteration
        if image is None:
            continue
        frame = cv2.flip(image, 1)
        ret, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, server.JPEG_QUALITY])
        if ret:
            yield server.part(jpeg.tobytes())


@app.route("/stream.mjpg")
def video_feed():
    return Response(gen(), mimetype=server.MIMETYPE)


@app.route("/")
def index():
    return server.PAGE.format(name=NAME)


def main():
    global QUEUE
    args = server.parse_args(NAME, __doc__.splitlines()[0])
    QUEUE = server.start_model(args.options, newest_only=False)
    server.serve_flask(NAME, app, args)


if __name__ == "__main__":
    main()
