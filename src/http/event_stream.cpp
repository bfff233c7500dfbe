#include "http/event_stream.h"

#include <chrono>

#include <nlohmann/json.hpp>

namespace freshframe::http {

uint64_t DetectionEventId(std::string_view json, uint64_t fallback) {
  const auto parsed = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) return fallback;  // also when not JSON at all
  const auto sequence = parsed.find("sequence");
  if (sequence == parsed.end() || !sequence->is_number_unsigned()) return fallback;
  return sequence->get<uint64_t>();
}

std::string FormatDetectionEvent(uint64_t id, std::string_view json) {
  std::string text = "id: ";
  text.append(std::to_string(id)).append("\nevent: detections\n");
  size_t start = 0;
  while (true) {
    const size_t end = json.find_first_of("\r\n", start);
    text.append("data: ").append(json.substr(start, end - start)).append("\n");
    if (end == std::string_view::npos) break;
    const bool crlf = json[end] == '\r' && end + 1 < json.size() && json[end + 1] == '\n';
    start = end + (crlf ? 2 : 1);
  }
  text.append("\n");
  return text;
}

EventStream::EventStream(DetectionsSlot* detections) : detections_(detections) {}

void EventStream::Start() {
  if (detections_ == nullptr) return;
  thread_.Start([this](std::stop_token stop) { Run(stop); });
}

void EventStream::Stop() { thread_.Stop(); }

void EventStream::Subscribe(std::weak_ptr<EventSubscriber> subscriber) {
  {
    std::lock_guard lock(mutex_);
    if (!closed_) {
      subscribers_.push_back(std::move(subscriber));
      return;
    }
  }
  if (auto strong = subscriber.lock()) strong->OnClosed();
}

void EventStream::Close() {
  std::vector<std::weak_ptr<EventSubscriber>> told;
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    told.swap(subscribers_);
  }
  for (const auto& weak : told) {
    if (auto strong = weak.lock()) strong->OnClosed();
  }
}

DetectionEventPtr EventStream::Latest() const {
  std::lock_guard lock(mutex_);
  return latest_;
}

void EventStream::Run(std::stop_token stop) {
  using namespace std::chrono_literals;
  uint64_t seen = 0;
  while (!stop.stop_requested()) {
    // Bounded waits: the slot knows nothing of `stop`.
    auto next = detections_->WaitNewer(seen, 100ms);
    if (!next) {
      // A closed slot answers at once; wait for Stop() without spinning.
      if (detections_->closed()) SleepUntil(std::chrono::steady_clock::now() + 100ms, stop);
      continue;
    }
    seen = next->version;
    if (!next->value) continue;
    auto event = std::make_shared<DetectionEvent>();
    event->version = next->version;
    event->id = DetectionEventId(*next->value, next->version);
    event->text = FormatDetectionEvent(event->id, *next->value);
    Deliver(event);
  }
}

void EventStream::Deliver(const DetectionEventPtr& event) {
  std::vector<std::weak_ptr<EventSubscriber>> current;
  {
    std::lock_guard lock(mutex_);
    latest_ = event;
    current.swap(subscribers_);
  }
  // Unlocked, so that a subscriber may call back into Subscribe or Latest.
  std::erase_if(current, [&](const std::weak_ptr<EventSubscriber>& weak) {
    const auto subscriber = weak.lock();
    return !subscriber || !subscriber->OnEvent(event);
  });
  std::lock_guard lock(mutex_);
  // Whoever subscribed meanwhile finds `event` through Latest(): nothing lost.
  subscribers_.insert(subscribers_.end(), current.begin(), current.end());
}

}  // namespace freshframe::http
