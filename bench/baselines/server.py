"""What the two baselines share on the web side: the command line, starting
the capture+model process, and Flask's threaded server.

The model process is started with the "spawn" method: a fresh interpreter,
as the guide's separate `run_ml.py` is, that inherits nothing from the web
server (no Flask threads, no eventlet monkey-patching under gunicorn). The
queue between them is a multiprocessing.Queue, unbounded, as in the guide.

Each baseline prints `NAME: serving on http://ADDR:PORT/` on stdout once it
listens (`--port 0` picks a free port), like freshframe does, so
bench/compare knows when and where to connect. The stream is at
/stream.mjpg, the page at /.
"""

import argparse
import multiprocessing
import re
import sys

PAGE = """<!doctype html><title>{name}</title>
<body style="margin:0;background:#111"><img src="stream.mjpg" style="max-width:100%"></body>
"""
BOUNDARY = "frame"
MIMETYPE = f"multipart/x-mixed-replace; boundary={BOUNDARY}"
JPEG_QUALITY = 85  # the guide's cv2.IMWRITE_JPEG_QUALITY


def part(jpeg_bytes):
    """One multipart part exactly as the guide's gen() yields it."""
    return b"--frame\r\nContent-Type: image/jpeg\r\n\r\n" + jpeg_bytes + b"\r\n\r\n"


def parse_args(name, description, servers=("flask",)):
    ap = argparse.ArgumentParser(prog=name, description=description)
    ap.add_argument("--size", default="640x480", help="frame size WxH (640x480)")
    ap.add_argument("--fps", type=float, default=30.0, help="camera frame rate (30)")
    ap.add_argument("--buffers", type=int, default=4,
                    help="camera driver buffers (4, OpenCV's V4L2 default)")
    ap.add_argument("--bind", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    ap.add_argument("--port", type=int, default=8080, help="TCP port; 0 picks a free one (8080)")
    ap.add_argument("--server", choices=servers, default=servers[0],
                    help="web server (%(default)s)")
    args = ap.parse_args()
    m = re.fullmatch(r"(\d+)x(\d+)", args.size)
    if not m or not 16 <= int(m.group(1)) <= 7680 or not 16 <= int(m.group(2)) <= 4320:
        ap.error(f"--size {args.size!r}: expected WxH, e.g. 640x480")
    if not 0 < args.fps <= 240 or not 1 <= args.buffers <= 32:
        ap.error("--fps must be in (0, 240] and --buffers in 1..32")
    args.options = {"name": name, "size": (int(m.group(1)), int(m.group(2))), "fps": args.fps,
                    "buffers": args.buffers}
    return args


def start_model(options, newest_only):
    """Starts the capture+model process; returns the queue it fills."""
    import model  # the model process imports it too; keep it off the web side's hot path
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    ctx.Process(target=model.run_ml, args=(queue, options, newest_only), name="run_ml",
                daemon=True).start()
    return queue


def announce(name, host, port):
    print(f"{name}: serving on http://{host}:{port}/", flush=True)


def serve_flask(name, app, args):
    """app.run(threaded=True), but bound before the announcement so that
    --port 0 can be reported: app.run calls werkzeug's make_server and
    serve_forever, and so does this."""
    from werkzeug.serving import make_server
    srv = make_server(args.bind, args.port, app, threaded=True)
    announce(name, args.bind, srv.server_port)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
    sys.exit(0)
