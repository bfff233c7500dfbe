#include "webrtc/peer.h"

#include <gst/app/gstappsrc.h>
#include <gst/rtp/gstrtpbuffer.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>
#include <spdlog/spdlog.h>

#include <cinttypes>
#include <nlohmann/json.hpp>
#include <random>
#include <utility>

#include "core/clock.h"

namespace freshframe::webrtc {
namespace {

std::string RandomHex(size_t bytes) {
  static thread_local std::random_device device;
  std::string out;
  constexpr char kDigits[] = "0123456789abcdef";
  for (size_t i = 0; i < bytes; ++i) {
    const unsigned value = device() & 0xffU;
    out += kDigits[value >> 4];
    out += kDigits[value & 0xfU];
  }
  return out;
}

std::string_view StateName(PeerState state) {
  switch (state) {
    case PeerState::kNegotiating:
      return "negotiating";
    case PeerState::kConnecting:
      return "connecting";
    case PeerState::kConnected:
      return "connected";
    case PeerState::kEnded:
      return "ended";
  }
  return "unknown";
}

// The peer a GStreamer callback was given (`data`): a Peer* for signals and
// probes (they are disconnected before the peer goes), a weak_ptr for
// promises (webrtcbin may answer one after the peer is gone).
std::shared_ptr<Peer> Lock(gpointer data) {
  return static_cast<std::weak_ptr<Peer>*>(data)->lock();
}

std::string ErrorOf(GstPromise* promise, const char* fallback) {
  const GstStructure* reply = gst_promise_get_reply(promise);
  GError* error = nullptr;
  if (reply != nullptr && gst_structure_get(reply, "error", G_TYPE_ERROR, &error, nullptr) &&
      error != nullptr) {
    std::string message = error->message;
    g_error_free(error);
    return message;
  }
  return fallback;
}

// Adds the playout-delay extension (kPlayoutDelayUri, Chrome's, no RFC: 12
// bits of min and 12 of max, in 10 ms units) with min = max = 0, as one-byte
// header id `id`, to `buffer`. Chrome then renders each frame once decoded
// instead of holding it for its jitter buffer's estimate (20-55 ms more on
// a LAN, measured with tests/e2e/webrtc.test.mjs). What PiKVM's Janus
// plugin sends.
bool AddZeroPlayoutDelay(GstBuffer* buffer, guint8 id) {
  GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
  if (!gst_rtp_buffer_map(buffer, GST_MAP_READWRITE, &rtp)) return false;
  constexpr guint8 kZeroDelay[3] = {0, 0, 0};
  const bool added = gst_rtp_buffer_add_extension_onebyte_header(&rtp, id, kZeroDelay, 3);
  gst_rtp_buffer_unmap(&rtp);
  return added;
}

// A probe on the payloader's src pad; `data` is the extension id (a
// guint8 the probe owns).
GstPadProbeReturn OnPayloaded(GstPad*, GstPadProbeInfo* info, gpointer data) {
  const guint8 id = *static_cast<const guint8*>(data);
  if ((info->type & GST_PAD_PROBE_TYPE_BUFFER) != 0) {
    GstBuffer* buffer = gst_buffer_make_writable(GST_PAD_PROBE_INFO_BUFFER(info));
    GST_PAD_PROBE_INFO_DATA(info) = buffer;
    AddZeroPlayoutDelay(buffer, id);
  } else if ((info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST) != 0) {
    GstBufferList* list = gst_buffer_list_make_writable(GST_PAD_PROBE_INFO_BUFFER_LIST(info));
    GST_PAD_PROBE_INFO_DATA(info) = list;
    const guint length = gst_buffer_list_length(list);
    for (guint i = 0; i < length; ++i) {
      // gst_buffer_list_get_writable: a writable buffer in a writable list.
      AddZeroPlayoutDelay(gst_buffer_list_get_writable(list, i), id);
    }
  }
  return GST_PAD_PROBE_OK;
}

}  // namespace

Peer::Peer(std::string id, std::string address, const WhepOptions& options, Demand& demand,
           h264::KeyframeRequests& keyframes, Hooks hooks, std::function<void(Answer)> done,
           std::shared_ptr<void> hold)
    : id_(std::move(id)),
      address_(std::move(address)),
      options_(options),
      keyframes_(keyframes),
      hooks_(std::move(hooks)),
      etag_(RandomHex(8)),
      demand_(demand),
      done_(std::move(done)),
      client_hold_(std::move(hold)) {}

Peer::~Peer() { Teardown(); }

GstPromise* Peer::Promise(void (*step)(GstPromise*, gpointer)) {
  return gst_promise_new_with_change_func(
      step, new std::weak_ptr<Peer>(weak_from_this()),
      [](gpointer data) { delete static_cast<std::weak_ptr<Peer>*>(data); });
}

bool Peer::Build(const H264Choice& choice) {
  pipeline_ = gst_pipeline_new(nullptr);
  appsrc_ = gst_element_factory_make("appsrc", nullptr);
  GstElement* pay = gst_element_factory_make("rtph264pay", nullptr);
  GstElement* filter = gst_element_factory_make("capsfilter", nullptr);
  webrtc_ = gst_element_factory_make("webrtcbin", nullptr);
  if (pipeline_ == nullptr || appsrc_ == nullptr || pay == nullptr || filter == nullptr ||
      webrtc_ == nullptr) {
    for (GstElement* element : {appsrc_, pay, filter, webrtc_}) {
      if (element != nullptr) gst_object_unref(element);
    }
    appsrc_ = webrtc_ = nullptr;
    spdlog::error("whep: GStreamer lacks appsrc, rtph264pay or webrtcbin");
    return false;
  }
  GstCaps* h264 = gst_caps_from_string("video/x-h264,stream-format=byte-stream,alignment=au");
  // A large appsrc limit that never blocks nor drops: the gate decides
  // (current-level-bytes against max_queued_bytes).
  g_object_set(appsrc_, "is-live", TRUE, "do-timestamp", TRUE, "format", GST_FORMAT_TIME, "caps",
               h264, "block", FALSE, "max-bytes", guint64{64} << 20, nullptr);
  gst_caps_unref(h264);
  g_object_set(pay, "pt", static_cast<guint>(choice.payload_type), "config-interval", -1, "mtu",
               guint{1200}, nullptr);
  gst_util_set_object_arg(G_OBJECT(pay), "aggregate-mode", "zero-latency");
  // The payload type the offer proposed, so webrtcbin answers with it.
  GstCaps* rtp = gst_caps_new_simple(
      "application/x-rtp", "media", G_TYPE_STRING, "video", "encoding-name", G_TYPE_STRING, "H264",
      "clock-rate", G_TYPE_INT, 90000, "payload", G_TYPE_INT, choice.payload_type, nullptr);
  g_object_set(filter, "caps", rtp, nullptr);
  gst_util_set_object_arg(G_OBJECT(webrtc_), "bundle-policy", "max-bundle");
  gst_bin_add_many(GST_BIN(pipeline_), appsrc_, pay, filter, webrtc_, nullptr);
  GstPad* sink = gst_element_request_pad_simple(webrtc_, "sink_%u");
  GstPad* source = gst_element_get_static_pad(filter, "src");
  const bool linked = gst_element_link_many(appsrc_, pay, filter, nullptr) && sink != nullptr &&
                      gst_pad_link(source, sink) == GST_PAD_LINK_OK;
  gst_object_unref(source);
  if (linked) {
    GstWebRTCRTPTransceiver* transceiver = nullptr;
    g_object_get(sink, "transceiver", &transceiver, nullptr);
    if (transceiver != nullptr) {
      // The answer lists the playout-delay extension only if the codec
      // preferences carry it. Not the capsfilter's caps: the payloader
      // makes extension elements from those, and the probe below writes
      // this one.
      GstCaps* preferences = gst_caps_copy(rtp);
      if (choice.playout_delay_id != 0) {
        const std::string field = "extmap-" + std::to_string(choice.playout_delay_id);
        gst_caps_set_simple(preferences, field.c_str(), G_TYPE_STRING,
                            std::string(kPlayoutDelayUri).c_str(), nullptr);
      }
      g_object_set(transceiver, "direction", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY,
                   "codec-preferences", preferences, nullptr);
      gst_caps_unref(preferences);
      gst_object_unref(transceiver);
    }
  }
  gst_caps_unref(rtp);
  if (sink != nullptr) gst_object_unref(sink);
  if (!linked) {
    spdlog::error("whep: cannot link appsrc ! rtph264pay ! webrtcbin");
    return false;
  }
  if (choice.playout_delay_id != 0) {
    GstPad* payloaded = gst_element_get_static_pad(pay, "src");
    gst_pad_add_probe(
        payloaded,
        static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
        OnPayloaded, new guint8(static_cast<guint8>(choice.playout_delay_id)),
        [](gpointer data) { delete static_cast<guint8*>(data); });
    gst_object_unref(payloaded);
  }

  // Nobody reads this bus: without a handler its messages would pile up for
  // the peer's life. Errors end the peer.
  GstBus* bus = gst_element_get_bus(pipeline_);
  gst_bus_set_sync_handler(bus, OnBusMessage, this, nullptr);
  gst_object_unref(bus);
  g_signal_connect(webrtc_, "notify::ice-gathering-state", G_CALLBACK(OnGatheringState), this);
  g_signal_connect(webrtc_, "notify::connection-state", G_CALLBACK(OnConnectionState), this);
  g_signal_connect(webrtc_, "notify::ice-connection-state", G_CALLBACK(OnIceState), this);
  g_signal_connect(appsrc_, "need-data", G_CALLBACK(OnNeedData), this);
  // webrtcbin's own rtpbin (named so in 1.22): its on-ssrc-active tells
  // every RTCP packet that arrives from the player.
  rtpbin_ = gst_bin_get_by_name(GST_BIN(webrtc_), "rtpbin");
  if (rtpbin_ != nullptr) {
    g_signal_connect(rtpbin_, "on-ssrc-active", G_CALLBACK(OnRtcpFrom), this);
  } else {
    spdlog::warn("whep: webrtcbin has no rtpbin: silent players are not noticed");
  }
  GstPad* appsrc_pad = gst_element_get_static_pad(appsrc_, "src");
  probe_ = gst_pad_add_probe(appsrc_pad, GST_PAD_PROBE_TYPE_EVENT_UPSTREAM, OnUpstreamEvent, this,
                             nullptr);
  gst_object_unref(appsrc_pad);
  return gst_element_set_state(pipeline_, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE;
}

void Peer::Start(GstSDPMessage* offer, const H264Choice& choice, const SubscribeFn& subscribe) {
  if (!Build(choice)) {
    gst_sdp_message_free(offer);
    Fail(500, "cannot start a WebRTC pipeline");
    return;
  }
  subscription_ = subscribe([this](const encode::EncodedFramePtr& unit) { OnAccessUnit(unit); });
  GstWebRTCSessionDescription* description =
      gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_OFFER, offer);
  g_signal_emit_by_name(webrtc_, "set-remote-description", description, Promise(OnRemoteSet));
  gst_webrtc_session_description_free(description);
}

void Peer::OnRemoteSet(GstPromise* promise, gpointer data) {
  const std::shared_ptr<Peer> peer = Lock(data);
  if (!peer) return;
  if (gst_promise_wait(promise) != GST_PROMISE_RESULT_REPLIED ||
      (gst_promise_get_reply(promise) != nullptr &&
       gst_structure_has_field(gst_promise_get_reply(promise), "error"))) {
    peer->Fail(400, "offer refused: " + ErrorOf(promise, "set-remote-description failed"));
    return;
  }
  g_signal_emit_by_name(peer->webrtc_, "create-answer", nullptr, peer->Promise(OnAnswerCreated));
}

void Peer::OnAnswerCreated(GstPromise* promise, gpointer data) {
  const std::shared_ptr<Peer> peer = Lock(data);
  if (!peer) return;
  GstWebRTCSessionDescription* answer = nullptr;
  const GstStructure* reply = gst_promise_wait(promise) == GST_PROMISE_RESULT_REPLIED
                                  ? gst_promise_get_reply(promise)
                                  : nullptr;
  if (reply != nullptr) {
    gst_structure_get(reply, "answer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &answer, nullptr);
  }
  if (answer == nullptr) {
    peer->Fail(400, "cannot answer the offer: " + ErrorOf(promise, "create-answer failed"));
    return;
  }
  g_signal_emit_by_name(peer->webrtc_, "set-local-description", answer, peer->Promise(OnLocalSet));
  gst_webrtc_session_description_free(answer);
}

void Peer::OnLocalSet(GstPromise* promise, gpointer data) {
  const std::shared_ptr<Peer> peer = Lock(data);
  if (!peer) return;
  if (gst_promise_wait(promise) != GST_PROMISE_RESULT_REPLIED ||
      (gst_promise_get_reply(promise) != nullptr &&
       gst_structure_has_field(gst_promise_get_reply(promise), "error"))) {
    peer->Fail(500, "set-local-description failed: " + ErrorOf(promise, "no reply"));
    return;
  }
  peer->local_set_ = true;
  GstWebRTCICEGatheringState gathering = GST_WEBRTC_ICE_GATHERING_STATE_NEW;
  g_object_get(peer->webrtc_, "ice-gathering-state", &gathering, nullptr);
  if (gathering == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE) {
    peer->Finish();
    return;
  }
  // Answer with what was gathered by then: on a host with unreachable
  // interfaces gathering may never complete.
  const auto timeout_ms = static_cast<unsigned>(peer->options_.gather_timeout_s * 1000);
  peer->hooks_.post(
      [weak = std::weak_ptr<Peer>(peer)] {
        if (const std::shared_ptr<Peer> later = weak.lock()) later->Finish();
      },
      timeout_ms);
}

void Peer::OnGatheringState(GstElement* webrtc, GParamSpec*, gpointer data) {
  auto* peer = static_cast<Peer*>(data);
  GstWebRTCICEGatheringState gathering = GST_WEBRTC_ICE_GATHERING_STATE_NEW;
  g_object_get(webrtc, "ice-gathering-state", &gathering, nullptr);
  if (gathering == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE && peer->local_set_) peer->Finish();
}

void Peer::Finish() {
  if (answered_.exchange(true)) return;
  GstWebRTCSessionDescription* local = nullptr;
  g_object_get(webrtc_, "local-description", &local, nullptr);
  if (local == nullptr) {
    answered_ = false;
    Fail(500, "webrtcbin has no local description");
    return;
  }
  gchar* text = gst_sdp_message_as_text(local->sdp);
  Answer answer{.status = 201,
                .body = KeepCandidatesOn(text, options_.bind_address),
                .id = id_,
                .etag = etag_};
  g_free(text);
  gst_webrtc_session_description_free(local);
  state_ = PeerState::kConnecting;
  spdlog::info("whep: peer {} from {} answered", id_, address_);
  // The player gets this long to connect; one that never does is removed.
  const auto connect_ms = static_cast<unsigned>(options_.connect_timeout_s * 1000);
  hooks_.post(
      [weak = weak_from_this()] {
        const std::shared_ptr<Peer> peer = weak.lock();
        if (peer && peer->state_ == PeerState::kConnecting) {
          spdlog::info("whep: peer {} never connected", peer->id_);
          peer->hooks_.remove(peer->id_);
        }
      },
      connect_ms);
  std::function<void(Answer)> done = std::move(done_);
  done(std::move(answer));
}

void Peer::Fail(unsigned status, std::string message) {
  if (answered_.exchange(true)) {
    hooks_.remove(id_);
    return;
  }
  spdlog::warn("whep: offer from {}: {}", address_, message);
  std::function<void(Answer)> done = std::move(done_);
  hooks_.remove(id_);
  done(Answer{.status = status, .body = std::move(message), .id = {}, .etag = {}});
}

void Peer::OnConnectionState(GstElement* webrtc, GParamSpec*, gpointer data) {
  auto* peer = static_cast<Peer*>(data);
  GstWebRTCPeerConnectionState state = GST_WEBRTC_PEER_CONNECTION_STATE_NEW;
  g_object_get(webrtc, "connection-state", &state, nullptr);
  if (state == GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED) {
    if (peer->state_.exchange(PeerState::kConnected) == PeerState::kConnected) return;
    {
      std::lock_guard lock(peer->mutex_);
      peer->connected_us_ = MonotonicMicros();
      peer->hold_.emplace(peer->demand_);
      // The gate waits for an IDR from here on; ask for it now rather than
      // at the first P-frame.
      peer->gate_.MarkAsked();
    }
    peer->keyframes_.Request(h264::KeyReason::kJoin, MonotonicMicros());
    peer->last_rtcp_us_ = MonotonicMicros();
    if (peer->rtpbin_ != nullptr) {
      peer->hooks_.post(
          [weak = peer->weak_from_this()] {
            if (const std::shared_ptr<Peer> later = weak.lock()) later->WatchSilence();
          },
          1000);
    }
    spdlog::info("whep: peer {} connected", peer->id_);
  } else if (state == GST_WEBRTC_PEER_CONNECTION_STATE_FAILED ||
             state == GST_WEBRTC_PEER_CONNECTION_STATE_CLOSED) {
    spdlog::info("whep: peer {} connection {}", peer->id_,
                 state == GST_WEBRTC_PEER_CONNECTION_STATE_FAILED ? "failed" : "closed");
    peer->hooks_.remove(peer->id_);
  }
}

void Peer::OnIceState(GstElement* webrtc, GParamSpec*, gpointer data) {
  auto* peer = static_cast<Peer*>(data);
  GstWebRTCICEConnectionState state = GST_WEBRTC_ICE_CONNECTION_STATE_NEW;
  g_object_get(webrtc, "ice-connection-state", &state, nullptr);
  if (state == GST_WEBRTC_ICE_CONNECTION_STATE_FAILED) {
    spdlog::info("whep: peer {} ICE failed", peer->id_);
    peer->hooks_.remove(peer->id_);
  } else if (state == GST_WEBRTC_ICE_CONNECTION_STATE_DISCONNECTED) {
    const int64_t since = MonotonicMicros();
    peer->disconnected_since_us_ = since;
    const auto timeout_ms = static_cast<unsigned>(peer->options_.disconnect_timeout_s * 1000);
    peer->hooks_.post(
        [weak = peer->weak_from_this(), since] {
          const std::shared_ptr<Peer> later = weak.lock();
          if (later && later->disconnected_since_us_ == since) {
            spdlog::info("whep: peer {} disconnected for too long", later->id_);
            later->hooks_.remove(later->id_);
          }
        },
        timeout_ms);
  } else {
    peer->disconnected_since_us_ = 0;
  }
}

void Peer::OnRtcpFrom(GstElement*, guint, guint, gpointer data) {
  static_cast<Peer*>(data)->last_rtcp_us_ = MonotonicMicros();
}

void Peer::WatchSilence() {
  if (state_ != PeerState::kConnected) return;
  const double silent_s = static_cast<double>(MonotonicMicros() - last_rtcp_us_) / 1e6;
  if (silent_s > options_.silence_timeout_s) {
    spdlog::info("whep: peer {} sent nothing for {:.0f} s: gone", id_, silent_s);
    hooks_.remove(id_);
    return;
  }
  hooks_.post(
      [weak = weak_from_this()] {
        if (const std::shared_ptr<Peer> later = weak.lock()) later->WatchSilence();
      },
      1000);
}

void Peer::OnAccessUnit(const encode::EncodedFramePtr& unit) {
  // Frames before the connection is up would be lost in webrtcbin (no
  // DTLS keys yet); the gate starts at the first IDR after it.
  if (state_ != PeerState::kConnected) return;
  std::lock_guard lock(mutex_);
  if (const std::optional<h264::KeyReason> reason = gate_.Offer(unit)) {
    keyframes_.Request(*reason, MonotonicMicros());
  }
  PushQueuedLocked();
}

void Peer::OnNeedData(GstElement*, guint, gpointer data) {
  auto* peer = static_cast<Peer*>(data);
  std::lock_guard lock(peer->mutex_);
  peer->PushQueuedLocked();
}

void Peer::PushQueuedLocked() {
  auto* appsrc = GST_APP_SRC(appsrc_);
  while (gst_app_src_get_current_level_bytes(appsrc) < options_.max_queued_bytes) {
    std::optional<encode::EncodedFramePtr> next = gate_.Next();
    if (!next) return;
    const encode::EncodedFrame& frame = **next;
    // The buffer wraps the shared access unit's bytes (no copy) and keeps it
    // alive until GStreamer is done with them.
    auto* owner = new encode::EncodedFramePtr(std::move(*next));
    GstBuffer* buffer = gst_buffer_new_wrapped_full(
        GST_MEMORY_FLAG_READONLY, const_cast<unsigned char*>(frame.bytes.data()),
        frame.bytes.size(), 0, frame.bytes.size(), owner,
        [](gpointer data) { delete static_cast<encode::EncodedFramePtr*>(data); });
    if (!frame.keyframe) GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_DELTA_UNIT);
    if (gst_app_src_push_buffer(appsrc, buffer) != GST_FLOW_OK) return;
    ++sent_frames_;
    bytes_ += frame.bytes.size();
  }
}

GstBusSyncReply Peer::OnBusMessage(GstBus*, GstMessage* message, gpointer data) {
  auto* peer = static_cast<Peer*>(data);
  if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_ERROR && peer->state_ != PeerState::kEnded) {
    GError* error = nullptr;
    gst_message_parse_error(message, &error, nullptr);
    spdlog::warn("whep: peer {}: {}", peer->id_, error != nullptr ? error->message : "error");
    if (error != nullptr) g_error_free(error);
    peer->hooks_.remove(peer->id_);
  }
  return GST_BUS_DROP;
}

GstPadProbeReturn Peer::OnUpstreamEvent(GstPad*, GstPadProbeInfo* info, gpointer data) {
  GstEvent* event = GST_PAD_PROBE_INFO_EVENT(info);
  // A receiver's PLI or FIR: rtpsession sends GstForceKeyUnit upstream.
  if (GST_EVENT_TYPE(event) != GST_EVENT_CUSTOM_UPSTREAM ||
      !gst_event_has_name(event, "GstForceKeyUnit")) {
    return GST_PAD_PROBE_OK;
  }
  auto* peer = static_cast<Peer*>(data);
  {
    std::lock_guard lock(peer->mutex_);
    ++peer->pli_;
  }
  peer->keyframes_.Request(h264::KeyReason::kPli, MonotonicMicros());
  return GST_PAD_PROBE_DROP;
}

void Peer::Teardown() {
  if (pipeline_ == nullptr) return;
  state_ = PeerState::kEnded;
  if (webrtc_ == nullptr) {  // Build failed before making the elements
    gst_object_unref(pipeline_);
    pipeline_ = nullptr;
    return;
  }
  // No callback of ours runs after this (they could post to a server that is
  // going away), and no access unit arrives once the subscription is gone.
  g_signal_handlers_disconnect_by_data(webrtc_, this);
  g_signal_handlers_disconnect_by_data(appsrc_, this);
  if (rtpbin_ != nullptr) {
    g_signal_handlers_disconnect_by_data(rtpbin_, this);
    gst_object_unref(rtpbin_);
    rtpbin_ = nullptr;
  }
  if (probe_ != 0) {
    GstPad* pad = gst_element_get_static_pad(appsrc_, "src");
    gst_pad_remove_probe(pad, probe_);
    gst_object_unref(pad);
    probe_ = 0;
  }
  subscription_.reset();
  {
    std::lock_guard lock(mutex_);
    hold_.reset();
  }
  gst_element_set_state(pipeline_, GST_STATE_NULL);
  GstBus* bus = gst_element_get_bus(pipeline_);
  gst_bus_set_sync_handler(bus, nullptr, nullptr, nullptr);
  gst_object_unref(bus);
  gst_object_unref(pipeline_);
  pipeline_ = appsrc_ = webrtc_ = nullptr;
  client_hold_.reset();
  if (!answered_.exchange(true) && done_) {
    done_(Answer{
        .status = 500, .body = "the peer ended before it was answered", .id = {}, .etag = {}});
  }
}

nlohmann::json Peer::Stats() const {
  std::lock_guard lock(mutex_);
  const PeerState state = state_;
  return {{"id", id_},
          {"peer", address_},
          {"state", StateName(state)},
          {"sent_frames", sent_frames_},
          {"bytes", bytes_},
          {"skips_to_key", gate_.skips_to_key()},
          {"dropped", gate_.dropped()},
          {"pli", pli_},
          {"rtcp_age_s", state == PeerState::kConnected
                             ? static_cast<double>(MonotonicMicros() - last_rtcp_us_) / 1e6
                             : 0.0},
          {"connected_s", state == PeerState::kConnected && connected_us_ != 0
                              ? static_cast<double>(MonotonicMicros() - connected_us_) / 1e6
                              : 0.0}};
}

}  // namespace freshframe::webrtc
