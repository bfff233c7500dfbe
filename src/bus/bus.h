// The shared-memory frame bus: one writer process, many reader processes,
// newest-frame-wins, for joining pipeline stages that run as separate
// processes (freshframe capture | infer | serve). Layout: docs/bus-protocol.md.
//
// Policy "newest-only, writer never waits": BusWriter::Publish always returns
// at once. Readers get the newest complete frame or wait for a newer one
// (sleeping on a futex in the shared header). Frames a reader was too slow
// for are skipped, never queued.
//
// Ownership and lifetime: a bus is the POSIX shared-memory object
// /dev/shm/freshframe.<name>. Whoever opens it first creates it; it stays
// until BusWriter::Unlink (or a reboot), so processes can come and go in any
// order. Killing any process at any instant leaves the bus usable: a frame
// half-written by a dead writer is never returned (its slot's sequence word
// is odd), a dead reader's pin is reclaimed by the writer, and a new writer
// takes over (new epoch) while readers keep running.
//
// Thread-safety: a BusWriter or BusReader object is used by one thread at a
// time. Any number of readers (in any processes, up to kMaxReaders) and one
// writer may use the same bus at once.
//
// Copy vs view: ReadCopy copies the newest frame out (validated by the slot's
// sequence word; a frame overwritten during the copy is retried on the
// newest). ReadView returns a zero-copy view that stays valid, unchanged,
// until it is released (or, once the reader holds as many views as it was
// opened for, it takes another view): the slot is pinned and the writer
// writes elsewhere. A reader opened for N views takes N reader entries and
// pins up to N slots; if every slot but the newest is pinned, the writer
// drops frames (counted) rather than wait. Size the bus with
// slots >= (views held by all readers) + 2.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>

#include <opencv2/core/mat.hpp>

#include "core/expected.h"
#include "core/frame.h"

namespace freshframe::bus {

inline constexpr int kMaxReaders = 64;
inline constexpr uint32_t kDefaultSlots = 8;

struct BusOptions {
  uint32_t slots = kDefaultSlots;  // 2..255, used when this process creates the bus
  // File mode of a bus this process creates: owner read+write, group bits
  // allowed, never world-writable or setuid/setgid/sticky (an Error).
  uint32_t mode = 0600;
  // An existing object owned by another user is refused (that user controls
  // every byte the reader trusts) unless it is owned by `allow_owner`, or
  // `allow_any_owner` is set (--bus-allow-owner UID|any).
  std::optional<uint32_t> allow_owner;
  bool allow_any_owner = false;
};

// The shared-memory object name for bus `name` ("freshframe.<name>").
// Names are [A-Za-z0-9._-]{1,200}; anything else is an Error.
Expected<std::string> ShmName(const std::string& name);

// Whether `mode` may be given to a bus (BusOptions::mode, --bus-mode): the
// owner reads and writes, a group may too, nobody else may write, no setuid,
// setgid or sticky bits. An Error says what is wrong.
Expected<bool> CheckBusMode(uint32_t mode);

// A frame's metadata and pixels as read from the bus.
struct BusFrame {
  FrameMeta meta;
  uint64_t checksum = 0;       // whatever the writer put (0: none)
  uint64_t publish_index = 0;  // the bus's publish counter (never repeats)
  uint64_t writer_epoch = 0;   // which writer incarnation published it
};

class BusWriter {
 public:
  // Opens (creating if needed) bus `name` and becomes its writer. An Error
  // if another live process is the writer, the name is invalid, or the
  // object is not a freshframe bus of this layout version.
  static Expected<std::unique_ptr<BusWriter>> Open(const std::string& name,
                                                   const BusOptions& options = {});
  ~BusWriter();  // gives up the writer role (the bus stays)
  BusWriter(const BusWriter&) = delete;
  BusWriter& operator=(const BusWriter&) = delete;

  enum class Result { kPublished, kDropped };
  // Publishes one frame (8-bit BGR or gray, any size: a frame larger than
  // the slots makes the writer replace the bus with a larger one, which
  // readers follow). Never waits for a reader.
  Expected<Result> Publish(const Frame& frame, uint64_t checksum = 0);

  // In-place publishing, for a producer that can write its pixels straight
  // into shared memory: ClaimSlot picks a slot for a frame of this size (as
  // Publish would, growing the bus if needed), the producer fills
  // claim.image(), then Commit makes it the newest frame. Readers see nothing
  // of it before Commit, so the only work left on the publish path is a few
  // header stores and the futex wake. The writer holds at most one claim:
  // claiming again, or destroying a Claim without committing it, abandons it
  // (the slot just holds no frame). A Claim must not outlive its BusWriter.
  class Claim {
   public:
    Claim() = default;
    Claim(Claim&& other) noexcept;
    Claim& operator=(Claim&& other) noexcept;
    ~Claim();
    // False when every slot was pinned by readers' views: the frame is
    // dropped (counted in dropped()), and Commit of it returns kDropped.
    explicit operator bool() const { return writer_ != nullptr; }
    // The slot's pixels (CV_8UC3 or CV_8UC1): write the frame into them
    // (do not reassign the Mat).
    cv::Mat& image() { return image_; }

   private:
    friend class BusWriter;
    BusWriter* writer_ = nullptr;
    uint64_t generation_ = 0;
    cv::Mat image_;
  };
  Expected<Claim> ClaimSlot(int width, int height, int channels);
  // Publishes the claimed frame with `meta` (width/height/format are taken
  // from the claim). An abandoned or empty claim returns kDropped.
  Expected<Result> Commit(Claim& claim, const FrameMeta& meta, uint64_t checksum = 0);

  uint64_t epoch() const;
  uint64_t published() const;
  uint64_t dropped() const;
  // Removes the name (running processes keep their mapping).
  static void Unlink(const std::string& name);

  struct State;

 private:
  explicit BusWriter(std::unique_ptr<State> state);
  void Abandon(uint64_t generation);
  std::unique_ptr<State> state_;
};

class BusReader {
 public:
  // Opens (creating an empty bus if needed, so a reader may start before the
  // writer) bus `name`. An Error if the name is invalid, the object is not a
  // freshframe bus or has another layout version, or the reader table has
  // no room for `views` more entries (kMaxReaders in all). `views` (1..16)
  // is how many zero-copy views this reader may hold at once: each pins one
  // slot through its own entry. Copies (ReadCopy) need none of them.
  static Expected<std::unique_ptr<BusReader>> Open(const std::string& name,
                                                   const BusOptions& options = {}, int views = 1);
  ~BusReader();
  BusReader(const BusReader&) = delete;
  BusReader& operator=(const BusReader&) = delete;

  // The newest frame published after the last one this reader returned, or
  // after waiting up to `timeout` for one; nullopt on timeout, on a stop
  // request, or when the newest frame's slot is corrupt (error() says so).
  // Pixels are copied into a new cv::Mat. Never spins: every retry checks
  // the deadline and `stop`, and a corrupt slot is not retried until the
  // writer publishes again.
  std::optional<Frame> ReadCopy(std::chrono::milliseconds timeout, BusFrame* info = nullptr,
                                std::stop_token stop = {});

  class View {
   public:
    View() = default;
    View(View&& other) noexcept;
    View& operator=(View&& other) noexcept;
    ~View();
    explicit operator bool() const { return reader_ != nullptr; }
    const BusFrame& info() const { return info_; }
    // Wraps the shared pixels without copying; valid while this View is.
    const cv::Mat& image() const { return image_; }
    void Release();

   private:
    friend class BusReader;
    BusReader* reader_ = nullptr;
    uint64_t generation_ = 0;              // which of the reader's views
    std::shared_ptr<const void> mapping_;  // keeps the pinned memory mapped
    BusFrame info_;
    cv::Mat image_;
  };
  // As ReadCopy, but zero-copy: the returned View pins its slot. A View must
  // not outlive the BusReader it came from. While the reader already holds
  // as many views as it was opened for, taking a new one releases the oldest
  // of them (with one view: the previous one) at once, before waiting: that
  // older View object must not be used any more (its pixels may be
  // overwritten). Views released by their owners are reused first.
  View ReadView(std::chrono::milliseconds timeout, std::stop_token stop = {});

  // Why reads return nothing although the bus names a newer frame: set when
  // that frame's slot fails validation ("bus freshframe.X is corrupt: slot
  // 3 of 8: ..."), cleared by the next frame read.
  const std::optional<Error>& error() const;

  // Whether a writer is attached and alive right now.
  bool WriterAlive() const;
  uint64_t writer_epoch() const;

  struct State;

 private:
  explicit BusReader(std::unique_ptr<State> state);
  void ReleasePin(uint64_t generation);
  std::unique_ptr<State> state_;
};

inline constexpr int kMaxViewsPerReader = 16;

// A cheap checksum of pixel bytes (for tests and the stress benchmark).
uint64_t PixelChecksum(const void* data, size_t size);

}  // namespace freshframe::bus
