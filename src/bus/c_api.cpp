// The C ABI of bus/c_api.h over BusReader/BusWriter. Every entry point
// catches everything: no C++ exception may cross into a C caller (ctypes
// would abort the interpreter).
#include "bus/c_api.h"

#include <chrono>
#include <exception>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <opencv2/core.hpp>

#include "bus/bus.h"
#include "bus/text_bus.h"
#include "core/clock.h"

#define FF_EXPORT __attribute__((visibility("default")))

struct ff_reader {
  std::unique_ptr<freshframe::bus::BusReader> reader;
  int views = 1;
  uint64_t next_id = 1;
  // The views handed out and not released yet, by id (ids only grow, so
  // the first is the oldest).
  std::map<uint64_t, freshframe::bus::BusReader::View> held;
};

struct ff_writer {
  std::unique_ptr<freshframe::bus::BusWriter> writer;
};

namespace {

using freshframe::Frame;
using freshframe::FrameMeta;
using freshframe::PixelFormat;
namespace bus = freshframe::bus;

thread_local std::string last_error;

void SetError(std::string message) { last_error = std::move(message); }

// Runs `body`, turning any exception into `failed` and an error message.
template <typename Result, typename Body>
Result Guard(Result failed, Body&& body) noexcept {
  try {
    return body();
  } catch (const std::exception& e) {
    SetError(std::string("freshframe bus: internal error: ") + e.what());
  } catch (...) {
    SetError("freshframe bus: internal error");
  }
  return failed;
}

ff_frame_meta MetaOut(const FrameMeta& m) {
  ff_frame_meta out{};
  out.sequence = m.sequence;
  out.source_id = m.source_id;
  out.format = static_cast<uint32_t>(m.format);
  out.width = m.width;
  out.height = m.height;
  out.detections_sequence = m.detections_sequence;
  out.capture_us = m.stamps.capture_us;
  out.grab_us = m.stamps.grab_us;
  out.infer_start_us = m.stamps.infer_start_us;
  out.infer_end_us = m.stamps.infer_end_us;
  out.publish_us = m.stamps.publish_us;
  out.encode_us = m.stamps.encode_us;
  return out;
}

FrameMeta MetaIn(const ff_frame_meta& m) {
  FrameMeta out;
  out.sequence = m.sequence;
  out.source_id = m.source_id;
  out.detections_sequence = m.detections_sequence;
  out.stamps = {m.capture_us,   m.grab_us,    m.infer_start_us,
                m.infer_end_us, m.publish_us, m.encode_us};
  return out;
}

bool OwnerOptions(int64_t allow_owner, bus::BusOptions& options) {
  if (allow_owner == FF_OWNER_ANY) {
    options.allow_any_owner = true;
  } else if (allow_owner >= 0 && allow_owner <= UINT32_MAX) {
    options.allow_owner = static_cast<uint32_t>(allow_owner);
  } else if (allow_owner != FF_OWNER_SELF) {
    SetError("allow_owner is a uid, FF_OWNER_SELF or FF_OWNER_ANY, not " +
             std::to_string(allow_owner));
    return false;
  }
  return true;
}

// The reader or writer `open(name, options)` makes, with the owner rule
// applied; null (and the message set) on any error.
template <typename Opened, typename OpenFn>
std::unique_ptr<Opened> OpenBus(const char* name, int64_t allow_owner, bus::BusOptions options,
                                OpenFn&& open) {
  if (name == nullptr) {
    SetError("no bus name given");
    return nullptr;
  }
  if (!OwnerOptions(allow_owner, options)) return nullptr;
  auto opened = open(std::string(name), options);
  if (!opened) {
    SetError(opened.error().message);
    return nullptr;
  }
  return std::move(opened).value();
}

int PublishResult(const freshframe::Expected<bus::BusWriter::Result>& result) {
  if (!result) {
    SetError(result.error().message);
    return -1;
  }
  return *result == bus::BusWriter::Result::kPublished ? 1 : 0;
}

}  // namespace

extern "C" {

FF_EXPORT int ff_abi_version(void) { return FF_ABI_VERSION; }

FF_EXPORT const char* ff_last_error(void) { return last_error.c_str(); }

FF_EXPORT int64_t ff_now_us(void) { return freshframe::MonotonicMicros(); }

FF_EXPORT void ff_unlink(const char* name) {
  Guard(0, [&] {
    if (name != nullptr) bus::BusWriter::Unlink(name);
    return 0;
  });
}

FF_EXPORT ff_reader* ff_reader_open(const char* name, int views, int64_t allow_owner) {
  return Guard<ff_reader*>(nullptr, [&]() -> ff_reader* {
    auto reader = OpenBus<bus::BusReader>(
        name, allow_owner, {}, [&](const std::string& bus_name, const bus::BusOptions& options) {
          return bus::BusReader::Open(bus_name, options, views);
        });
    if (!reader) return nullptr;
    auto* handle = new ff_reader;
    handle->reader = std::move(reader);
    handle->views = views;
    return handle;
  });
}

FF_EXPORT int ff_reader_read(ff_reader* reader, int32_t timeout_ms, ff_frame* out) {
  return Guard(-1, [&] {
    if (reader == nullptr || out == nullptr) {
      SetError("ff_reader_read: null argument");
      return -1;
    }
    // Every view held: the oldest goes first (BusReader would take its
    // entry anyway; erasing it here also drops its mapping reference).
    if (static_cast<int>(reader->held.size()) >= reader->views) {
      reader->held.erase(reader->held.begin());
    }
    auto view =
        reader->reader->ReadView(std::chrono::milliseconds(timeout_ms < 0 ? 0 : timeout_ms));
    if (!view) {
      if (const auto& error = reader->reader->error()) {
        SetError(error->message);
        return -1;
      }
      return 0;
    }
    const cv::Mat& image = view.image();
    *out = ff_frame{};
    out->meta = MetaOut(view.info().meta);
    out->publish_index = view.info().publish_index;
    out->writer_epoch = view.info().writer_epoch;
    out->pixels = image.data;
    out->channels = static_cast<uint32_t>(image.channels());
    out->row_bytes = static_cast<uint32_t>(image.step[0]);
    out->view_id = reader->next_id++;
    reader->held.emplace(out->view_id, std::move(view));
    return 1;
  });
}

FF_EXPORT void ff_reader_release(ff_reader* reader, uint64_t view_id) {
  Guard(0, [&] {
    if (reader != nullptr) reader->held.erase(view_id);
    return 0;
  });
}

FF_EXPORT int ff_reader_writer_alive(const ff_reader* reader) {
  return Guard(0, [&] { return reader != nullptr && reader->reader->WriterAlive() ? 1 : 0; });
}

FF_EXPORT void ff_reader_close(ff_reader* reader) {
  Guard(0, [&] {
    if (reader != nullptr) reader->held.clear();  // views before the reader they pin in
    delete reader;
    return 0;
  });
}

FF_EXPORT ff_writer* ff_writer_open(const char* name, uint32_t slots, int64_t allow_owner) {
  return Guard<ff_writer*>(nullptr, [&]() -> ff_writer* {
    bus::BusOptions defaults;
    if (slots != 0) defaults.slots = slots;
    auto writer =
        OpenBus<bus::BusWriter>(name, allow_owner, defaults,
                                [](const std::string& bus_name, const bus::BusOptions& options) {
                                  return bus::BusWriter::Open(bus_name, options);
                                });
    if (!writer) return nullptr;
    auto* handle = new ff_writer;
    handle->writer = std::move(writer);
    return handle;
  });
}

FF_EXPORT int ff_writer_publish(ff_writer* writer, const ff_frame_meta* meta, const uint8_t* pixels,
                                int32_t width, int32_t height, int32_t channels,
                                size_t row_stride) {
  return Guard(-1, [&] {
    if (writer == nullptr || meta == nullptr || pixels == nullptr) {
      SetError("ff_writer_publish: null argument");
      return -1;
    }
    if (width <= 0 || height <= 0 || (channels != 1 && channels != 3) ||
        row_stride < static_cast<size_t>(width) * static_cast<size_t>(channels)) {
      SetError(
          "ff_writer_publish: a frame is width x height pixels of 1 or 3 bytes, rows at "
          "least width * channels bytes apart");
      return -1;
    }
    auto claim = writer->writer->ClaimSlot(width, height, channels);
    if (!claim) {
      SetError(claim.error().message);
      return -1;
    }
    if (*claim) {
      // The caller's pixels (wrapped, not copied) go straight into the slot.
      cv::Mat(height, width, channels == 3 ? CV_8UC3 : CV_8UC1, const_cast<uint8_t*>(pixels),
              row_stride)
          .copyTo(claim->image());  // same size and type: never reallocates
    }
    FrameMeta frame_meta = MetaIn(*meta);
    // Unset: the moment the frame becomes visible (after the copy), so that
    // a reader's "now - publish_us" is the hand-off itself.
    if (frame_meta.stamps.publish_us == 0)
      frame_meta.stamps.publish_us = freshframe::MonotonicMicros();
    return PublishResult(writer->writer->Commit(*claim, frame_meta));
  });
}

FF_EXPORT int ff_writer_publish_text(ff_writer* writer, const char* text, size_t size,
                                     uint64_t sequence) {
  return Guard(-1, [&] {
    if (writer == nullptr || (text == nullptr && size > 0)) {
      SetError("ff_writer_publish_text: null argument");
      return -1;
    }
    return PublishResult(
        writer->writer->Publish(bus::TextToFrame(std::string_view(text, size), sequence)));
  });
}

FF_EXPORT uint64_t ff_writer_published(const ff_writer* writer) {
  return writer != nullptr ? writer->writer->published() : 0;
}

FF_EXPORT uint64_t ff_writer_dropped(const ff_writer* writer) {
  return writer != nullptr ? writer->writer->dropped() : 0;
}

FF_EXPORT void ff_writer_close(ff_writer* writer) {
  Guard(0, [&] {
    delete writer;
    return 0;
  });
}

}  // extern "C"
