// The per-stream serving state and the registry of streams (session.h).
#include <algorithm>

#include "h264/h264.h"
#include "http/session.h"

namespace freshframe::http {

StreamContext::StreamContext(std::string stream_name, ServerDeps stream_deps)
    : name(std::move(stream_name)),
      deps(std::move(stream_deps)),
      fanout(deps.frames),
      events(deps.detections),
      variants(deps.variants, fanout, deps.demand),
      h264_parts(deps.h264 != nullptr ? std::make_shared<PartStream>() : nullptr) {}

void StreamContext::Start() {
  fanout.Start();
  events.Start();
  if (deps.h264 != nullptr) {
    // Every access unit, none skipped: a viewer's KeyframeGate decides what
    // it can use. Deliver only posts to the sessions' strands.
    h264_subscription_ = deps.h264->Subscribe(
        [parts = h264_parts](const encode::EncodedFramePtr& unit) { parts->Deliver(unit); });
  }
}

void StreamContext::Close() {
  // The threads first, so nothing is delivered after the sessions were told
  // to end; then every session is told (OnClosed), including the variants'.
  fanout.Stop();
  events.Stop();
  h264_subscription_.reset();  // the encoder's thread delivers nothing after this
  variants.Close();
  if (h264_parts) h264_parts->Close();
  fanout.Close();
  events.Close();
}

Expected<bool> StreamRegistry::Add(StreamContextPtr stream, size_t position) {
  std::lock_guard lock(mutex_);
  const bool taken = std::any_of(streams_.begin(), streams_.end(), [&](const StreamContextPtr& s) {
    return s->name == stream->name;
  });
  if (taken) return Error{"a stream named '" + stream->name + "' exists already"};
  position = std::min(position, streams_.size());
  streams_.insert(streams_.begin() + static_cast<std::ptrdiff_t>(position), std::move(stream));
  return true;
}

StreamContextPtr StreamRegistry::Remove(std::string_view name) {
  std::lock_guard lock(mutex_);
  const auto it = std::find_if(streams_.begin(), streams_.end(),
                               [&](const StreamContextPtr& s) { return s->name == name; });
  if (it == streams_.end()) return nullptr;
  StreamContextPtr removed = std::move(*it);
  streams_.erase(it);
  return removed;
}

StreamContextPtr StreamRegistry::Find(std::string_view name) const {
  std::lock_guard lock(mutex_);
  const auto it = std::find_if(streams_.begin(), streams_.end(),
                               [&](const StreamContextPtr& s) { return s->name == name; });
  return it == streams_.end() ? nullptr : *it;
}

StreamContextPtr StreamRegistry::At(size_t index) const {
  std::lock_guard lock(mutex_);
  return index < streams_.size() ? streams_[index] : nullptr;
}

std::vector<StreamContextPtr> StreamRegistry::All() const {
  std::lock_guard lock(mutex_);
  return streams_;
}

size_t StreamRegistry::size() const {
  std::lock_guard lock(mutex_);
  return streams_.size();
}

}  // namespace freshframe::http
