#!/usr/bin/python3
"""Writes a SYNTHETIC YOLOv8-layout ONNX detector for bench/detectors.

Nothing is downloaded: the graph is built here with the onnx package
(Debian's python3-onnx) and random weights. It has the shape and roughly the
compute of a small YOLO, so `--detector dnn:MODEL` costs about what a real
model of that size would, but it has learnt nothing: its boxes are noise.

Graph (NCHW, float32, input "images" [1,3,S,S], S = --input-size, 640):
  backbone  stride-2 3x3 convs 3->16->32->64->128->256 with a residual block
            (two 3x3 convs) at each of the strides 8, 16, 32 (SiLU as
            Sigmoid*Mul)
  neck      top-down: nearest x2 Resize of the stride-32 map, Concat with
            stride 16, 1x1 + 3x3 conv; the same again down to stride 8
  heads     per stride 8/16/32 (YOLOv8's decoupled head): a box branch (two
            3x3 convs, then 2 channels of centre offset (Tanh) and 2 of size
            (Sigmoid), mapped onto the anchor grid in input pixels) and a class
            branch (two 3x3 convs, 1x1 to 80, Sigmoid)
  output    "output0" [1,84,A]: per anchor cx,cy,w,h (input pixels) and 80 class
            scores, A = (S/8)^2 + (S/16)^2 + (S/32)^2 (8400 at 640): the layout
            of an ultralytics YOLOv8/v11 export, which freshframe's dnn detector
            recognises.

Random weights make activations shrink or blow up layer by layer, so every
convolution is scaled like a folded BatchNorm: zero mean, unit variance per
channel, measured on calibration frames (--calibrate: test-pattern frames as
detectors_bench --dump-frames writes them; default a built-in synthetic
scene). The class logits then get one common bias, chosen so that about
--candidates anchors per calibration frame (default 20 at 640, scaled with
the anchor count) pass the 0.25 confidence threshold: like a real model on a
scene with a few objects, NMS and drawing get a few boxes, not thousands.

Usage: make_bench_model.py OUT.onnx [--labels OUT.txt] [--input-size 640]
Prints one JSON line on stdout with the path, input size, anchor count,
parameters, MACs and GFLOPs (2 x MACs, the convention ultralytics uses when
it says YOLOv8n is 8.7 GFLOPs at 640).
"""

import argparse
import json
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

YOLOV8N_GFLOPS_640 = 8.7  # ultralytics' figure for yolov8n.pt at 640x640
OPSET = 12                # old enough for OpenCV 4.6's ONNX importer

COCO_NAMES = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack",
    "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball",
    "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
    "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
    "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
    "toothbrush",
]
assert len(COCO_NAMES) == 80


def _sigmoid(x):
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


def _conv2d(x, w, stride):
    """NCHW conv, 'same' padding for odd k, by im2col + matmul per image."""
    cout, cin, k, _ = w.shape
    p = k // 2
    out = []
    for image in x:
        xp = np.pad(image, ((0, 0), (p, p), (p, p)))
        win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(1, 2))
        win = win[:, ::stride, ::stride]
        _, ho, wo, _, _ = win.shape
        cols = win.transpose(1, 2, 0, 3, 4).reshape(ho * wo, cin * k * k)
        out.append((cols @ w.reshape(cout, -1).T).T.reshape(cout, ho, wo))
    return np.stack(out).astype(np.float32)


class Graph:
    """Collects nodes and initialisers, counts multiply-accumulates, and runs
    every node in numpy on a calibration image as it is added, so that each
    convolution's weights can be scaled like a folded BatchNorm (zero mean,
    unit variance per channel on that image). Without that, random weights
    make activations shrink layer by layer and every class score comes out
    the same."""

    def __init__(self, seed, image):
        self.rng = np.random.default_rng(seed)
        self.nodes = []
        self.inits = []
        self.macs = 0
        self.params = 0
        self.counter = 0
        self.values = {"images": image}

    def name(self, prefix):
        self.counter += 1
        return f"{prefix}_{self.counter}"

    def const(self, array, prefix="c"):
        n = self.name(prefix)
        array = np.asarray(array)
        self.inits.append(numpy_helper.from_array(array, n))
        self.values[n] = array
        return n

    def node(self, op, inputs, prefix=None, **attrs):
        out = self.name(prefix or op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        v = [self.values[i] for i in inputs]
        if op == "Sigmoid":
            r = _sigmoid(v[0])
        elif op == "Tanh":
            r = np.tanh(v[0])
        elif op == "Mul":
            r = v[0] * v[1]
        elif op == "Add":
            r = v[0] + v[1]
        elif op == "Concat":
            r = np.concatenate(v, axis=attrs["axis"])
        elif op == "Resize":  # nearest, integer scales
            r = v[0].repeat(int(v[2][2]), axis=2).repeat(int(v[2][3]), axis=3)
        elif op == "Reshape":  # [1, 84, -1] per image
            r = v[0].reshape((v[0].shape[0],) + tuple(v[1][1:]))
        elif op == "Conv":
            r = _conv2d(v[0], v[1], attrs["strides"][0]) + v[2].reshape(1, -1, 1, 1)
        else:
            raise ValueError(op)
        self.values[out] = r.astype(np.float32)
        return out

    def conv(self, x, cin, cout, hw, k=3, stride=1, act=True, bias=0.0, gain=1.0):
        """Conv (BatchNorm folded into weight and bias, as exports do) + SiLU.
        `hw` is the output's spatial size (square). The folded "BatchNorm"
        makes each output channel `gain` * N(0, 1) + `bias` on the
        calibration image."""
        w = self.rng.normal(0.0, np.sqrt(2.0 / (cin * k * k)),
                            size=(cout, cin, k, k)).astype(np.float32)
        y = _conv2d(self.values[x], w, stride)
        assert y.shape[2] == hw, (y.shape, hw)
        mean = y.mean(axis=(0, 2, 3))
        std = y.std(axis=(0, 2, 3)) + 1e-6
        w = (w * (gain / std).reshape(-1, 1, 1, 1)).astype(np.float32)
        b = (bias - mean * gain / std).astype(np.float32)
        y = self.node("Conv", [x, self.const(w, "w"), self.const(b, "b")], "conv",
                      kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4)
        self.macs += hw * hw * cin * cout * k * k
        self.params += w.size + b.size
        self.last_conv = (y, self.inits[-1].name)  # (output, bias initialiser)
        if act:
            y = self.node("Mul", [y, self.node("Sigmoid", [y])], "silu")
        return y

    def block(self, x, c, hw):
        """Residual 3x3 + 3x3 (a YOLOv8 bottleneck)."""
        y = self.conv(x, c, c, hw)
        y = self.conv(y, c, c, hw)
        return self.node("Add", [x, y], "res")

    def up2(self, x):
        scales = self.const(np.array([1, 1, 2, 2], dtype=np.float32), "scales")
        roi = self.const(np.array([], dtype=np.float32), "roi")
        return self.node("Resize", [x, roi, scales], "up", mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor")


def calibration_image(size, seed):
    """A scene-like input in 0..1 as the detector feeds it: a frame of smooth
    gradients, random rectangles and grid lines, letterboxed (grey 114 bands
    above and below, as a 4:3 or 16:9 frame gets in a square input)."""
    rng = np.random.default_rng(seed + 1000)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.stack([0.3 + 0.4 * xx, 0.2 + 0.5 * yy, 0.5 - 0.3 * xx * yy])
    for _ in range(80):
        x0, y0 = rng.integers(0, size, 2)
        w, h = rng.integers(size // 60, size // 8, 2)
        img[:, y0:y0 + h, x0:x0 + w] = rng.random((3, 1, 1))
    step = max(8, size // 16)
    img[:, ::step, :] = 0.12
    img[:, :, ::step] = 0.12
    band = size * 7 // 32  # 16:9 in a square: 7/32 of the side above and below
    img[:, :band // 2, :] = 114 / 255
    img[:, size - band:, :] = 114 / 255
    return img[None].astype(np.float32)


def read_ppm(path):
    """Binary PPM (P6, maxval 255) -> HxWx3 uint8, RGB."""
    with open(path, "rb") as f:
        data = f.read()
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    pos += 1  # the single whitespace after maxval
    if fields[0] != b"P6" or int(fields[3]) != 255:
        raise SystemExit(f"{path}: not a binary 8-bit PPM")
    w, h = int(fields[1]), int(fields[2])
    return np.frombuffer(data, dtype=np.uint8, count=w * h * 3, offset=pos).reshape(h, w, 3)


def letterbox(rgb, size):
    """What freshframe's dnn detector feeds the network: the frame scaled
    (aspect kept, nearest here) and centred on grey 114, RGB in 0..1, NCHW."""
    h, w, _ = rgb.shape
    scale = min(size / w, size / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    ys = np.minimum((np.arange(nh) / scale).astype(int), h - 1)
    xs = np.minimum((np.arange(nw) / scale).astype(int), w - 1)
    canvas = np.full((size, size, 3), 114, dtype=np.uint8)
    top, left = (size - nh) // 2, (size - nw) // 2
    canvas[top:top + nh, left:left + nw] = rgb[ys][:, xs]
    return (canvas.transpose(2, 0, 1).astype(np.float32) / 255.0)[None]


def build(input_size, seed, calibration=(), candidates=None):
    s = input_size
    if s % 32 != 0 or s < 64:
        raise SystemExit(f"input size must be a multiple of 32, >= 64 (got {s})")
    images = [letterbox(read_ppm(p), s) for p in calibration] or [calibration_image(s, seed)]
    g = Graph(seed, np.concatenate(images))
    x = "images"
    # Backbone: widths 16/32/64/128/256 (yolov8n's), strides 2..32.
    x = g.conv(x, 3, 16, s // 2, stride=2)
    x = g.conv(x, 16, 32, s // 4, stride=2)
    x = g.conv(x, 32, 64, s // 8, stride=2)
    p3 = g.block(x, 64, s // 8)
    x = g.conv(p3, 64, 128, s // 16, stride=2)
    p4 = g.block(x, 128, s // 16)
    x = g.conv(p4, 128, 256, s // 32, stride=2)
    p5 = g.block(x, 256, s // 32)
    # Neck: top-down path (FPN) to strides 16 and 8.
    x = g.node("Concat", [g.up2(p5), p4], "cat", axis=1)
    x = g.conv(x, 256 + 128, 128, s // 16, k=1)
    n4 = g.conv(x, 128, 128, s // 16)
    x = g.node("Concat", [g.up2(n4), p3], "cat", axis=1)
    x = g.conv(x, 128 + 64, 64, s // 8, k=1)
    n3 = g.conv(x, 64, 64, s // 8)

    heads = []
    class_convs = []
    for feat, c, stride in ((n3, 64, 8), (n4, 128, 16), (p5, 256, 32)):
        hw = s // stride
        # Box branch -> cx, cy, w, h in input pixels on the anchor grid.
        b = g.conv(feat, c, 64, hw)
        b = g.conv(b, 64, 64, hw)
        offset = g.node("Tanh", [g.conv(b, 64, 2, hw, k=1, act=False, gain=0.5)])
        size = g.node("Sigmoid", [g.conv(b, 64, 2, hw, k=1, act=False, gain=0.5)])
        ys, xs = np.meshgrid(np.arange(hw, dtype=np.float32), np.arange(hw, dtype=np.float32),
                             indexing="ij")
        grid = (np.stack([xs, ys])[None] + 0.5) * stride  # [1,2,hw,hw] anchor centres
        centre = g.node("Add", [g.node("Mul", [offset, g.const(np.float32(stride), "s")]),
                                g.const(grid.astype(np.float32), "grid")])
        extent = g.node("Mul", [size, g.const(np.float32(stride * 8), "s")])
        # Class branch -> 80 sigmoid scores, biased low.
        k = g.conv(feat, c, 80, hw)
        k = g.conv(k, 80, 80, hw)
        logits = g.conv(k, 80, 80, hw, k=1, act=False)
        class_convs.append(g.last_conv)
        scores = g.node("Sigmoid", [logits])
        head = g.node("Concat", [centre, extent, scores], "head", axis=1)
        heads.append(g.node("Reshape", [head, g.const(np.array([1, 84, -1], dtype=np.int64),
                                                      "shape")]))
    out = g.node("Concat", heads, "cat", axis=2)
    g.nodes.append(helper.make_node("Identity", [out], ["output0"]))

    anchors = sum((s // st) ** 2 for st in (8, 16, 32))
    # One bias for all class logits: about `candidates` anchors per
    # calibration frame have a best class score >= 0.25.
    if candidates is None:
        candidates = 20.0 * anchors / 8400
    n = g.values["images"].shape[0]
    best = np.concatenate([g.values[y].reshape(n, 80, -1).max(axis=1) for y, _ in class_convs],
                          axis=1)  # [n, anchors]: best class logit per anchor
    ranked = np.sort(best.ravel())[::-1]
    pick = min(len(ranked) - 1, max(0, int(round(candidates * n)) - 1))
    threshold = float(np.log(0.25 / 0.75))  # logit of the 0.25 confidence
    g.class_bias = threshold - float(ranked[pick]) + 1e-4
    for _, bias_name in class_convs:
        i = next(j for j, t in enumerate(g.inits) if t.name == bias_name)
        b = numpy_helper.to_array(g.inits[i]) + np.float32(g.class_bias)
        g.inits[i] = numpy_helper.from_array(b.astype(np.float32), bias_name)
    g.candidates = round(float((best + g.class_bias >= threshold).sum()) / n, 1)
    graph = helper.make_graph(
        g.nodes, "freshframe_synthetic_yolov8_layout",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, s, s])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 84, anchors])],
        g.inits)
    model = helper.make_model(graph, producer_name="freshframe bench/detectors (synthetic)",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 7
    model.doc_string = ("SYNTHETIC: random weights, YOLOv8 output layout [1,84,N]; for timing "
                        "only, its detections are meaningless")
    onnx.checker.check_model(model)
    return model, g, anchors


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="ONNX file to write")
    parser.add_argument("--labels", help="also write 80 class names (COCO's), one per line")
    parser.add_argument("--input-size", type=int, default=640,
                        help="square network input, multiple of 32 (default 640)")
    parser.add_argument("--candidates", type=float, default=None,
                        help="anchors per calibration frame whose best class score passes 0.25 "
                             "(default 20 x anchors / 8400)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--calibrate", nargs="*", default=[], metavar="PPM",
                        help="frames (binary PPM, e.g. from detectors_bench --dump-frames) to "
                             "set the folded-BatchNorm scales on; default: a built-in "
                             "synthetic scene")
    args = parser.parse_args()

    model, g, anchors = build(args.input_size, args.seed, args.calibrate, args.candidates)
    onnx.save(model, args.out)
    if args.labels:
        with open(args.labels, "w", encoding="utf-8") as f:
            f.write("\n".join(COCO_NAMES) + "\n")
    gflops = 2.0 * g.macs / 1e9
    real = YOLOV8N_GFLOPS_640 * (args.input_size / 640.0) ** 2
    print(json.dumps({
        "model": args.out,
        "labels": args.labels,
        "synthetic": True,
        "input_size": args.input_size,
        "output_shape": [1, 84, anchors],
        "params": g.params,
        "macs": g.macs,
        "gflops": round(gflops, 2),
        "yolov8n_gflops_same_input": round(real, 2),
        "ratio_to_yolov8n": round(gflops / real, 2),
        "class_bias": round(g.class_bias, 3),
        "calibrated_on": args.calibrate or "built-in synthetic scene",
        "calibration_candidates_at_0.25": g.candidates,
        "note": (f"synthetic YOLOv8-layout model, random weights: {gflops:.2f} GFLOPs at "
                 f"{args.input_size}x{args.input_size} vs ~{real:.1f} for a real YOLOv8n "
                 f"({gflops / real:.0%}); only convolutions are counted; its layers (plain "
                 "3x3 convs, no C2f split/concat, no DFL) are not yolov8n's, so time per "
                 "GFLOP may differ"),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
