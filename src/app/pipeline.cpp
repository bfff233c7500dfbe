#include "app/pipeline.h"

#include <optional>

#include <nlohmann/json.hpp>
#include <opencv2/core/utility.hpp>
#include <spdlog/spdlog.h>

#include "capture/capture.h"
#include "core/demand.h"
#include "core/latest_slot.h"
#include "core/metrics.h"
#include "encode/encode.h"
#include "http/http.h"
#include "infer/infer.h"

namespace freshframe::web {
extern const std::string_view kIndexHtml;
}

namespace freshframe::app {

// Declaration order is construction order: slots and shared state first,
// stages after, server last; destruction runs the other way round, so
// everything a stage or session refers to outlives it.
struct Pipeline::Parts {
  RunOptions options;
  Metrics metrics;
  Demand demand;
  LatestSlot<FramePtr> raw;
  LatestSlot<infer::DetectionSetPtr> detections;
  LatestSlot<FramePtr> annotated;
  LatestSlot<encode::EncodedFramePtr> jpeg;
  std::string source_description;
  int width = 0;
  int height = 0;
  double fps = 0;
  std::optional<capture::Grabber> grabber;
  std::optional<infer::DetectorStage> detector;
  std::optional<infer::AnnotatorStage> annotator;
  std::optional<encode::EncoderStage> encoder;
  std::unique_ptr<http::Server> server;
  bool stopped = false;

  nlohmann::json Describe() const {
    return {{"source",
             {{"spec", source_description}, {"width", width}, {"height", height}, {"fps", fps}}},
            {"detector", options.detector},
            {"overlay", options.overlay},
            {"quality", options.quality}};
  }
};

Expected<std::unique_ptr<Pipeline>> Pipeline::Create(const RunOptions& options) {
  auto parts = std::make_unique<Parts>();
  parts->options = options;

  auto source = capture::OpenSource(options.source);
  if (!source) return source.error();
  parts->source_description = (*source)->Describe();
  parts->width = (*source)->width();
  parts->height = (*source)->height();
  parts->fps = (*source)->fps();

  std::unique_ptr<infer::Detector> detector;
  if (options.detector == "faces") {
    // The detector gets a bounded share of the machine, so it cannot starve
    // capture, encoding and sending.
    cv::setNumThreads(options.detector_threads);
    infer::HaarOptions haar;
    haar.cascade_path = options.cascade;
    auto made = infer::MakeHaarFaceDetector(haar);
    if (!made) return made.error();
    detector = std::move(made).value();
  }

  http::ServerOptions server_options;
  server_options.bind = options.bind;
  server_options.port = static_cast<uint16_t>(options.port);
  server_options.threads = options.threads;
  Parts* raw_parts = parts.get();
  auto server = http::Server::Start(
      server_options, http::ServerDeps{parts->jpeg, parts->demand, parts->metrics,
                                       web::kIndexHtml,
                                       [raw_parts] { return raw_parts->Describe(); }});
  if (!server) return server.error();
  parts->server = std::move(server).value();

  const bool has_detector = detector != nullptr;
  parts->grabber.emplace(std::move(source).value(), parts->raw, parts->metrics);
  if (has_detector) {
    parts->detector.emplace(std::move(detector), parts->raw, parts->detections, parts->metrics);
  }
  parts->annotator.emplace(
      options.overlay == "inferred" ? infer::Overlay::kInferred : infer::Overlay::kLatest,
      parts->raw, has_detector ? &parts->detections : nullptr, parts->annotated, parts->metrics);
  parts->encoder.emplace(options.quality, parts->annotated, parts->jpeg, parts->demand,
                         parts->metrics);

  parts->encoder->Start();
  parts->annotator->Start();
  if (parts->detector) parts->detector->Start();
  parts->grabber->Start();
  spdlog::info("pipeline: source {} detector {} overlay {} quality {}", parts->source_description,
               options.detector, options.overlay, options.quality);
  return std::unique_ptr<Pipeline>(new Pipeline(std::move(parts)));
}

Pipeline::Pipeline(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

Pipeline::~Pipeline() { Stop(); }

std::string Pipeline::url() const { return parts_->server ? parts_->server->url() : ""; }

void Pipeline::Stop() {
  if (!parts_ || parts_->stopped) return;
  parts_->stopped = true;
  parts_->server->Stop();
  parts_->grabber->Stop();
  if (parts_->detector) parts_->detector->Stop();
  parts_->annotator->Stop();
  parts_->encoder->Stop();
  for (auto* slot : {&parts_->raw, &parts_->annotated}) slot->Close();
  parts_->detections.Close();
  parts_->jpeg.Close();
}

}  // namespace freshframe::app
