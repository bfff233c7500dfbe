/* The frame bus as a C ABI, for other languages: the Python package
 * (python/freshframe, over ctypes) is its user. Built into
 * libfreshframe_bus.so; nothing of C++ crosses it (plain structs, integers,
 * pointers, NUL-terminated strings), so it loads into any process, in any
 * Python, without a compiler. It is the C++ bus (bus/bus.h) itself, not a
 * second implementation of the protocol.
 *
 * Errors: a function that fails returns NULL or a negative number and sets a
 * message for the calling thread, read with ff_last_error() (valid until the
 * thread's next call). Messages say what to do ("start the writer...").
 *
 * Thread-safety and ownership: one ff_reader or ff_writer is used by one
 * thread at a time (callers serialise; any thread may be the one). Handles
 * are owned by the caller and freed by ff_*_close. Calls that wait (reads)
 * wait at most their timeout; callers that must stay interruptible pass
 * short timeouts and loop. A view's pixels stay valid and unchanged until
 * ff_reader_release of its id, or ff_reader_close: a view that is still
 * held keeps its memory mapped until then, so close only once no view of
 * the reader is in use.
 */
#ifndef FRESHFRAME_BUS_C_API_H_
#define FRESHFRAME_BUS_C_API_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever a struct or a signature below changes. */
#define FF_ABI_VERSION 1

typedef struct ff_reader ff_reader;
typedef struct ff_writer ff_writer;

/* Pixel formats (FrameMeta's PixelFormat). */
#define FF_FORMAT_BGR24 1
#define FF_FORMAT_GRAY8 2

/* A frame's metadata: what a slot header carries. All times are
 * CLOCK_MONOTONIC microseconds, 0 = not done. */
typedef struct ff_frame_meta {
  uint64_t sequence;
  uint32_t source_id;
  uint32_t format;
  int32_t width;
  int32_t height;
  uint64_t detections_sequence;
  int64_t capture_us;
  int64_t grab_us;
  int64_t infer_start_us;
  int64_t infer_end_us;
  int64_t publish_us;
  int64_t encode_us;
} ff_frame_meta;

/* A frame read from a bus: metadata, where the pixels are, and the view id
 * that pins them. */
typedef struct ff_frame {
  ff_frame_meta meta;
  uint64_t publish_index;
  uint64_t writer_epoch;
  uint64_t view_id; /* pass to ff_reader_release */
  const uint8_t* pixels;
  uint32_t channels;  /* 1 or 3 */
  uint32_t row_bytes; /* width * channels: rows are contiguous */
} ff_frame;

int ff_abi_version(void);
const char* ff_last_error(void);
/* CLOCK_MONOTONIC now, microseconds: the clock of every stamp. */
int64_t ff_now_us(void);
/* Removes bus `name` (running processes keep their mapping). */
void ff_unlink(const char* name);

/* Whose bus objects an open accepts besides the caller's own user's
 * (BusOptions::allow_owner, --bus-allow-owner): a uid >= 0, or one of: */
#define FF_OWNER_SELF (-1)
#define FF_OWNER_ANY (-2)

/* Opens bus `name` as a reader that may hold up to `views` views at once
 * (1..16); creates the bus (empty) when it does not exist yet, so a reader
 * may start before its writer. NULL on error. */
ff_reader* ff_reader_open(const char* name, int views, int64_t allow_owner);
/* Waits up to `timeout_ms` for a frame newer than the last one returned and
 * pins it as a view: 1 with *out filled, 0 on timeout, -1 on error (a
 * corrupt bus: ff_last_error says why; the reader stays usable). When every
 * view is held, the oldest is released first. */
int ff_reader_read(ff_reader* reader, int32_t timeout_ms, ff_frame* out);
/* Releases a view (unknown or already released ids are ignored). */
void ff_reader_release(ff_reader* reader, uint64_t view_id);
/* 1 while a writer process is attached and alive. */
int ff_reader_writer_alive(const ff_reader* reader);
void ff_reader_close(ff_reader* reader);

/* Opens (creating if needed, with `slots` slots, 0: the default) bus `name`
 * and becomes its writer. NULL on error (another live writer, a foreign
 * object, a bad name). */
ff_writer* ff_writer_open(const char* name, uint32_t slots, int64_t allow_owner);
/* Publishes `height` rows of `width` * `channels` bytes (channels 1 or 3),
 * rows `row_stride` bytes apart, with `meta` (its width, height and format
 * are taken from the arguments; a publish_us of 0 is set to the moment the
 * copied frame becomes visible to readers). Never waits for readers.
 * 1: published, 0: dropped (every slot pinned), -1: error. */
int ff_writer_publish(ff_writer* writer, const ff_frame_meta* meta, const uint8_t* pixels,
                      int32_t width, int32_t height, int32_t channels, size_t row_stride);
/* Publishes `size` bytes of text as a text-bus frame (bus/text_bus.h).
 * Same results as ff_writer_publish. */
int ff_writer_publish_text(ff_writer* writer, const char* text, size_t size, uint64_t sequence);
uint64_t ff_writer_published(const ff_writer* writer);
uint64_t ff_writer_dropped(const ff_writer* writer);
void ff_writer_close(ff_writer* writer);

#ifdef __cplusplus
}
#endif

#endif /* FRESHFRAME_BUS_C_API_H_ */
