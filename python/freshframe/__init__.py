"""freshframe for your own Python model: frames in, detections out, over
freshframe's shared-memory bus. freshframe captures, draws, encodes and
serves; your model runs at its own pace and always gets the newest frame.

    import freshframe

    sub = freshframe.Subscriber("cam0.raw")
    out = freshframe.DetectionPublisher("cam0.detections")
    for frame in sub:
        boxes = my_model(frame.image)          # HxWx3 uint8 BGR, read-only view
        out.publish(frame, [freshframe.Detection("person", 0.91, (x, y, w, h))])

beside `freshframe run --source ... --publish cam0 --detector bus:cam0.detections`.
Or draw yourself: Publisher("cam0.annotated").publish(image, like=frame) and
`freshframe serve --in cam0.annotated`. README "Your own Python model".

Needs CPython >= 3.8 and numpy; nothing to compile (the bus itself is
libfreshframe_bus.so, next to this file, loaded with ctypes).
"""
from ._lib import BusError, now_us
from ._publisher import Detection, DetectionPublisher, Publisher
from ._subscriber import Frame, Subscriber

__all__ = ["BusError", "Detection", "DetectionPublisher", "Frame", "Publisher", "Subscriber",
           "now_us", "unlink"]


def unlink(name):
    """Removes bus `name` (processes using it keep their mapping)."""
    from ._lib import encode_name, lib
    lib.ff_unlink(encode_name(name))
