"""Part 1 of bench/python: the cost of handing one frame to a Python process
that holds it as a numpy array, for three transports.

Every row is two processes forked from the driver: a producer and a
consumer (the driver only waits meanwhile). The consumer takes
time.monotonic_ns() once it holds the numpy array and has read its first
byte. Two latencies per frame, both = that time - a producer stamp:

- hand-off (the issue's figure): from the moment the frame is in the
  transport and handed over, to the consumer holding it.
- total: from before the producer touched the frame, so it includes the
  copy into shared memory that both shared-memory designs make once.

- freshframe: freshframe.Publisher.publish copies the frame into a slot
  (C++ bus, libfreshframe_bus.so) and commits it; the bus stamps publish_us
  at the commit (hand-off = now - publish_us); the producer's own stamp
  before publish() gives the total. The consumer is a freshframe.Subscriber;
  the frame must be a zero-copy view (frame.is_view).
- queue: the guide's design, multiprocessing.Queue(maxsize=2) of numpy
  frames: stamp before put(), measure after get() returned the array.
  Pickling and the pipe are the hand-off itself: hand-off = total.
- shm: the guide's improved design, a ring of multiprocessing.shared_memory
  buffers; the producer stamps, copies a frame into one, stamps again and
  puts (name, seq, stamps) on a Queue(maxsize=2) (hand-off from the second
  stamp, total from the first); the consumer attaches each name once
  (cached) and makes an np.ndarray over shm.buf.

Byte [0, 0, 0] of frame `seq` is seq % 256: the consumer checks it, so a row
that handed over the wrong pixels is seen (column "bad").
"""
import queue
import signal
import time

import numpy as np

FRESHFRAME, QUEUE, SHM = "freshframe", "queue", "shm"
KINDS = (FRESHFRAME, QUEUE, SHM)
SOURCE_FRAMES = 4  # producer's ring of distinct source arrays (as a camera gives new ones)
SHM_BUFFERS = 4  # the shared_memory design's ring
QUEUE_MAXSIZE = 2  # the guide's Queue(maxsize=2)
STEP_TIMEOUT_S = 20.0  # bound on every wait of a row
ACK_TIMEOUT_S = 2.0  # lock-step: longest wait for the consumer to hold the previous frame


def _die_with_parent():
    """Linux: SIGKILL this child when the driver dies (no orphans)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort; every wait is bounded anyway
        pass


def _sources(width, height):
    rng = np.random.default_rng(width * height)
    return [rng.integers(0, 256, (height, width, 3), np.uint8) for _ in range(SOURCE_FRAMES)]


def _paced(spec):
    """Yields 1..warmup+frames at spec["rate"] (late: no burst). Lock-step
    (spec["ack"] set): frame seq+1 only once the consumer holds frame seq
    (waits bounded; a frame never acknowledged is counted in spec["late"])."""
    period_ns = int(1e9 / spec["rate"])
    ack = spec.get("ack")
    due = time.monotonic_ns()
    for seq in range(1, spec["warmup"] + spec["frames"] + 1):
        if ack is not None and seq > 1 and not ack.acquire(timeout=ACK_TIMEOUT_S):
            spec["late"] += 1
        delay = due - time.monotonic_ns()
        if delay > 0:
            time.sleep(delay / 1e9)
        due = max(due + period_ns, time.monotonic_ns())
        yield seq


def _marked_frames(spec, sync):
    """After `go`: (seq, image) as _paced yields them, byte [0, 0, 0] of
    each image set to seq % 256. At most 3 frames are in flight in any row,
    so reusing a ring of SOURCE_FRAMES (4) source arrays is safe."""
    sources = _sources(spec["width"], spec["height"])
    if not sync["go"].wait(STEP_TIMEOUT_S):
        raise RuntimeError("no go")
    for seq in _paced(spec):
        image = sources[seq % SOURCE_FRAMES]
        image[0, 0, 0] = seq % 256
        yield seq, image


# ---------------------------------------------------------------------------
# Producers: signal `ready` once the transport exists, wait for `go`, send
# warmup + frames frames, wait (bounded) for the consumer to finish, clean up.

def _produce_freshframe(spec, sync, results):
    import freshframe
    out = freshframe.Publisher(spec["bus"])
    sync["ready_p"].set()
    before = {}  # seq -> freshframe.now_us() just before publish()
    dropped = 0
    try:
        for seq, image in _marked_frames(spec, sync):
            before[seq] = freshframe.now_us()
            if not out.publish(image):  # publish() numbers frames 1, 2, ... as we do
                dropped += 1
        sync["done_c"].wait(STEP_TIMEOUT_S)
    finally:
        out.close()
    results.put(("producer", {"before_us": before, "dropped": dropped, "late": spec["late"]}))


def _produce_queue(spec, sync, results):
    q = spec["queue"]
    sync["ready_p"].set()
    for seq, image in _marked_frames(spec, sync):
        q.put((seq, time.monotonic_ns(), image), timeout=STEP_TIMEOUT_S)
    sync["done_c"].wait(STEP_TIMEOUT_S)
    results.put(("producer", {"late": spec["late"]}))


def _produce_shm(spec, sync, results):
    from multiprocessing import shared_memory
    q = spec["queue"]
    shape = (spec["height"], spec["width"], 3)
    size = int(np.prod(shape))
    buffers = [shared_memory.SharedMemory(create=True, size=size) for _ in range(SHM_BUFFERS)]
    try:
        views = [np.ndarray(shape, np.uint8, buffer=b.buf) for b in buffers]
        views_of = list(zip(buffers, views))
        sync["ready_p"].set()
        for seq, image in _marked_frames(spec, sync):
            before = time.monotonic_ns()
            shm, view = views_of[seq % SHM_BUFFERS]
            view[...] = image
            q.put((shm.name, seq, before, time.monotonic_ns()), timeout=STEP_TIMEOUT_S)
        sync["done_c"].wait(STEP_TIMEOUT_S)
        del views, views_of, view
    finally:
        for b in buffers:
            b.close()
            b.unlink()
    results.put(("producer", {"late": spec["late"]}))


def _acknowledge(spec):
    if spec.get("ack") is not None:
        spec["ack"].release()


# ---------------------------------------------------------------------------
# Consumers: signal `ready_c`, take frames until the last one (or a bounded
# wait runs out), report latencies of the measured frames (seq > warmup).

def _consume_freshframe(spec, sync, results):
    import freshframe
    last = spec["warmup"] + spec["frames"]
    sub = freshframe.Subscriber(spec["bus"], timeout=STEP_TIMEOUT_S)
    sync["ready_c"].set()
    got, bad, copies, published_us = {}, 0, 0, {}
    try:
        while True:
            frame = sub.read(STEP_TIMEOUT_S)
            if frame is None:
                break
            image = frame.image
            first = int(image[0, 0, 0])  # one byte read: the view is real memory
            t_us = time.monotonic_ns() / 1000.0
            seq = frame.seq
            if seq > spec["warmup"]:
                got[seq] = t_us - frame.publish_us
                published_us[seq] = frame.publish_us
                bad += first != seq % 256
                copies += not frame.is_view
            del frame, image
            _acknowledge(spec)
            if seq >= last:
                break
    finally:
        sync["done_c"].set()
        sub.close()
    results.put(("consumer", {"latency_us": got, "bad": bad, "copies": copies,
                              "skipped": sub.skipped, "publish_us": published_us}))


def _consume_queue(spec, sync, results):
    q = spec["queue"]
    last = spec["warmup"] + spec["frames"]
    sync["ready_c"].set()
    got, bad = {}, 0
    try:
        while True:
            try:
                seq, stamp, image = q.get(timeout=STEP_TIMEOUT_S)
            except queue.Empty:
                break
            first = int(image[0, 0, 0])
            t = time.monotonic_ns()
            if seq > spec["warmup"]:
                got[seq] = (t - stamp) / 1000.0
                bad += first != seq % 256
            del image
            _acknowledge(spec)
            if seq >= last:
                break
    finally:
        sync["done_c"].set()
    results.put(("consumer", {"latency_us": got, "bad": bad}))


def _attach_untracked(name):
    """SharedMemory(name) without registering it with the resource tracker:
    Python < 3.13 registers segments a process merely attaches to and the
    tracker unlinks them (with a 'leaked shared_memory' warning) when that
    process exits, under the producer's feet (cpython#82300). Only the
    creator (the producer) should own them; 3.13 has track=False for this."""
    from multiprocessing import resource_tracker, shared_memory
    register = resource_tracker.register

    def register_but_shared_memory(name_, rtype):
        if rtype != "shared_memory":
            register(name_, rtype)

    resource_tracker.register = register_but_shared_memory
    try:
        return shared_memory.SharedMemory(name=name)
    finally:
        resource_tracker.register = register


def _consume_shm(spec, sync, results):
    q = spec["queue"]
    shape = (spec["height"], spec["width"], 3)
    last = spec["warmup"] + spec["frames"]
    attached = {}  # name -> SharedMemory, mapped once
    sync["ready_c"].set()
    got, total, bad = {}, {}, 0
    try:
        while True:
            try:
                name, seq, before, stamp = q.get(timeout=STEP_TIMEOUT_S)
            except queue.Empty:
                break
            shm = attached.get(name)
            if shm is None:
                shm = attached[name] = _attach_untracked(name)
            image = np.ndarray(shape, np.uint8, buffer=shm.buf)
            first = int(image[0, 0, 0])
            t = time.monotonic_ns()
            if seq > spec["warmup"]:
                got[seq] = (t - stamp) / 1000.0
                total[seq] = (t - before) / 1000.0
                bad += first != seq % 256
            del image  # before close(): an exported buffer cannot be closed
            _acknowledge(spec)
            if seq >= last:
                break
    finally:
        sync["done_c"].set()
        for shm in attached.values():
            shm.close()
    results.put(("consumer", {"latency_us": got, "total_us": total, "bad": bad}))


ROLES = {
    FRESHFRAME: (_produce_freshframe, _consume_freshframe),
    QUEUE: (_produce_queue, _consume_queue),
    SHM: (_produce_shm, _consume_shm),
}


def _child(role, spec, sync, results):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C
    _die_with_parent()
    try:
        role(spec, sync, results)
    except BaseException as e:  # noqa: BLE001 - reported to the driver
        sync["done_c"].set()
        results.put(("error", f"{role.__name__}: {type(e).__name__}: {e}"))


def run_row(ctx, kind, width, height, frames, warmup, rate, bus, lockstep=True):
    """One row: producer and consumer processes of transport `kind`. Returns
    {"latency_us": [...], "bad", "lost", ...} (lists in frame order)."""
    spec = {"width": width, "height": height, "frames": frames, "warmup": warmup,
            "rate": rate, "bus": bus, "late": 0,
            "ack": ctx.Semaphore(0) if lockstep else None}
    if kind in (QUEUE, SHM):
        spec["queue"] = ctx.Queue(maxsize=QUEUE_MAXSIZE)
    sync = {k: ctx.Event() for k in ("ready_p", "ready_c", "go", "done_c")}
    results = ctx.Queue()
    produce, consume = ROLES[kind]
    procs = []
    try:
        producer = ctx.Process(target=_child, args=(produce, spec, sync, results), daemon=True)
        producer.start()
        procs.append(producer)
        if not sync["ready_p"].wait(STEP_TIMEOUT_S):
            raise RuntimeError(f"{kind} producer not ready within {STEP_TIMEOUT_S} s")
        consumer = ctx.Process(target=_child, args=(consume, spec, sync, results), daemon=True)
        consumer.start()
        procs.append(consumer)
        if not sync["ready_c"].wait(STEP_TIMEOUT_S):
            raise RuntimeError(f"{kind} consumer not ready within {STEP_TIMEOUT_S} s")
        sync["go"].set()
        started = time.monotonic()
        bound = STEP_TIMEOUT_S + (warmup + frames) / rate + 3 * STEP_TIMEOUT_S
        deadline = time.monotonic() + bound
        parts = {}
        while len(parts) < 2:
            try:
                what, value = results.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"{kind} row: no result within {bound:.0f} s") from None
            if what == "error":
                raise RuntimeError(value)
            parts[what] = value
        for p in procs:
            p.join(timeout=STEP_TIMEOUT_S)
    finally:
        for p in procs:  # only our own children, by their Process objects
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
    got = parts["consumer"]
    seqs = sorted(got["latency_us"])
    if kind == FRESHFRAME:
        before = parts["producer"]["before_us"]
        total = {s: got["latency_us"][s] + got["publish_us"][s] - before[s]
                 for s in seqs if s in before}
    else:
        total = got.get("total_us", got["latency_us"])  # Queue: the hand-off is all of it
    row = {"kind": kind, "width": width, "height": height, "sent": frames,
           "latency_us": [got["latency_us"][s] for s in seqs],
           "total_us": [total[s] for s in seqs if s in total], "bad": got["bad"],
           "lost": frames - len(seqs), "late": parts["producer"]["late"],
           "seconds": (time.monotonic() - started)}
    if kind == FRESHFRAME:
        row.update({
            "copies": got["copies"], "skipped": got["skipped"],
            "dropped": parts["producer"]["dropped"],
            # The copy into the slot: before publish() -> the commit.
            "copy_us": [got["publish_us"][s] - before[s] for s in seqs if s in before],
        })
    return row
