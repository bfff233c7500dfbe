// WhepServer against a fake encoder, with a second webrtcbin in the test as
// the WHEP player (recvonly H.264).
#include "webrtc/whep.h"

#define GST_USE_UNSTABLE_API 1
#include <gst/gst.h>
#include <gst/rtp/gstrtpbuffer.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "webrtc/sdp_offer.h"

namespace freshframe::webrtc {
namespace {

using namespace std::chrono_literals;

// The H264Stage's side: subscribers, and access units made up (a start code
// and a NAL header is all rtph264pay needs to packetize them).
class FakeStage {
 public:
  std::shared_ptr<void> Subscribe(h264::AccessUnitSink sink) {
    std::lock_guard lock(mutex_);
    auto entry = std::make_shared<h264::AccessUnitSink>(std::move(sink));
    sinks_.push_back(entry);
    return std::shared_ptr<void>(nullptr, [this, entry](void*) {
      std::lock_guard inner(mutex_);
      std::erase(sinks_, entry);
    });
  }
  size_t subscribers() {
    std::lock_guard lock(mutex_);
    return sinks_.size();
  }
  // One access unit to every subscriber; an IDR when asked (or first).
  void Emit() {
    const int64_t now = MonotonicMicros();
    const bool key = sequence_ == 0 || keyframes.ShouldForce(now, 0);
    if (key) keyframes.OnKeyframe(now, true);
    auto frame = std::make_shared<encode::EncodedFrame>();
    frame->codec = encode::Codec::kH264;
    frame->keyframe = key;
    frame->sequence = ++sequence_;
    if (key) {
      frame->bytes = {0, 0, 0,    1,    0x67, 0x4d, 0x00, 0x1f, 0xaa, 0, 0,
                      0, 1, 0x68, 0xce, 0x38, 0x80, 0,    0,    0,    1, 0x65};
    } else {
      frame->bytes = {0, 0, 0, 1, 0x41};
    }
    frame->bytes.resize(frame->bytes.size() + (key ? 3000 : 600), 0x5a);
    std::lock_guard lock(mutex_);
    for (const auto& sink : sinks_) (*sink)(frame);
  }

  Demand demand;
  h264::KeyframeRequests keyframes;

 private:
  std::mutex mutex_;
  std::vector<std::shared_ptr<h264::AccessUnitSink>> sinks_;
  uint64_t sequence_ = 0;
};

// A WHEP player: webrtcbin with one recvonly H.264 transceiver; counts the
// RTP packets that reach it. With `playout_delay_id`, it offers the
// playout-delay extension with that id (as Chrome does) and counts the
// packets that carry it as min = max = 0.
class Player {
 public:
  explicit Player(int payload_type = 102, int playout_delay_id = 0)
      : playout_delay_id_(playout_delay_id) {
    gst_init(nullptr, nullptr);
    pipeline_ = gst_pipeline_new(nullptr);
    webrtc_ = gst_element_factory_make("webrtcbin", nullptr);
    gst_util_set_object_arg(G_OBJECT(webrtc_), "bundle-policy", "max-bundle");
    gst_bin_add(GST_BIN(pipeline_), webrtc_);
    g_signal_connect(webrtc_, "pad-added", G_CALLBACK(OnPadAdded), this);
    gst_element_set_state(pipeline_, GST_STATE_PLAYING);
    const std::string caps =
        "application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,payload=" +
        std::to_string(payload_type) +
        ",packetization-mode=(string)1,profile-level-id=(string)42e01f,"
        "rtcp-fb-nack-pli=(boolean)true" +
        (playout_delay_id == 0 ? std::string()
                               : ",extmap-" + std::to_string(playout_delay_id) + "=(string)" +
                                     std::string(kPlayoutDelayUri));
    GstCaps* codec = gst_caps_from_string(caps.c_str());
    GstWebRTCRTPTransceiver* transceiver = nullptr;
    g_signal_emit_by_name(webrtc_, "add-transceiver", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY,
                          codec, &transceiver);
    gst_caps_unref(codec);
    if (transceiver != nullptr) gst_object_unref(transceiver);
  }
  ~Player() {
    Stop();
    gst_object_unref(pipeline_);
  }
  // The player vanishes (no DELETE, no more packets).
  void Stop() { gst_element_set_state(pipeline_, GST_STATE_NULL); }

  // The offer, with the candidates gathered within a few seconds.
  std::string Offer() {
    GstPromise* promise = gst_promise_new();
    g_signal_emit_by_name(webrtc_, "create-offer", nullptr, promise);
    gst_promise_wait(promise);
    GstWebRTCSessionDescription* offer = nullptr;
    gst_structure_get(gst_promise_get_reply(promise), "offer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION,
                      &offer, nullptr);
    gst_promise_unref(promise);
    if (offer == nullptr) return "";
    promise = gst_promise_new();
    g_signal_emit_by_name(webrtc_, "set-local-description", offer, promise);
    gst_promise_wait(promise);
    gst_promise_unref(promise);
    gst_webrtc_session_description_free(offer);
    for (int i = 0; i < 100; ++i) {
      GstWebRTCICEGatheringState state = GST_WEBRTC_ICE_GATHERING_STATE_NEW;
      g_object_get(webrtc_, "ice-gathering-state", &state, nullptr);
      if (state == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE) break;
      std::this_thread::sleep_for(50ms);
    }
    GstWebRTCSessionDescription* local = nullptr;
    g_object_get(webrtc_, "local-description", &local, nullptr);
    gchar* text = gst_sdp_message_as_text(local->sdp);
    std::string out = text;
    g_free(text);
    gst_webrtc_session_description_free(local);
    return out;
  }

  bool Accept(const std::string& answer) {
    GstSDPMessage* sdp = nullptr;
    gst_sdp_message_new_from_text(answer.c_str(), &sdp);
    GstWebRTCSessionDescription* description =
        gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_ANSWER, sdp);
    GstPromise* promise = gst_promise_new();
    g_signal_emit_by_name(webrtc_, "set-remote-description", description, promise);
    const GstStructure* reply = gst_promise_wait(promise) == GST_PROMISE_RESULT_REPLIED
                                    ? gst_promise_get_reply(promise)
                                    : nullptr;
    const bool ok = reply == nullptr || !gst_structure_has_field(reply, "error");
    gst_promise_unref(promise);
    gst_webrtc_session_description_free(description);
    return ok;
  }

  // Sends a keyframe request upstream from the received stream, which the
  // player's RTP session turns into a PLI.
  bool RequestKeyframe() {
    std::lock_guard lock(mutex_);
    if (src_pad_ == nullptr) return false;
    GstStructure* structure =
        gst_structure_new("GstForceKeyUnit", "all-headers", G_TYPE_BOOLEAN, TRUE, nullptr);
    return gst_pad_send_event(src_pad_, gst_event_new_custom(GST_EVENT_CUSTOM_UPSTREAM, structure));
  }

  int packets() const { return packets_.load(); }
  int zero_delay_packets() const { return zero_delay_packets_.load(); }

 private:
  static void OnPadAdded(GstElement*, GstPad* pad, gpointer data) {
    auto* self = static_cast<Player*>(data);
    if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;
    GstElement* sink = gst_element_factory_make("fakesink", nullptr);
    gst_bin_add(GST_BIN(self->pipeline_), sink);
    gst_element_sync_state_with_parent(sink);
    GstPad* sink_pad = gst_element_get_static_pad(sink, "sink");
    gst_pad_link(pad, sink_pad);
    gst_pad_add_probe(
        sink_pad, GST_PAD_PROBE_TYPE_BUFFER,
        [](GstPad*, GstPadProbeInfo* info, gpointer user) {
          auto* player = static_cast<Player*>(user);
          ++player->packets_;
          GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
          if (player->playout_delay_id_ != 0 &&
              gst_rtp_buffer_map(GST_PAD_PROBE_INFO_BUFFER(info), GST_MAP_READ, &rtp)) {
            gpointer extension = nullptr;
            guint size = 0;
            if (gst_rtp_buffer_get_extension_onebyte_header(
                    &rtp, static_cast<guint8>(player->playout_delay_id_), 0, &extension, &size) &&
                size == 3) {
              const auto* bytes = static_cast<const guint8*>(extension);
              if (bytes[0] == 0 && bytes[1] == 0 && bytes[2] == 0) ++player->zero_delay_packets_;
            }
            gst_rtp_buffer_unmap(&rtp);
          }
          return GST_PAD_PROBE_OK;
        },
        self, nullptr);
    gst_object_unref(sink_pad);
    std::lock_guard lock(self->mutex_);
    self->src_pad_ = pad;
  }

  const int playout_delay_id_;
  GstElement* pipeline_;
  GstElement* webrtc_;
  std::mutex mutex_;
  GstPad* src_pad_ = nullptr;
  std::atomic<int> packets_{0};
  std::atomic<int> zero_delay_packets_{0};
};

Answer OfferAndWait(WhepServer& server, std::string sdp, std::shared_ptr<void> hold = nullptr) {
  std::promise<Answer> promise;
  auto future = promise.get_future();
  server.Offer(
      std::move(sdp), "127.0.0.1:1",
      [&promise](Answer answer) { promise.set_value(std::move(answer)); }, std::move(hold));
  EXPECT_EQ(future.wait_for(20s), std::future_status::ready);
  return future.get();
}

std::unique_ptr<WhepServer> MakeServer(FakeStage& stage, size_t max_peers = 4,
                                       double silence_timeout_s = 15.0) {
  WhepOptions options;
  options.max_peers = max_peers;
  options.silence_timeout_s = silence_timeout_s;
  return std::make_unique<WhepServer>(
      options, [&stage](h264::AccessUnitSink sink) { return stage.Subscribe(std::move(sink)); },
      stage.demand, stage.keyframes);
}

// The encoder's thread, as the H264Stage runs it: an access unit every
// 33 ms until Stop (or the end of scope).
class Emitting {
 public:
  explicit Emitting(FakeStage& stage)
      : thread_([this, &stage] {
          while (!stop_) {
            stage.Emit();
            std::this_thread::sleep_for(33ms);
          }
        }) {}
  ~Emitting() { Stop(); }
  Emitting(const Emitting&) = delete;
  Emitting& operator=(const Emitting&) = delete;
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

template <typename Predicate>
bool WaitFor(Predicate predicate, std::chrono::milliseconds limit = 10s) {
  for (auto end = std::chrono::steady_clock::now() + limit; std::chrono::steady_clock::now() < end;
       std::this_thread::sleep_for(20ms)) {
    if (predicate()) return true;
  }
  return predicate();
}

TEST(WhepTest, BadOffersAreRefusedSayingWhy) {
  FakeStage stage;
  auto server = MakeServer(stage);
  auto hold = std::make_shared<int>(0);
  const Answer not_sdp = OfferAndWait(*server, "hello", hold);
  EXPECT_EQ(hold.use_count(), 1);  // a refusal releases the client's places
  EXPECT_EQ(not_sdp.status, 400U);
  EXPECT_EQ(not_sdp.body, "offer is not SDP");
  const Answer no_video =
      OfferAndWait(*server, "v=0\r\nm=audio 9 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n");
  EXPECT_EQ(no_video.status, 400U);
  EXPECT_EQ(no_video.body, "offer has no video");
  const Answer no_h264 =
      OfferAndWait(*server, "v=0\r\nm=video 9 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n");
  EXPECT_EQ(no_h264.status, 406U);
  EXPECT_EQ(no_h264.body, "offer has no H.264 (packetization-mode 1)");
  EXPECT_EQ(server->peers(), 0U);
  EXPECT_EQ(stage.demand.watchers(), 0);
}

TEST(WhepTest, EndOfAnUnknownIdIsFalse) {
  FakeStage stage;
  auto server = MakeServer(stage);
  EXPECT_FALSE(server->End("0123456789abcdef0123456789abcdef"));
  EXPECT_FALSE(server->End(""));
}

TEST(WhepTest, AnswersWithTheOfferedPayloadTypeAndEnds) {
  FakeStage stage;
  auto server = MakeServer(stage);
  Player player(109);
  auto hold = std::make_shared<int>(0);
  const std::weak_ptr<int> held = hold;
  const Answer answer = OfferAndWait(*server, player.Offer(), std::move(hold));
  ASSERT_EQ(answer.status, 201U) << answer.body;
  EXPECT_NE(answer.body.find("m=video 9 UDP/TLS/RTP/SAVPF 109"), std::string::npos) << answer.body;
  EXPECT_NE(answer.body.find("a=rtpmap:109 H264/90000"), std::string::npos) << answer.body;
  EXPECT_NE(answer.body.find("a=sendonly"), std::string::npos) << answer.body;
  EXPECT_EQ(answer.id.size(), 32U);
  EXPECT_FALSE(held.expired());        // the peer keeps the client's places
  EXPECT_EQ(answer.etag.size(), 16U);  // unquoted: http quotes it
  EXPECT_EQ(server->peers(), 1U);
  // Not connected (the test never sets the answer): the encoder is not
  // wanted yet.
  EXPECT_EQ(stage.demand.watchers(), 0);
  EXPECT_EQ(stage.subscribers(), 1U);
  const nlohmann::json stats = server->Stats();
  EXPECT_EQ(stats["peers"], 1);
  EXPECT_EQ(stats["max_peers"], 4);
  EXPECT_EQ(stats["clients"][0]["id"], answer.id);
  EXPECT_EQ(stats["clients"][0]["peer"], "127.0.0.1:1");

  EXPECT_TRUE(server->End(answer.id));
  EXPECT_FALSE(server->End(answer.id));
  EXPECT_EQ(server->peers(), 0U);
  EXPECT_TRUE(WaitFor([&] { return stage.demand.watchers() == 0 && stage.subscribers() == 0; }));
  EXPECT_TRUE(WaitFor([&] { return held.expired(); }));  // the client's places are free
}

TEST(WhepTest, BeyondMaxPeersIs503) {
  FakeStage stage;
  auto server = MakeServer(stage, 1);
  Player first;
  Player second;
  const Answer ok = OfferAndWait(*server, first.Offer());
  ASSERT_EQ(ok.status, 201U) << ok.body;
  const Answer refused = OfferAndWait(*server, second.Offer());
  EXPECT_EQ(refused.status, 503U);
  EXPECT_EQ(server->peers(), 1U);
}

TEST(WhepTest, DestroyingTheServerEndsItsPeers) {
  FakeStage stage;
  auto server = MakeServer(stage);
  Player player;
  ASSERT_EQ(OfferAndWait(*server, player.Offer()).status, 201U);
  server.reset();
  EXPECT_EQ(stage.demand.watchers(), 0);
  EXPECT_EQ(stage.subscribers(), 0U);
}

// Media over ICE between two webrtcbins of this process. libnice does not
// gather on loopback, so this needs a non-loopback interface (skipped
// without one; tests/integration/test_whep.py covers media with aiortc).
TEST(WhepTest, APlayerReceivesRtpAndItsKeyframeRequestReachesTheEncoder) {
  FakeStage stage;
  auto server = MakeServer(stage);
  Player player;
  const std::string offer = player.Offer();
  if (offer.find("a=candidate:") == std::string::npos) {
    GTEST_SKIP() << "no ICE candidate gathered (loopback-only host)";
  }
  const Answer answer = OfferAndWait(*server, offer);
  ASSERT_EQ(answer.status, 201U) << answer.body;
  ASSERT_TRUE(player.Accept(answer.body));
  Emitting encoder(stage);
  EXPECT_TRUE(WaitFor([&] { return player.packets() > 20; }, 15s)) << player.packets();
  EXPECT_EQ(stage.demand.watchers(), 1);
  const auto joined = stage.keyframes.counts();
  EXPECT_GE(joined.requested[static_cast<size_t>(h264::KeyReason::kJoin)], 1U);
  const nlohmann::json client = server->Stats()["clients"][0];
  EXPECT_EQ(client["state"], "connected");
  EXPECT_GT(client["sent_frames"].get<int>(), 0);
  // The player's RTCP reaches the silence watch (rtcp_age_s restarts at
  // each packet; 1 s into the connection without any, it would be >= 1).
  EXPECT_TRUE(WaitFor(
      [&] {
        const nlohmann::json now = server->Stats()["clients"][0];
        return now["connected_s"].get<double>() > 1.0 && now["rtcp_age_s"].get<double>() < 0.5;
      },
      15s));
  EXPECT_TRUE(WaitFor([&] {
    player.RequestKeyframe();
    return stage.keyframes.counts().requested[static_cast<size_t>(h264::KeyReason::kPli)] > 0;
  }));
  encoder.Stop();
  EXPECT_TRUE(server->End(answer.id));
  EXPECT_TRUE(WaitFor([&] { return stage.demand.watchers() == 0 && stage.subscribers() == 0; }));
}

// Chrome holds each frame for its jitter buffer's delay (20-55 ms more than
// WebCodecs on a LAN) unless the sender asks for none: the answer accepts
// the playout-delay extension a player offers, and every packet carries it
// as min = max = 0. A player that does not offer it gets none (aiortc).
TEST(WhepTest, AnOfferedPlayoutDelayIsAnsweredAndZeroOnEveryPacket) {
  FakeStage stage;
  auto server = MakeServer(stage);
  Player plain;
  const Answer without = OfferAndWait(*server, plain.Offer());
  ASSERT_EQ(without.status, 201U) << without.body;
  EXPECT_EQ(without.body.find("playout-delay"), std::string::npos) << without.body;

  Player player(102, 5);
  const std::string offer = player.Offer();
  ASSERT_NE(offer.find("a=extmap:5 " + std::string(kPlayoutDelayUri)), std::string::npos) << offer;
  const Answer answer = OfferAndWait(*server, offer);
  ASSERT_EQ(answer.status, 201U) << answer.body;
  EXPECT_NE(answer.body.find("a=extmap:5 " + std::string(kPlayoutDelayUri)), std::string::npos)
      << answer.body;
  if (offer.find("a=candidate:") == std::string::npos) {
    GTEST_SKIP() << "no ICE candidate gathered (loopback-only host)";
  }
  ASSERT_TRUE(player.Accept(answer.body));
  Emitting encoder(stage);
  EXPECT_TRUE(WaitFor([&] { return player.packets() > 20; }, 15s)) << player.packets();
  encoder.Stop();
  // The packets still on their way arrive (well within the wait).
  EXPECT_TRUE(WaitFor([&] { return player.zero_delay_packets() == player.packets(); }))
      << player.zero_delay_packets() << " of " << player.packets();
  EXPECT_GT(player.zero_delay_packets(), 20);
}

// A player that vanishes without DELETE (its RTCP stops) is removed.
// Regression: such peers stayed connected, encoding and sending, forever.
TEST(WhepTest, APlayerThatGoesSilentIsRemoved) {
  FakeStage stage;
  auto server = MakeServer(stage, 4, 2.0);
  Player player;
  const std::string offer = player.Offer();
  if (offer.find("a=candidate:") == std::string::npos) {
    GTEST_SKIP() << "no ICE candidate gathered (loopback-only host)";
  }
  const Answer answer = OfferAndWait(*server, offer);
  ASSERT_EQ(answer.status, 201U) << answer.body;
  ASSERT_TRUE(player.Accept(answer.body));
  Emitting encoder(stage);
  EXPECT_TRUE(WaitFor([&] { return stage.demand.watchers() == 1; }));
  player.Stop();
  EXPECT_TRUE(WaitFor([&] { return server->peers() == 0; }, 20s));
  EXPECT_TRUE(WaitFor([&] { return stage.demand.watchers() == 0; }));
  encoder.Stop();
}

}  // namespace
}  // namespace freshframe::webrtc
