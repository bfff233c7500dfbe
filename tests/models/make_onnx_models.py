#!/usr/bin/python3
"""Writes tiny ONNX detection models with known outputs, for the DNN tests.

Usage: make_onnx_models.py OUT_DIR

Every model maps an image [1,3,320,320] to a constant tensor in one of the
output layouts freshframe's `dnn:` detector recognises, so the tests know
exactly which boxes come out. The graph is GlobalAveragePool -> Flatten ->
Gemm (all-zero weights, the constant as bias) -> Reshape: the result still
depends on the input, so OpenCV does not fold the graph away, and it uses
only layers OpenCV 4.6's ONNX importer handles well. Gemm takes transB=1
weights ([out,in]); 4.6 rejects the [in,out] form.

Boxes are in network pixels (320x320). The tests in
src/infer/dnn_detector_test.cpp decode them on letterboxed 640x480 and
1280x720 frames; keep the two files in step.

Written files:
  yolov5.onnx       [1,10,8]   cx,cy,w,h,objectness,3 class scores
  yolov8.onnx       [1,7,10]   (4+3) x 10 anchors, no objectness
  ssd.onnx          [1,1,9,7]  image_id,label,conf,x1,y1,x2,y2 (0..1)
  unsupported.onnx  [1,3,7,9]  no known layout
  fixed_input.onnx  [1,7,10]   like yolov8.onnx, but runs only on an 8x8 input
"""

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIZE = 320
CLASSES = 3
# Opset and IR version that OpenCV 4.6's ONNX importer reads.
OPSET = 11
IR_VERSION = 7

# (cx, cy, w, h, class, score) in network pixels.
#   0  box A, class 0, 0.81
#   1  box A shifted by (4,2): IoU 0.88 with row 0, same class -> NMS drops it
#   2  box A shifted by (2,0), class 1: overlaps row 0 but another class -> kept
#   3  box B, class 2, 0.45: kept at confidence 0.25, dropped at 0.5
#   4  class 2 with a low score 0.18: dropped (YOLOv5: objectness 0.2 x class
#      0.9, so a decoder that ignores objectness would keep it)
#   5  runs off the right edge and into the top padding: clipped to the frame
#   6  wholly inside the top padding (of 640x480 and 1280x720): dropped
BOXES = [
    (100, 120, 100, 80, 0, 0.81),
    (104, 122, 100, 80, 0, 0.72),
    (102, 120, 100, 80, 1, 0.72),
    (250, 200, 40, 40, 2, 0.45),
    (260, 100, 30, 30, 2, 0.18),
    (310, 60, 60, 80, 1, 0.81),
    (160, 20, 40, 20, 0, 0.9),
]
ANCHORS = 10  # more anchors than features, as in real YOLO outputs


def yolov5_rows():
    rows = np.zeros((ANCHORS, 5 + CLASSES), np.float32)
    for i, (cx, cy, w, h, cls, score) in enumerate(BOXES):
        # score = objectness x class score; row 4 has a high class score but
        # a low objectness.
        obj, cls_score = (0.2, 0.9) if i == 4 else (0.9, score / 0.9)
        rows[i, :5] = (cx, cy, w, h, obj)
        rows[i, 5:] = 0.05
        rows[i, 5 + cls] = cls_score
    return rows[np.newaxis]


def yolov8_columns():
    rows = np.zeros((ANCHORS, 4 + CLASSES), np.float32)
    for i, (cx, cy, w, h, cls, score) in enumerate(BOXES):
        rows[i, :4] = (cx, cy, w, h)
        rows[i, 4:] = 0.05
        rows[i, 4 + cls] = score
    return rows.T[np.newaxis].copy()


def ssd_rows():
    rows = []
    for cx, cy, w, h, cls, score in BOXES:
        x1, y1 = cx - w / 2, cy - h / 2
        rows.append([0, cls, score, x1 / SIZE, y1 / SIZE, (x1 + w) / SIZE, (y1 + h) / SIZE])
    # Caffe/OpenCV DetectionOutput pads with image_id -1: not a detection.
    rows.append([-1, 0, 0.99, 0.1, 0.1, 0.3, 0.3])
    rows.append([0, 0, 0.0, 0.0, 0.0, 0.0, 0.0])
    return np.array(rows, np.float32)[np.newaxis, np.newaxis]


def constant_model(value, name):
    """image [1,3,SIZE,SIZE] -> `value` (whatever the image holds)."""
    value = np.ascontiguousarray(value, np.float32)
    count = value.size
    nodes = [
        helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "zeros", "bias"], ["gemm"], transB=1),
        helper.make_node("Reshape", ["gemm", "shape"], ["output"]),
    ]
    initializers = [
        numpy_helper.from_array(np.zeros((count, 3), np.float32), "zeros"),
        numpy_helper.from_array(value.reshape(-1), "bias"),
        numpy_helper.from_array(np.array(value.shape, np.int64), "shape"),
    ]
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, list(value.shape))],
        initializers)
    model = helper.make_model(graph, producer_name="freshframe-tests",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def fixed_input_model(value):
    """image [1,3,8,8] -> `value`; any other input size fails in Gemm."""
    count = value.size
    nodes = [
        helper.make_node("Flatten", ["images"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "zeros", "bias"], ["gemm"], transB=1),
        helper.make_node("Reshape", ["gemm", "shape"], ["output"]),
    ]
    initializers = [
        numpy_helper.from_array(np.zeros((count, 3 * 8 * 8), np.float32), "zeros"),
        numpy_helper.from_array(value.reshape(-1), "bias"),
        numpy_helper.from_array(np.array(value.shape, np.int64), "shape"),
    ]
    graph = helper.make_graph(
        nodes, "fixed_input",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, list(value.shape))],
        initializers)
    model = helper.make_model(graph, producer_name="freshframe-tests",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_onnx_models.py OUT_DIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    models = {
        "yolov5.onnx": yolov5_rows(),
        "yolov8.onnx": yolov8_columns(),
        "ssd.onnx": ssd_rows(),
        "unsupported.onnx": np.full((1, 3, 7, 9), 0.5, np.float32),
    }
    for filename, value in models.items():
        onnx.save(constant_model(value, filename.split(".")[0]), os.path.join(out, filename))
    onnx.save(fixed_input_model(yolov8_columns()), os.path.join(out, "fixed_input.onnx"))


if __name__ == "__main__":
    main()
