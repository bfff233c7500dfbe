// Placeholder until the OpenCV-backed sources land (cameras, files, FFmpeg,
// GStreamer): opening reports that this build cannot read them yet.
#include "capture/capture.h"

namespace freshframe::capture {
namespace {

class UnavailableSource final : public FrameSource {
 public:
  explicit UnavailableSource(SourceSpec spec) : spec_(std::move(spec)) {}
  Expected<bool> Open() override {
    return Error{"cannot open " + spec_.text + ": " + std::string(SourceKindName(spec_.kind)) +
                 " sources are not available in this build"};
  }
  ReadResult Read(std::stop_token) override { return ReadResult::Failed("not available"); }
  std::string Describe() const override { return spec_.text; }
  int width() const override { return 0; }
  int height() const override { return 0; }
  double fps() const override { return 0; }

 private:
  SourceSpec spec_;
};

}  // namespace

std::unique_ptr<FrameSource> MakeOpenCvSource(const SourceSpec& spec, const SourceOptions&) {
  return std::make_unique<UnavailableSource>(spec);
}

}  // namespace freshframe::capture
