"""The freshframe Python package over the bus (issue 15): round trip, zero
copy, newest-only, following writers, dead readers, the GIL, bad input."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import freshframe

WRITER = """
import sys, time, numpy as np, freshframe
name, width, height, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
out = freshframe.Publisher(name)
print("ready", flush=True)
for i in range(count):
    image = np.full((height, width, 3), i % 256, np.uint8)
    out.publish(image)
    time.sleep(0.002)
print("done", flush=True)
time.sleep(60)
"""


def image(width=64, height=48, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), np.uint8)


def mapping_of(address):
    """The /proc/self/maps line that holds `address`."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            low, high = (int(x, 16) for x in line.split()[0].split("-"))
            if low <= address < high:
                return line.strip()
    return ""


def test_round_trip_carries_pixels_and_stamps(bus_name):
    with freshframe.Publisher(bus_name) as out, freshframe.Subscriber(bus_name, timeout=5) as sub:
        sent = image(320, 240)
        assert out.publish(sent)
        frame = next(sub)
        assert (frame.width, frame.height, frame.format) == (320, 240, "bgr")
        assert frame.image.shape == (240, 320, 3) and frame.image.dtype == np.uint8
        assert np.array_equal(frame.image, sent)
        assert frame.seq == frame.sequence == 1 and frame.capture_us > 0
        # Stamps carried over by like=: the latency stays measurable.
        annotated = image(320, 240, seed=1)
        assert out.publish(annotated, like=frame)
        second = next(sub)
        assert second.seq == frame.seq and second.capture_us == frame.capture_us
        assert second.detections_sequence == frame.seq
        assert frame.read_us <= second.infer_end_us <= second.publish_us
        gray = np.arange(48 * 64, dtype=np.uint8).reshape(48, 64)
        out.publish(gray)
        third = next(sub)
        assert third.format == "gray" and np.array_equal(third.image, gray)
        own = third.copy()
        assert own.image.flags.writeable and not own.is_view
        own.image[:] = 0  # the copy is ours


def test_image_is_a_read_only_view_of_shared_memory(bus_name):
    with freshframe.Publisher(bus_name) as out, freshframe.Subscriber(bus_name, timeout=5) as sub:
        out.publish(image(640, 480))
        frame = next(sub)
        assert frame.is_view
        address = frame.image.__array_interface__["data"][0]
        assert f"/dev/shm/freshframe.{bus_name}" in mapping_of(address)
        assert not frame.image.flags.writeable and not frame.image.flags.owndata
        with pytest.raises(ValueError):
            frame.image[0, 0, 0] = 1
        # The view stays unchanged while the writer goes on.
        kept = frame.image.copy()
        for i in range(30):
            out.publish(image(640, 480, seed=i + 10))
        assert np.array_equal(frame.image, kept)


def test_views_beyond_the_limit_are_copies_and_the_writer_never_drops(bus_name):
    with freshframe.Publisher(bus_name) as out, \
            freshframe.Subscriber(bus_name, timeout=5, views=2) as sub:
        held = []
        for i in range(6):
            out.publish(image(seed=i))
            held.append(next(sub))  # keeps every frame, as a model keeping inputs would
        assert [f.is_view for f in held] == [True, True, False, False, False, False]
        assert sub.copies == 4 and out.dropped == 0
        for i, f in enumerate(held):
            assert np.array_equal(f.image, image(seed=i))
        # Slices keep a view alive; dropping the Frames gives the views back.
        piece = held[0].image[10:20]
        held.clear()
        out.publish(image(seed=7))
        kept = next(sub)
        assert kept.is_view  # the slice holds one view, `kept` the other
        out.publish(image(seed=8))
        assert not next(sub).is_view
        del piece
        out.publish(image(seed=9))
        assert next(sub).is_view
        assert np.array_equal(kept.image, image(seed=7))


def test_a_slow_reader_skips_and_never_goes_back(bus_name, child):
    writer = child(WRITER, bus_name, 64, 48, 400)
    assert writer.readline() == "ready"
    seen = []
    with freshframe.Subscriber(bus_name, timeout=10) as sub:
        while len(seen) < 15:
            frame = next(sub)
            seen.append(frame.seq)
            time.sleep(0.03)  # a model slower than the writer
        assert sub.skipped > 0
    assert all(a < b for a, b in zip(seen, seen[1:])), seen
    assert seen[-1] - seen[0] > len(seen)


def test_writer_restart_and_size_change_are_followed(bus_name, child):
    with freshframe.Subscriber(bus_name, timeout=10) as sub:
        first = child(WRITER, bus_name, 320, 240, 100000)
        assert first.readline() == "ready"
        assert next(sub).width == 320
        assert sub.writer_alive
        first.stop()
        deadline = time.monotonic() + 5
        while sub.writer_alive and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not sub.writer_alive
        second = child(WRITER, bus_name, 640, 480, 100000)
        assert second.readline() == "ready"
        frame = next(sub)
        while frame.width != 640:
            frame = next(sub)
        assert frame.image.shape == (480, 640, 3)
        assert sub.writer_alive


READER_HOLDING_VIEWS = """
import sys, freshframe
sub = freshframe.Subscriber(sys.argv[1], timeout=10, views=3)
held = [next(sub) for _ in range(3)]
print("holding", sum(f.is_view for f in held), flush=True)
import time; time.sleep(60)
"""


def test_a_reader_killed_while_holding_views_leaves_nothing_behind(bus_name, child):
    with freshframe.Publisher(bus_name, slots=4) as out:
        reader = child(READER_HOLDING_VIEWS, bus_name)
        holding = threading.Event()

        def publish_until_held():
            i = 0
            while not holding.is_set():
                out.publish(image(seed=i))
                i += 1
                time.sleep(0.05)

        publisher = threading.Thread(target=publish_until_held)
        publisher.start()
        line = reader.readline()
        holding.set()
        publisher.join()
        assert line == "holding 3"
        # Three pins (the newest among them, or not) of four slots: at most
        # one slot to write, then drops.
        for i in range(4):
            out.publish(image(seed=i))
        assert out.dropped > 0
        reader.process.send_signal(signal.SIGKILL)
        reader.process.wait(timeout=10)
        dropped = out.dropped
        for i in range(20):
            assert out.publish(image(seed=i))  # the dead reader's pins are reclaimed
        assert out.dropped == dropped
        # Its reader entries are free again: 64 entries, 16 views each.
        subs = [freshframe.Subscriber(bus_name, views=15) for _ in range(4)]
        for s in subs:
            s.close()


def test_waiting_releases_the_gil(bus_name):
    sub = freshframe.Subscriber(bus_name)
    result = []
    waiter = threading.Thread(target=lambda: result.append(sub.read(timeout=1.5)))
    start = time.monotonic()
    waiter.start()
    spins = 0
    while waiter.is_alive():
        spins += 1
    assert time.monotonic() - start >= 1.0
    assert result == [None]
    # Pure Python ran all along: millions of rounds, not the handful a held
    # GIL would allow (one per switch interval at best).
    assert spins > 100000, spins
    sub.close()


def test_close_keeps_held_views_valid(bus_name):
    out = freshframe.Publisher(bus_name)
    sub = freshframe.Subscriber(bus_name, timeout=5)
    sent = image(seed=3)
    out.publish(sent)
    frame = next(sub)
    sub.close()
    with pytest.raises(StopIteration):
        next(sub)
    assert sub.read(0.1) is None
    out.publish(image(seed=4))
    assert np.array_equal(frame.image, sent)
    del frame
    out.close()


def test_ctrl_c_interrupts_a_wait(bus_name, child):
    waiting = child("""
        import sys, freshframe
        sub = freshframe.Subscriber(sys.argv[1])
        print("waiting", flush=True)
        try:
            next(sub)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        """, bus_name)
    assert waiting.readline() == "waiting"
    time.sleep(0.3)
    sent = time.monotonic()
    waiting.process.send_signal(signal.SIGINT)
    assert waiting.readline() == "interrupted"
    assert time.monotonic() - sent < 5
    assert waiting.process.wait(timeout=10) == 0


def test_a_bus_that_never_appears_is_an_error_after_the_timeout(bus_name):
    with freshframe.Subscriber(bus_name, timeout=0.3) as sub:
        start = time.monotonic()
        with pytest.raises(freshframe.BusError, match="no frame on bus .* is its writer running"):
            next(sub)
        assert time.monotonic() - start >= 0.25
        assert sub.read(timeout=0.05) is None


def test_foreign_objects_and_bad_names_are_bus_errors(bus_name):
    with pytest.raises(ValueError):
        freshframe.Subscriber("")
    with pytest.raises(freshframe.BusError, match="cannot read bus a/b"):
        freshframe.Subscriber("a/b")
    with pytest.raises(ValueError, match="views"):
        freshframe.Subscriber(bus_name, views=0)
    path = f"/dev/shm/freshframe.{bus_name}"
    with open(path, "wb") as junk:
        junk.write(b"not a bus" * 1000)
    os.chmod(path, 0o600)
    with pytest.raises(freshframe.BusError, match="not a freshframe bus"):
        freshframe.Subscriber(bus_name)
    with pytest.raises(freshframe.BusError, match="not a freshframe bus"):
        freshframe.Publisher(bus_name)
    os.unlink(path)
    # A bus of a later layout version (the version word at offset 8).
    with freshframe.Publisher(bus_name) as out:
        out.publish(image())
    with open(path, "r+b") as bus:
        bus.seek(8)
        bus.write((99).to_bytes(4, "little"))
    with pytest.raises(freshframe.BusError, match="version"):
        freshframe.Subscriber(bus_name)
    os.unlink(path)
    # Another writer is alive.
    with freshframe.Publisher(bus_name):
        with pytest.raises(freshframe.BusError, match="writer"):
            freshframe.Publisher(bus_name)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the bus to another user")
def test_a_bus_of_another_user_is_refused(bus_name):
    with freshframe.Publisher(bus_name) as out:
        out.publish(image())
    os.chown(f"/dev/shm/freshframe.{bus_name}", 65534, 65534)
    with pytest.raises(freshframe.BusError, match="owned by .*allow_owner=65534 trusts"):
        freshframe.Subscriber(bus_name)
    with pytest.raises(ValueError, match="allow_owner"):
        freshframe.Subscriber(bus_name, allow_owner="nobody")
    with freshframe.Subscriber(bus_name, allow_owner=65534, timeout=5) as sub:
        assert next(sub).width == 64
    freshframe.Subscriber(bus_name, allow_owner="any").close()


def test_publish_refuses_arrays_it_cannot_send(bus_name):
    with freshframe.Publisher(bus_name) as out:
        with pytest.raises(ValueError, match="dtype float32"):
            out.publish(np.zeros((4, 4, 3), np.float32))
        with pytest.raises(ValueError, match=r"shape \(4, 4, 4\)"):
            out.publish(np.zeros((4, 4, 4), np.uint8))
        with pytest.raises(ValueError, match="non-contiguous"):
            out.publish(np.zeros((8, 8, 3), np.uint8)[:, ::2])
        with pytest.raises(ValueError, match="got list"):
            out.publish([[1, 2, 3]])
        assert out.published == 0


def test_detection_sets_are_the_json_of_api_detections(bus_name):
    dets = bus_name + ".detections"
    with freshframe.Publisher(bus_name) as out, freshframe.Subscriber(bus_name, timeout=5) as sub, \
            freshframe.DetectionPublisher(dets, detector="python:test") as model, \
            freshframe.Subscriber(dets, timeout=5) as texts:
        out.publish(image(320, 240))
        frame = next(sub)
        found = [freshframe.Detection("face", 0.9123, (10.4, 20, 30, 40)),
                 freshframe.Detection.from_xyxy("cat", 0.5, 1, 2, 11, 22)]
        assert model.publish(frame, found)
        text = next(texts)
        assert text.format == "gray" and text.height == 1
        body = json.loads(bytes(text.image).decode())
        assert body["sequence"] == frame.seq and body["capture_us"] == frame.capture_us
        assert (body["width"], body["height"]) == (320, 240)
        assert body["detector"] == "python:test" and body["detector_running"] is True
        assert body["infer_start_us"] == frame.read_us <= body["infer_end_us"]
        assert body["detections"] == [{"label": "face", "score": 0.912, "box": [10, 20, 30, 40]},
                                      {"label": "cat", "score": 0.5, "box": [1, 2, 10, 20]}]
        model.publish(frame, [], size=(160, 120))
        assert json.loads(bytes(next(texts).image).decode())["width"] == 160
        with pytest.raises(ValueError):
            freshframe.Detection("x", float("nan"), (0, 0, 1, 1))
        with pytest.raises(ValueError):
            freshframe.Detection("x", 0.5, (0, 0, 1))
        with pytest.raises(ValueError):
            freshframe.Detection("", 0.5, (0, 0, 1, 1))
        with pytest.raises(ValueError):
            model.publish(frame, [("face", 0.9, (0, 0, 1, 1))])
        with pytest.raises(ValueError):
            model.publish(None, [])


if __name__ == "__main__":
    sys.exit(subprocess.call([sys.executable, "-m", "pytest", "-q", __file__]))
