#include "webrtc/whep.h"

#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#include <spdlog/spdlog.h>

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "webrtc/peer.h"
#include "webrtc/sdp_offer.h"

namespace freshframe::webrtc {
namespace {

std::string RandomId() {
  static thread_local std::random_device device;
  std::string out;
  constexpr char kDigits[] = "0123456789abcdef";
  for (int i = 0; i < 32; ++i) out += kDigits[device() & 0xfU];  // 128 bits
  return out;
}

using Task = std::function<void()>;

gboolean RunTask(gpointer data) {
  (*static_cast<Task*>(data))();
  return G_SOURCE_REMOVE;
}

void DeleteTask(gpointer data) { delete static_cast<Task*>(data); }

}  // namespace

struct WhepServer::Impl {
  Impl(WhepOptions options_in, SubscribeFn subscribe_in, Demand& demand_in,
       h264::KeyframeRequests& keyframes_in)
      : options(std::move(options_in)),
        subscribe(std::move(subscribe_in)),
        demand(demand_in),
        keyframes(keyframes_in),
        context(g_main_context_new()),
        loop(g_main_loop_new(context, FALSE)) {
    thread = std::thread([this] {
      g_main_context_push_thread_default(context);
      g_main_loop_run(loop);
      g_main_context_pop_thread_default(context);
    });
  }

  ~Impl() {
    // Quit from inside the loop: a g_main_loop_quit before the thread is in
    // g_main_loop_run would be lost.
    Post([this] { g_main_loop_quit(loop); }, 0);
    {
      std::lock_guard lock(mutex);
      stopped = true;
    }
    thread.join();
    // The loop no longer runs: end the peers here (not a GStreamer thread),
    // then drop the tasks still queued (some hold removed peers, which end as
    // they go).
    std::map<std::string, std::shared_ptr<Peer>> ending;
    {
      std::lock_guard lock(mutex);
      ending.swap(peers);
    }
    for (auto& [id, peer] : ending) peer->Teardown();
    ending.clear();
    g_main_loop_unref(loop);
    g_main_context_unref(context);
  }

  // Runs `task` on the GLib thread after `delay_ms`; dropped once stopped.
  void Post(Task task, unsigned delay_ms) {
    std::lock_guard lock(mutex);
    if (stopped) return;
    GSource* source = delay_ms == 0 ? g_idle_source_new() : g_timeout_source_new(delay_ms);
    g_source_set_callback(source, RunTask, new Task(std::move(task)), DeleteTask);
    g_source_attach(source, context);
    g_source_unref(source);
  }

  // Takes the peer out (it no longer counts) and ends it on the GLib thread
  // (a GStreamer thread must not stop its own pipeline).
  bool Remove(std::string_view id) {
    std::shared_ptr<Peer> peer;
    {
      std::lock_guard lock(mutex);
      const auto found = peers.find(std::string(id));
      if (found == peers.end()) return false;
      peer = std::move(found->second);
      peers.erase(found);
    }
    Post([peer] { peer->Teardown(); }, 0);
    return true;
  }

  const WhepOptions options;
  const SubscribeFn subscribe;
  Demand& demand;
  h264::KeyframeRequests& keyframes;
  GMainContext* const context;
  GMainLoop* const loop;
  mutable std::mutex mutex;
  bool stopped = false;
  std::map<std::string, std::shared_ptr<Peer>> peers;
  std::thread thread;  // last: started once the members it uses exist
};

WhepServer::WhepServer(WhepOptions options, SubscribeFn subscribe, Demand& demand,
                       h264::KeyframeRequests& keyframes) {
  static std::once_flag gst_once;
  std::call_once(gst_once, [] { gst_init(nullptr, nullptr); });
  impl_ = std::make_shared<Impl>(std::move(options), std::move(subscribe), demand, keyframes);
}

WhepServer::~WhepServer() = default;

void WhepServer::Offer(std::string sdp, std::string peer, std::function<void(Answer)> done,
                       std::shared_ptr<void> hold) {
  const auto refuse = [&](unsigned status, std::string message) {
    hold.reset();
    spdlog::info("whep: offer from {} refused: {} {}", peer, status, message);
    done(Answer{.status = status, .body = std::move(message), .id = {}, .etag = {}});
  };
  Expected<H264Choice, OfferError> choice = InspectOffer(sdp);
  if (!choice) return refuse(choice.error().status, choice.error().message);
  GstSDPMessage* message = nullptr;
  gst_sdp_message_new(&message);
  if (gst_sdp_message_parse_buffer(reinterpret_cast<const guint8*>(sdp.data()),
                                   static_cast<guint>(sdp.size()), message) != GST_SDP_OK) {
    gst_sdp_message_free(message);
    return refuse(400, "offer is not SDP");
  }
  Impl& impl = *impl_;
  Peer::Hooks hooks{
      .post = [&impl](Task task, unsigned delay_ms) { impl.Post(std::move(task), delay_ms); },
      .remove = [&impl](const std::string& id) { impl.Remove(id); }};
  std::shared_ptr<Peer> created;
  {
    std::lock_guard lock(impl.mutex);
    if (impl.peers.size() < impl.options.max_peers) {
      created = std::make_shared<Peer>(RandomId(), peer, impl.options, impl.demand, impl.keyframes,
                                       std::move(hooks), std::move(done), std::move(hold));
      impl.peers.emplace(created->id(), created);
    }
  }
  if (!created) {
    gst_sdp_message_free(message);
    return refuse(503,
                  "too many WebRTC peers (at most " + std::to_string(impl.options.max_peers) + ")");
  }
  impl.Post([created, message, choice = *choice,
             &impl] { created->Start(message, choice, impl.subscribe); },
            0);
}

bool WhepServer::End(std::string_view id) {
  const bool found = impl_->Remove(id);
  if (found) spdlog::info("whep: peer {} ended by its player", id);
  return found;
}

nlohmann::json WhepServer::Stats() const {
  std::vector<std::shared_ptr<Peer>> peers;
  {
    std::lock_guard lock(impl_->mutex);
    for (const auto& [id, peer] : impl_->peers) peers.push_back(peer);
  }
  nlohmann::json clients = nlohmann::json::array();
  for (const auto& peer : peers) clients.push_back(peer->Stats());
  return {{"peers", peers.size()}, {"max_peers", impl_->options.max_peers}, {"clients", clients}};
}

size_t WhepServer::peers() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->peers.size();
}

}  // namespace freshframe::webrtc
