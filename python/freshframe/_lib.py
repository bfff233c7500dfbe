"""The C ABI of libfreshframe_bus.so (src/bus/c_api.h) through ctypes.

Internal to the package. ctypes releases the GIL for the whole of every call
into a CDLL, so a thread waiting for a frame lets other Python threads run.
"""
import ctypes
import os

ABI_VERSION = 1  # FF_ABI_VERSION in src/bus/c_api.h
FORMAT_BGR24, FORMAT_GRAY8 = 1, 2


class BusError(Exception):
    """A bus cannot be used: the message says why and what to do."""


class Closing:
    """close() at the end of a with block, and when collected."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except AttributeError:  # the constructor raised before there was anything to close
            pass


class FrameMeta(ctypes.Structure):
    _fields_ = [
        ("sequence", ctypes.c_uint64),
        ("source_id", ctypes.c_uint32),
        ("format", ctypes.c_uint32),
        ("width", ctypes.c_int32),
        ("height", ctypes.c_int32),
        ("detections_sequence", ctypes.c_uint64),
        ("capture_us", ctypes.c_int64),
        ("grab_us", ctypes.c_int64),
        ("infer_start_us", ctypes.c_int64),
        ("infer_end_us", ctypes.c_int64),
        ("publish_us", ctypes.c_int64),
        ("encode_us", ctypes.c_int64),
    ]


class FrameOut(ctypes.Structure):
    _fields_ = [
        ("meta", FrameMeta),
        ("publish_index", ctypes.c_uint64),
        ("writer_epoch", ctypes.c_uint64),
        ("view_id", ctypes.c_uint64),
        ("pixels", ctypes.c_void_p),
        ("channels", ctypes.c_uint32),
        ("row_bytes", ctypes.c_uint32),
    ]


def _library_path():
    override = os.environ.get("FRESHFRAME_BUS_LIBRARY")
    if override:
        return override
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "libfreshframe_bus.so")


def _load():
    path = _library_path()
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise ImportError(
            f"freshframe: cannot load the bus library {path} ({e}); build freshframe first "
            "(make), then use the package from build/<preset>/python, or install it with "
            "cmake --install") from None
    c = ctypes
    signatures = {
        "ff_abi_version": (c.c_int, []),
        "ff_last_error": (c.c_char_p, []),
        "ff_now_us": (c.c_int64, []),
        "ff_unlink": (None, [c.c_char_p]),
        "ff_reader_open": (c.c_void_p, [c.c_char_p, c.c_int, c.c_int64]),
        "ff_reader_read": (c.c_int, [c.c_void_p, c.c_int32, c.POINTER(FrameOut)]),
        "ff_reader_release": (None, [c.c_void_p, c.c_uint64]),
        "ff_reader_writer_alive": (c.c_int, [c.c_void_p]),
        "ff_reader_close": (None, [c.c_void_p]),
        "ff_writer_open": (c.c_void_p, [c.c_char_p, c.c_uint32, c.c_int64]),
        "ff_writer_publish": (c.c_int, [c.c_void_p, c.POINTER(FrameMeta), c.c_void_p, c.c_int32,
                                        c.c_int32, c.c_int32, c.c_size_t]),
        "ff_writer_publish_text": (c.c_int, [c.c_void_p, c.c_char_p, c.c_size_t, c.c_uint64]),
        "ff_writer_published": (c.c_uint64, [c.c_void_p]),
        "ff_writer_dropped": (c.c_uint64, [c.c_void_p]),
        "ff_writer_close": (None, [c.c_void_p]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes
    if lib.ff_abi_version() != ABI_VERSION:
        raise ImportError(f"freshframe: {path} speaks ABI {lib.ff_abi_version()}, this package "
                          f"{ABI_VERSION}: rebuild or reinstall both together")
    return lib


lib = _load()


OWNER_SELF, OWNER_ANY = -1, -2  # FF_OWNER_* in src/bus/c_api.h


def last_error():
    # The bus's messages name the command-line flag; here it is a keyword.
    message = lib.ff_last_error().decode("utf-8", "replace")
    return message.replace("--bus-allow-owner ", "allow_owner=")


def owner_arg(allow_owner):
    """allow_owner=None (only this user's buses), a uid, or "any"."""
    if allow_owner is None:
        return OWNER_SELF
    if allow_owner == "any":
        return OWNER_ANY
    if isinstance(allow_owner, int) and not isinstance(allow_owner, bool) and allow_owner >= 0:
        return allow_owner
    raise ValueError(f"allow_owner is None, a uid (int >= 0) or 'any', not {allow_owner!r}")


def now_us():
    """CLOCK_MONOTONIC now in microseconds: the clock of every frame stamp."""
    return lib.ff_now_us()


def encode_name(name):
    if not isinstance(name, str) or not name:
        raise ValueError(f"a bus name is a non-empty str like 'cam0.raw', not {name!r}")
    return name.encode("utf-8")
