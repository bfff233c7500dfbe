// Stream: everything one camera needs, as one unit: its source (a grabber,
// or a bus for infer/serve processes), the slots between its stages, its
// detector binding (a shared detector, or sets from another process), its
// annotator, encoders, Demand, live settings and metrics. A process serves
// one or more streams; no stream knows another, and none knows the server:
// the server gets a stream's ServerDeps and routes to it by name.
//
//   grabber -> [raw] -> shared detector -> [detections] -> annotator
//     -> [annotated] -> encoder -> [jpeg] -> (server)
// where [x] is a LatestSlot (newest-only hand-over).
//
// Thread-safety: Create/Start/Stop are called from the owning thread. Stop
// joins every thread the stream started. The parts ServerDeps refers to live
// as long as the Stream object, which ServerDeps::owner keeps alive for the
// server's sessions.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "app/config.h"
#include "app/detector_pool.h"
#include "core/expected.h"
#include "http/http.h"

namespace freshframe::h264 {
class H264Stage;
}

namespace freshframe::app {

class Stream : public std::enable_shared_from_this<Stream> {
 public:
  // Builds the stream's stages without starting them. A source that cannot
  // be opened is an Error when `must_open` (one camera on the command line:
  // exit 1, as always); otherwise the stream starts "reconnecting" and the
  // grabber keeps trying. A detector that cannot be loaded is always an Error.
  static Expected<std::shared_ptr<Stream>> Create(const StreamConfig& config,
                                                  DetectorPool& detectors, bool must_open);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Starts every stage (encoders only for roles that serve).
  void Start();
  // Stops everything and joins every thread; `on_stage` as Pipeline::Stop's.
  void Stop(const std::function<void(const char* stage)>& on_stage = {});

  // What the server needs to serve this stream (roles run and serve).
  http::ServerDeps ServerDeps();
  const std::string& name() const;
  const StreamConfig& config() const;
  // The stream's H.264 encoder, or null (--h264-encoder none, or a role
  // that does not serve).
  h264::H264Stage* h264();

  struct Parts;

 private:
  explicit Stream(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

}  // namespace freshframe::app
