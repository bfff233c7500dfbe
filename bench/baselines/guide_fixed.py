#!/usr/bin/python3
"""guide-fixed: the design shared/seed/flask-latency-guide.txt recommends.

- The capture+model process (model.run_ml, newest_only=True) takes the
  newest frame before each inference (the guide's read_latest_frame, in the
  form that returns: camera.read_newest), runs the model, draws, and puts
  the result on the multiprocessing.Queue.
- The web process: the guide's SharedFrameBuffer (a lock-protected frame),
  fed by its ml_consumer_process thread with `queue.get(timeout=0.1)`, and
  its gen(): get a copy of the frame, flip, encode at quality 85, yield; a
  30 ms sleep only while there is no frame yet. The code below is the
  guide's, with only its lost backslashes ("rn") restored.
- Served by Flask's threaded server (`--server flask`, app.run) or, as the
  guide recommends for production, by gunicorn with the eventlet worker
  (`--server gunicorn`: one worker, since each worker would start its own
  camera and model).

    /usr/bin/python3 bench/baselines/guide_fixed.py --server gunicorn --port 8080
"""

import threading
import time
from threading import Lock

import cv2
from flask import Flask, Response

import server

NAME = "guide-fixed"


class SharedFrameBuffer:
    def __init__(self):
        self._frame = None
        self._lock = Lock()

    def update(self, frame):
        with self._lock:
            self._frame = frame

    def get(self):
        with self._lock:
            return self._frame.copy() if self._frame is not None else None


frame_buffer = SharedFrameBuffer()


def ml_consumer_process(queue):
    """专用子线程/进程:持续消费队列,更新共享缓冲区"""
    while True:
        try:
            frame = queue.get(timeout=0.1)  # 阻塞 100ms,避免忙等
            if frame is not None:
                frame_buffer.update(frame)
        except Exception:
            pass  # 队列空或中断,继续循环


def gen():
    while True:
        frame = frame_buffer.get()
        if frame is not None:
            frame = cv2.flip(frame, 1)
            ret, jpeg = cv2.imencode('.jpg', frame, [cv2.IMWRITE_JPEG_QUALITY, 85])
            if ret:
                yield (b'--frame\r\n'
                       b'Content-Type: image/jpeg\r\n\r\n' + jpeg.tobytes() + b'\r\n\r\n')
        else:
            # 返回黑帧或上一帧,避免流中断
            time.sleep(0.03)  # 30fps 基准


def create_app(options):
    """Starts the model process and the consumer thread; returns the app.
    Under gunicorn this runs in the worker, after eventlet has patched it."""
    queue = server.start_model(options, newest_only=True)
    threading.Thread(target=ml_consumer_process, args=(queue,), daemon=True).start()
    app = Flask(__name__)

    @app.route("/stream.mjpg")
    def video_feed():
        return Response(gen(), mimetype=server.MIMETYPE)

    @app.route("/")
    def index():
        return server.PAGE.format(name=NAME)

    return app


def serve_gunicorn(args):
    from gunicorn.app.base import BaseApplication

    def when_ready(arbiter):
        host, port = arbiter.LISTENERS[0].sock.getsockname()[:2]
        server.announce(NAME, host, port)

    class GuideApplication(BaseApplication):
        def load_config(self):
            settings = {"bind": f"{args.bind}:{args.port}", "workers": 1,
                        "worker_class": "eventlet", "when_ready": when_ready}
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self):
            return create_app(args.options)

    GuideApplication().run()


def main():
    args = server.parse_args(NAME, __doc__.splitlines()[0], servers=("flask", "gunicorn"))
    if args.server == "gunicorn":
        serve_gunicorn(args)
    else:
        server.serve_flask(NAME, create_app(args.options), args)


if __name__ == "__main__":
    main()
