#include "rtsp/rtsp.h"

#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/rtsp-server/rtsp-server.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <future>
#include <list>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "rtsp/auth.h"
#include "rtsp/pts.h"

namespace freshframe::rtsp {
namespace {

using namespace std::chrono_literals;

// The bytes an appsrc may hold before the path skips to the next IDR: a
// few access units at the bitrates freshframe uses. Beyond it the pipeline
// (or a client it waits for) is not taking them, and queueing more would
// only add delay.
constexpr guint64 kMaxQueuedBytes = 1024 * 1024;

// appsrc ! h264parse ! rtph264pay, shared by every client of the path.
// h264parse keeps SPS/PPS before every IDR and gives the payloader full caps
// (the SDP's sprop-parameter-sets); the payloader repeats them too, so a
// client that joins between IDRs of a shared media decodes from the next.
constexpr const char* kLaunch =
    "( appsrc name=src is-live=true format=time do-timestamp=false min-latency=0 "
    "! h264parse config-interval=-1 "
    "! rtph264pay name=pay0 pt=96 config-interval=-1 aggregate-mode=zero-latency )";

using Task = std::function<void()>;

gboolean RunTask(gpointer data) {
  (*static_cast<Task*>(data))();
  return G_SOURCE_REMOVE;
}

void DeleteTask(gpointer data) { delete static_cast<Task*>(data); }

// One path: its factory's media (while it has clients), the feed and the
// pusher thread that moves access units from the feed into the media's
// appsrc.
struct Stream {
  Stream(std::string path_in, egress::SubscribeFn subscribe, Demand& demand,
         h264::KeyframeRequests& keyframes_in)
      : path(std::move(path_in)),
        keyframes(keyframes_in),
        feed(std::move(subscribe), demand, keyframes_in),
        status("rtsp", path) {}

  void Attach(GstRTSPMedia* new_media, GstElement* new_appsrc);
  void Detach(GstRTSPMedia* old_media);
  void MarkReady(GstElement* ready_appsrc);
  void Run();
  void Push(GstElement* target, const encode::EncodedFramePtr& unit);
  void Shutdown();
  GstRTSPMedia* current_media() {
    std::lock_guard lock(mutex);
    return media;
  }

  const std::string path;
  h264::KeyframeRequests& keyframes;
  egress::Feed feed;
  egress::OutputStatus status;
  std::mutex mutex;
  std::condition_variable changed;
  GstRTSPMedia* media = nullptr;  // reference held; the media being fed
  GstElement* appsrc = nullptr;   // reference held; its appsrc
  bool ready = false;             // the appsrc asked for data (it is playing)
  bool stopping = false;
  uint64_t generation = 0;  // counts Attach: a new media's clock starts anew
  // Pusher thread only: the media it last pushed to, and its PTS.
  uint64_t pushed_generation = 0;
  PtsClock pts_clock;
  std::thread pusher;
};

void OnNeedData(GstElement* element, guint /*length*/, gpointer data) {
  static_cast<Stream*>(data)->MarkReady(element);
}

void OnUnprepared(GstRTSPMedia* media, gpointer data) { static_cast<Stream*>(data)->Detach(media); }

void Stream::Attach(GstRTSPMedia* new_media, GstElement* new_appsrc) {
  GstRTSPMedia* old_media = nullptr;
  GstElement* old_appsrc = nullptr;
  bool restart = false;
  {
    std::lock_guard lock(mutex);
    if (stopping) return;
    old_media = std::exchange(media, GST_RTSP_MEDIA(g_object_ref(new_media)));
    old_appsrc = std::exchange(appsrc, GST_ELEMENT(gst_object_ref(new_appsrc)));
    ready = false;
    ++generation;
    restart = old_media != nullptr;
    g_signal_connect(new_appsrc, "need-data", G_CALLBACK(OnNeedData), this);
    g_signal_connect(new_media, "unprepared", G_CALLBACK(OnUnprepared), this);
  }
  if (old_appsrc != nullptr) {
    g_signal_handlers_disconnect_by_data(old_appsrc, this);
    gst_object_unref(old_appsrc);
  }
  if (old_media != nullptr) {
    g_signal_handlers_disconnect_by_data(old_media, this);
    g_object_unref(old_media);
  }
  spdlog::info("rtsp: {} has clients: feeding it", path);
  // A media that replaced another one without it being unprepared first
  // starts at an IDR all the same.
  if (restart) feed.Restart(h264::KeyReason::kJoin);
  feed.Start();
}

void Stream::Detach(GstRTSPMedia* old_media) {
  GstElement* old_appsrc = nullptr;
  {
    std::lock_guard lock(mutex);
    if (media != old_media) return;
    media = nullptr;
    old_appsrc = std::exchange(appsrc, nullptr);
    ready = false;
  }
  feed.Stop();  // wakes the pusher; the encoder may idle again
  g_signal_handlers_disconnect_by_data(old_media, this);
  g_object_unref(old_media);
  if (old_appsrc != nullptr) {
    g_signal_handlers_disconnect_by_data(old_appsrc, this);
    gst_object_unref(old_appsrc);
  }
  spdlog::info("rtsp: {} has no clients left", path);
}

void Stream::MarkReady(GstElement* ready_appsrc) {
  {
    std::lock_guard lock(mutex);
    if (appsrc != ready_appsrc || ready) return;
    ready = true;
  }
  changed.notify_all();
}

void Stream::Run() {
  while (true) {
    GstElement* target = nullptr;
    {
      std::unique_lock lock(mutex);
      changed.wait(lock, [&] { return stopping || (appsrc != nullptr && ready); });
      if (stopping) return;
      target = GST_ELEMENT(gst_object_ref(appsrc));
      if (std::exchange(pushed_generation, generation) != generation) pts_clock.Reset();
    }
    // Returns at once while the feed is stopped (Detach), so the loop goes
    // back to waiting for the next media.
    if (encode::EncodedFramePtr unit = feed.Next(200ms)) Push(target, unit);
    gst_object_unref(target);
  }
}

void Stream::Push(GstElement* target, const encode::EncodedFramePtr& unit) {
  auto* source = GST_APP_SRC(target);
  if (gst_app_src_get_current_level_bytes(source) >= kMaxQueuedBytes) {
    // The shared pipeline is not taking what it has: this unit is lost, so
    // the next one it can decode is an IDR.
    spdlog::debug("rtsp: {} is not taking access units; skipping to the next IDR", path);
    feed.Restart(h264::KeyReason::kGap);
    return;
  }
  GstClock* clock = gst_element_get_clock(target);
  if (clock == nullptr) return;  // not playing any more (being unprepared)
  // The running time at which the picture was captured (pts.h).
  const int64_t now_us = MonotonicMicros();
  const int64_t capture_us = unit->meta.stamps.capture_us;
  const int64_t age_us = capture_us > 0 && capture_us <= now_us ? now_us - capture_us : 0;
  const GstClockTime clock_now = gst_clock_get_time(clock);
  gst_object_unref(clock);
  const GstClockTime base = gst_element_get_base_time(target);
  const GstClockTime running = clock_now > base ? clock_now - base : 0;
  const auto age_ns = static_cast<GstClockTime>(age_us) * 1000U;
  const GstClockTime pts = pts_clock.Next(running, age_ns);

  // The access unit is shared by every viewer: wrapped, not copied.
  auto* keep = new encode::EncodedFramePtr(unit);
  GstBuffer* buffer = gst_buffer_new_wrapped_full(
      GST_MEMORY_FLAG_READONLY, const_cast<unsigned char*>(unit->bytes.data()), unit->bytes.size(),
      0, unit->bytes.size(), keep,
      [](gpointer data) { delete static_cast<encode::EncodedFramePtr*>(data); });
  GST_BUFFER_PTS(buffer) = pts;
  GST_BUFFER_DTS(buffer) = pts;
  if (!unit->keyframe) GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_DELTA_UNIT);
  if (gst_app_src_push_buffer(source, buffer) == GST_FLOW_OK) {
    status.CountSent(unit->bytes.size(), unit->keyframe);
  }
}

void Stream::Shutdown() {
  GstRTSPMedia* old_media = nullptr;
  GstElement* old_appsrc = nullptr;
  {
    std::lock_guard lock(mutex);
    stopping = true;
    old_media = std::exchange(media, nullptr);
    old_appsrc = std::exchange(appsrc, nullptr);
  }
  changed.notify_all();
  feed.Stop();
  if (pusher.joinable()) pusher.join();
  if (old_appsrc != nullptr) {
    g_signal_handlers_disconnect_by_data(old_appsrc, this);
    gst_object_unref(old_appsrc);
  }
  if (old_media != nullptr) {
    g_signal_handlers_disconnect_by_data(old_media, this);
    g_object_unref(old_media);
  }
  status.Set(egress::OutputStatus::State::kStopped);
}

void OnMediaConfigure(GstRTSPMediaFactory* /*factory*/, GstRTSPMedia* media, gpointer data) {
  auto* stream = static_cast<Stream*>(data);
  GstElement* bin = gst_rtsp_media_get_element(media);
  GstElement* appsrc = gst_bin_get_by_name(GST_BIN(bin), "src");
  // The access units are stamped with their capture time, already past:
  // the media's sinks (which sync) send each at once. Left to the latency
  // query, they would hold each one until its capture time plus the
  // pipeline's latency (20 ms was seen).
  if (GstObject* pipeline = gst_object_get_parent(GST_OBJECT(bin))) {
    if (GST_IS_PIPELINE(pipeline)) gst_pipeline_set_latency(GST_PIPELINE(pipeline), 0);
    gst_object_unref(pipeline);
  }
  gst_object_unref(bin);
  if (appsrc == nullptr) {
    spdlog::error("rtsp: {}: the media has no appsrc", stream->path);
    return;
  }
  GstCaps* caps = gst_caps_from_string("video/x-h264,stream-format=byte-stream,alignment=au");
  // Never blocks the pusher; the level is checked before each push instead.
  g_object_set(appsrc, "caps", caps, "block", FALSE, "max-bytes", guint64{0}, nullptr);
  gst_caps_unref(caps);
  stream->Attach(media, appsrc);
  gst_object_unref(appsrc);
}

}  // namespace

Expected<int> ValidatePort(std::string_view text) {
  int port = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || port < 1 ||
      port > 65535) {
    return Error{"invalid RTSP port '" + std::string(text) + "': a number from 1 to 65535"};
  }
  return port;
}

struct RtspServer::Impl {
  explicit Impl(RtspOptions options_in)
      : options(std::move(options_in)),
        credentials{.basic_auth = options.basic_auth, .token = options.token} {}

  // Runs `task` on the loop thread and waits for it (the loop must run).
  void RunOnLoop(Task task) {
    std::promise<void> done;
    auto wrapped = new Task([&] {
      task();
      done.set_value();
    });
    GSource* source = g_idle_source_new();
    g_source_set_callback(source, RunTask, wrapped, DeleteTask);
    g_source_attach(source, context);
    g_source_unref(source);
    done.get_future().wait();
  }

  void OnClientConnected(GstRTSPClient* client);

  const RtspOptions options;
  const Credentials credentials;
  std::list<Stream> streams;  // stable addresses: signal handlers hold them
  std::mutex mutex;
  bool started = false;
  bool stopped = false;
  int port = 0;
  // Shared with every admitted client's "closed" handler: gst-rtsp-server
  // may close a client, and emit "closed", on one of its own threads after
  // Stop has returned and this Impl is gone (ASan saw it in RtspServerTest).
  using Count = std::shared_ptr<std::atomic<size_t>>;
  const Count admitted = std::make_shared<std::atomic<size_t>>(0);
  std::atomic<uint64_t> refused{0};
  GMainContext* context = nullptr;
  GMainLoop* loop = nullptr;
  GstRTSPServer* server = nullptr;
  GSource* server_source = nullptr;
  GSource* idle_timer = nullptr;
  std::thread thread;
};

namespace {

GstRTSPStatusCode RefuseRequest(GstRTSPClient* /*client*/, GstRTSPContext* /*ctx*/,
                                gpointer /*data*/) {
  return GST_RTSP_STS_SERVICE_UNAVAILABLE;
}

// A client started playing: one that joins a media already shared with
// others needs an IDR to start decoding (the first one's Feed asked for
// it already; KeyframeRequests coalesces and rate-limits).
void OnPlayRequest(GstRTSPClient* /*client*/, GstRTSPContext* ctx, gpointer data) {
  auto* impl = static_cast<RtspServer::Impl*>(data);
  for (Stream& stream : impl->streams) {
    if (ctx->media != nullptr && stream.current_media() == ctx->media) {
      stream.keyframes.Request(h264::KeyReason::kJoin, MonotonicMicros());
    }
  }
}

// `data`: a heap copy of Impl::admitted that the handler owns (freed with it,
// by DropCount, when the client goes), so the count outlives the server.
void OnClientClosed(GstRTSPClient* /*client*/, gpointer data) {
  // Relaxed: a count for the limit and Stats, ordering nothing else.
  (*static_cast<RtspServer::Impl::Count*>(data))->fetch_sub(1, std::memory_order_relaxed);
}

void DropCount(gpointer data, GClosure* /*closure*/) {
  delete static_cast<RtspServer::Impl::Count*>(data);
}

void OnClientConnectedSignal(GstRTSPServer* /*server*/, GstRTSPClient* client, gpointer data) {
  static_cast<RtspServer::Impl*>(data)->OnClientConnected(client);
}

std::string PeerOf(GstRTSPClient* client) {
  GstRTSPConnection* connection = gst_rtsp_client_get_connection(client);
  const gchar* ip = connection != nullptr ? gst_rtsp_connection_get_ip(connection) : nullptr;
  return ip != nullptr ? ip : "?";
}

constexpr const char* kConnectedAt = "freshframe-connected-us";

// Closes a connection that has had no session for idle_timeout_s since it
// connected.
GstRTSPFilterResult RemoveIdleClient(GstRTSPServer* /*server*/, GstRTSPClient* client,
                                     gpointer data) {
  const auto* impl = static_cast<const RtspServer::Impl*>(data);
  const auto* connected_us =
      static_cast<const int64_t*>(g_object_get_data(G_OBJECT(client), kConnectedAt));
  if (connected_us == nullptr) return GST_RTSP_FILTER_KEEP;
  const double idle_s = static_cast<double>(MonotonicMicros() - *connected_us) / 1e6;
  if (idle_s < impl->options.idle_timeout_s) return GST_RTSP_FILTER_KEEP;
  GList* sessions = gst_rtsp_client_session_filter(client, nullptr, nullptr);
  const bool has_session = sessions != nullptr;
  g_list_free_full(sessions, g_object_unref);
  if (has_session) return GST_RTSP_FILTER_KEEP;
  spdlog::info("rtsp: client {} closed: no session after {:.0f} s", PeerOf(client), idle_s);
  return GST_RTSP_FILTER_REMOVE;
}

gboolean CloseIdleClients(gpointer data) {
  auto* impl = static_cast<RtspServer::Impl*>(data);
  g_list_free(gst_rtsp_server_client_filter(impl->server, RemoveIdleClient, impl));
  return G_SOURCE_CONTINUE;
}

GstRTSPFilterResult RemoveAllClients(GstRTSPServer* /*server*/, GstRTSPClient* /*client*/,
                                     gpointer /*data*/) {
  return GST_RTSP_FILTER_REMOVE;
}

GstRTSPFilterResult RemoveAllSessions(GstRTSPSessionPool* /*pool*/, GstRTSPSession* /*session*/,
                                      gpointer /*data*/) {
  return GST_RTSP_FILTER_REMOVE;
}

}  // namespace

void RtspServer::Impl::OnClientConnected(GstRTSPClient* client) {
  // Relaxed: only this (the server's loop) thread adds; a close racing
  // with the check at worst admits one client fewer for an instant.
  g_object_set_data_full(G_OBJECT(client), kConnectedAt, new int64_t(MonotonicMicros()),
                         [](gpointer at) { delete static_cast<int64_t*>(at); });
  size_t current = admitted->load(std::memory_order_relaxed);
  if (current >= options.max_clients) {
    refused.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("rtsp: client {} refused: too many clients (at most {})", PeerOf(client),
                 options.max_clients);
    // Not "pre-options-request": gst-rtsp-server 1.22 frees the response
    // twice when it is refused (seen here: munmap_chunk() abort); OPTIONS
    // gives nothing away, and DESCRIBE, the first request that costs, is
    // refused.
    for (const char* request :
         {"pre-describe-request", "pre-setup-request", "pre-play-request", "pre-announce-request",
          "pre-record-request", "pre-get-parameter-request", "pre-set-parameter-request"}) {
      g_signal_connect(client, request, G_CALLBACK(RefuseRequest), nullptr);
    }
    return;
  }
  admitted->fetch_add(1, std::memory_order_relaxed);
  g_signal_connect_data(client, "closed", G_CALLBACK(OnClientClosed), new Count(admitted),
                        DropCount, GConnectFlags{});
  g_signal_connect(client, "play-request", G_CALLBACK(OnPlayRequest), this);
  spdlog::info("rtsp: client {} connected", PeerOf(client));
}

RtspServer::RtspServer(RtspOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  static std::once_flag gst_once;
  std::call_once(gst_once, [] { gst_init(nullptr, nullptr); });
}

RtspServer::~RtspServer() { Stop(); }

void RtspServer::AddStream(std::string path, egress::SubscribeFn subscribe, Demand& demand,
                           h264::KeyframeRequests& keyframes) {
  impl_->streams.emplace_back(std::move(path), std::move(subscribe), demand, keyframes);
}

Expected<int> RtspServer::Start() {
  Impl& impl = *impl_;
  std::lock_guard lock(impl.mutex);
  if (impl.started) return Error{"the RTSP server was started already"};
  impl.server = gst_rtsp_server_new();
  gst_rtsp_server_set_address(impl.server, impl.options.bind_address.c_str());
  gst_rtsp_server_set_service(impl.server, std::to_string(impl.options.port).c_str());
  GstRTSPMountPoints* mounts = gst_rtsp_server_get_mount_points(impl.server);
  for (Stream& stream : impl.streams) {
    GstRTSPMediaFactory* factory = gst_rtsp_media_factory_new();
    gst_rtsp_media_factory_set_launch(factory, kLaunch);
    gst_rtsp_media_factory_set_shared(factory, TRUE);
    if (impl.credentials.required()) {
      gst_rtsp_media_factory_add_role(factory, kViewerRole, GST_RTSP_PERM_MEDIA_FACTORY_ACCESS,
                                      G_TYPE_BOOLEAN, TRUE, GST_RTSP_PERM_MEDIA_FACTORY_CONSTRUCT,
                                      G_TYPE_BOOLEAN, TRUE, nullptr);
    }
    g_signal_connect(factory, "media-configure", G_CALLBACK(OnMediaConfigure), &stream);
    gst_rtsp_mount_points_add_factory(mounts, stream.path.c_str(), factory);  // takes it
  }
  g_object_unref(mounts);
  if (impl.credentials.required()) {
    GstRTSPAuth* auth = CreateAuth(impl.credentials);
    gst_rtsp_server_set_auth(impl.server, auth);
    g_object_unref(auth);
  }
  g_signal_connect(impl.server, "client-connected", G_CALLBACK(OnClientConnectedSignal), &impl);

  GError* error = nullptr;
  impl.server_source = gst_rtsp_server_create_source(impl.server, nullptr, &error);
  if (impl.server_source == nullptr) {
    std::string why = error != nullptr ? error->message : "unknown error";
    if (error != nullptr) g_error_free(error);
    g_object_unref(impl.server);
    impl.server = nullptr;
    return Error{"cannot serve RTSP on " + impl.options.bind_address + ":" +
                 std::to_string(impl.options.port) + ": " + why};
  }
  impl.port = gst_rtsp_server_get_bound_port(impl.server);
  impl.context = g_main_context_new();
  impl.loop = g_main_loop_new(impl.context, FALSE);
  g_source_attach(impl.server_source, impl.context);
  if (impl.options.idle_timeout_s > 0) {
    // Checked a few times per timeout, at least once a second.
    const double period_ms = std::min(1000.0, impl.options.idle_timeout_s * 250.0);
    impl.idle_timer = g_timeout_source_new(static_cast<guint>(std::max(10.0, period_ms)));
    g_source_set_callback(impl.idle_timer, CloseIdleClients, &impl, nullptr);
    g_source_attach(impl.idle_timer, impl.context);
  }
  impl.thread = std::thread([&impl] {
    g_main_context_push_thread_default(impl.context);
    g_main_loop_run(impl.loop);
    g_main_context_pop_thread_default(impl.context);
  });
  for (Stream& stream : impl.streams) {
    stream.status.Set(egress::OutputStatus::State::kConnected);
    stream.pusher = std::thread([&stream] { stream.Run(); });
    spdlog::info("rtsp: serving rtsp://{}:{}{}", impl.options.bind_address, impl.port, stream.path);
  }
  impl.started = true;
  return impl.port;
}

void RtspServer::Stop() {
  Impl& impl = *impl_;
  std::lock_guard lock(impl.mutex);
  if (!impl.started || impl.stopped) return;
  impl.stopped = true;
  // On the loop thread: no new client is accepted, and every client and
  // session goes (their medias are unprepared as the last one leaves).
  impl.RunOnLoop([&impl] {
    g_source_destroy(impl.server_source);
    if (impl.idle_timer != nullptr) g_source_destroy(impl.idle_timer);
    GstRTSPSessionPool* pool = gst_rtsp_server_get_session_pool(impl.server);
    gst_rtsp_session_pool_filter(pool, RemoveAllSessions, nullptr);
    g_object_unref(pool);
    GList* none = gst_rtsp_server_client_filter(impl.server, RemoveAllClients, nullptr);
    g_list_free(none);
    g_main_loop_quit(impl.loop);
  });
  impl.thread.join();
  for (Stream& stream : impl.streams) stream.Shutdown();
  // Whatever media is still being torn down no longer reaches the streams.
  GstRTSPMountPoints* mounts = gst_rtsp_server_get_mount_points(impl.server);
  for (Stream& stream : impl.streams) {
    GstRTSPMediaFactory* factory =
        gst_rtsp_mount_points_match(mounts, stream.path.c_str(), nullptr);
    if (factory != nullptr) {
      g_signal_handlers_disconnect_by_data(factory, &stream);
      g_object_unref(factory);
    }
  }
  g_object_unref(mounts);
  g_source_unref(impl.server_source);
  impl.server_source = nullptr;
  if (impl.idle_timer != nullptr) g_source_unref(impl.idle_timer);
  impl.idle_timer = nullptr;
  g_object_unref(impl.server);
  impl.server = nullptr;
  g_main_loop_unref(impl.loop);
  g_main_context_unref(impl.context);
  spdlog::info("rtsp: stopped");
}

size_t RtspServer::clients() const {
  // Relaxed: a figure for Stats.
  return impl_->admitted->load(std::memory_order_relaxed);
}

nlohmann::json RtspServer::Stats() const {
  Impl& impl = *impl_;
  // Sessions playing each path's media, found by walking the server's
  // clients (gst-rtsp-server's lists are thread-safe).
  std::vector<size_t> per_stream(impl.streams.size(), 0);
  std::vector<GstRTSPMedia*> medias;
  for (Stream& stream : impl.streams) medias.push_back(stream.current_media());
  {
    std::lock_guard lock(impl.mutex);
    if (impl.server != nullptr) {
      GList* clients = gst_rtsp_server_client_filter(impl.server, nullptr, nullptr);
      for (GList* c = clients; c != nullptr; c = c->next) {
        GList* sessions =
            gst_rtsp_client_session_filter(GST_RTSP_CLIENT(c->data), nullptr, nullptr);
        for (GList* s = sessions; s != nullptr; s = s->next) {
          GList* sessmedias = gst_rtsp_session_filter(GST_RTSP_SESSION(s->data), nullptr, nullptr);
          for (GList* m = sessmedias; m != nullptr; m = m->next) {
            GstRTSPMedia* media = gst_rtsp_session_media_get_media(GST_RTSP_SESSION_MEDIA(m->data));
            for (size_t i = 0; i < medias.size(); ++i) {
              if (medias[i] != nullptr && medias[i] == media) ++per_stream[i];
            }
          }
          g_list_free_full(sessmedias, g_object_unref);
        }
        g_list_free_full(sessions, g_object_unref);
      }
      g_list_free_full(clients, g_object_unref);
    }
  }
  nlohmann::json streams = nlohmann::json::array();
  size_t index = 0;
  for (Stream& stream : impl.streams) {
    nlohmann::json entry = stream.status.Json(&stream.feed);
    entry["path"] = stream.path;
    entry["clients"] = per_stream[index++];
    streams.push_back(std::move(entry));
  }
  return {{"port", impl.port},
          {"clients", clients()},
          {"max_clients", impl.options.max_clients},
          {"refused", impl.refused.load(std::memory_order_relaxed)},
          {"streams", std::move(streams)}};
}

}  // namespace freshframe::rtsp
