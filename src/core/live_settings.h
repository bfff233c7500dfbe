// LiveSettings: the knobs an operator may turn while the pipeline runs
// (detector on/off, overlay mode, JPEG quality, mirror), shared by the stages
// that obey them and by whoever changes them (the HTTP API).
//
// Thread-safety and ownership: the owner (the pipeline) creates one object
// and keeps it alive longer than every stage and server that holds a pointer
// to it. The getters may be called from any thread at any rate: each is one
// relaxed atomic load, cheap enough for a stage to read once per frame.
// Apply and Get may be called from any thread; a mutex orders writers among
// themselves, so each Apply reports exactly the values it produced. A stage
// reads each knob on its own, so while a change of several keys is being
// applied a stage may see some new values and some old ones for one frame.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>

namespace freshframe {

// How detections meet frames (the annotator; infer::Overlay is this type).
enum class OverlayMode : uint8_t {
  kLatest,    // every source frame, drawn with the newest detections
  kInferred,  // only the frames the detector finished
};

// "latest" / "inferred", the spelling of --overlay and of the HTTP API.
constexpr std::string_view OverlayName(OverlayMode mode) {
  return mode == OverlayMode::kInferred ? "inferred" : "latest";
}

constexpr std::optional<OverlayMode> ParseOverlay(std::string_view name) {
  if (name == "latest") return OverlayMode::kLatest;
  if (name == "inferred") return OverlayMode::kInferred;
  return std::nullopt;
}

inline constexpr int kMinJpegQuality = 1;
inline constexpr int kMaxJpegQuality = 100;

struct SettingsValues {
  bool detector = true;  // run the detector (and draw its boxes)
  OverlayMode overlay = OverlayMode::kLatest;
  int quality = 85;     // JPEG quality, kMinJpegQuality..kMaxJpegQuality
  bool mirror = false;  // flip the stream horizontally

  bool operator==(const SettingsValues&) const = default;
};

// Some keys of SettingsValues; the others stay as they are.
struct SettingsChange {
  std::optional<bool> detector = std::nullopt;
  std::optional<OverlayMode> overlay = std::nullopt;
  std::optional<int> quality = std::nullopt;
  std::optional<bool> mirror = std::nullopt;

  bool empty() const { return !detector && !overlay && !quality && !mirror; }
  bool operator==(const SettingsChange&) const = default;
};

class LiveSettings {
 public:
  explicit LiveSettings(const SettingsValues& initial = {})
      : detector_(initial.detector),
        overlay_(initial.overlay),
        quality_(ClampQuality(initial.quality)),
        mirror_(initial.mirror) {}
  LiveSettings(const LiveSettings&) = delete;
  LiveSettings& operator=(const LiveSettings&) = delete;

  // Relaxed loads throughout: each knob is a self-contained value. No other
  // memory is published through it (a stage that sees a new value reads
  // nothing else the writer wrote), so no ordering with other data is
  // needed; a stage that sees a change one frame late is fine.
  bool detector() const { return detector_.load(std::memory_order_relaxed); }
  OverlayMode overlay() const { return overlay_.load(std::memory_order_relaxed); }
  int quality() const { return quality_.load(std::memory_order_relaxed); }
  bool mirror() const { return mirror_.load(std::memory_order_relaxed); }

  // All values, consistent with every completed Apply (none is half done).
  SettingsValues Get() const {
    std::lock_guard lock(writer_);
    return Load();
  }

  // Applies every key `change` holds (quality clamped to 1..100; callers
  // validate first and report errors). Returns the values before and after.
  std::pair<SettingsValues, SettingsValues> Apply(const SettingsChange& change) {
    std::lock_guard lock(writer_);
    const SettingsValues before = Load();
    // Relaxed stores: see the getters; the mutex, not the atomics, orders
    // concurrent writers.
    if (change.detector) detector_.store(*change.detector, std::memory_order_relaxed);
    if (change.overlay) overlay_.store(*change.overlay, std::memory_order_relaxed);
    if (change.quality) quality_.store(ClampQuality(*change.quality), std::memory_order_relaxed);
    if (change.mirror) mirror_.store(*change.mirror, std::memory_order_relaxed);
    return {before, Load()};
  }

 private:
  static int ClampQuality(int quality) {
    return quality < kMinJpegQuality   ? kMinJpegQuality
           : quality > kMaxJpegQuality ? kMaxJpegQuality
                                       : quality;
  }

  SettingsValues Load() const { return {detector(), overlay(), quality(), mirror()}; }

  mutable std::mutex writer_;  // serialises Apply (and Get against it)
  std::atomic<bool> detector_;
  std::atomic<OverlayMode> overlay_;
  std::atomic<int> quality_;
  std::atomic<bool> mirror_;
};

}  // namespace freshframe
