// RTP out: the stream's one H.264 encode sent as RTP (RFC 6184,
// packetization-mode 1) over plain UDP to an engine that fans it out, e.g.
// the Janus streaming plugin's "rtp" mountpoint (docs/deploy-janus.md).
//
//   H264Stage ─sink─► egress::Feed ─Next()─► RtpSender thread ─UDP─► HOST:PORT
//                                                  ▲  └─ RTCP SR ─────► HOST:PORT+1
//                                                  └──── RTCP RR/PLI/FIR (PORT+1)
//
// - Packets: single NAL units when they fit in `mtu`, FU-A fragments
//   otherwise; the marker bit on the last packet of each access unit; a 90
//   kHz timestamp from the frame's capture stamp (shifted if need be, so
//   that it never goes back); random SSRC and initial sequence number.
//   SPS/PPS go in band (the encoder puts them before every IDR).
// - RTCP (RFC 3550 convention: RTP to PORT, RTCP to PORT+1, the Janus
//   mountpoint's videoport/videortcpport): a Sender Report about every
//   second from a socket bound to the local port after the RTP socket's, and
//   every PLI or FIR coming back asks the encoder for an IDR
//   (KeyReason::kPli), which KeyframeRequests rate-limits: a flood of them
//   costs nothing more.
// - UDP has no connection, but a connected UDP socket learns of an ICMP
//   "port unreachable" (ECONNREFUSED): the sender then reports kRetrying with
//   the error, keeps trying with egress::Backoff (access units meanwhile are
//   dropped by the feed), and once sends succeed again reports kConnected
//   and restarts the feed at an IDR, so an engine that restarted gets a
//   decodable stream by itself.
// - The sender never blocks the encoder: its own thread takes access units
//   from the feed (skip to the next keyframe when it falls behind); sends
//   are non-blocking, and a full socket buffer costs the rest of that access
//   unit and an IDR request, never a queue.
//
// Thread-safety and ownership: Start, Stop and Stats may be called from any
// thread (Start/Stop not concurrently with each other). The sender owns its
// thread and sockets; the destructor stops it. Whatever `subscribe` refers
// to, the Demand and the KeyframeRequests must outlive the RtpSender.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "core/demand.h"
#include "core/expected.h"
#include "egress/egress.h"
#include "h264/h264.h"

namespace freshframe::rtp {

// Where RTP goes: `port` (RTP) and `port` + 1 (RTCP).
struct Target {
  std::string host;  // an IP literal (IPv6 without brackets) or a host name
  uint16_t port = 0;
};

// "HOST:PORT" or "[IPV6]:PORT". The host must be an IP literal or a name
// that resolves now; the port 1..65534 (RTCP takes the next one; an even
// port is the convention). The Error is one line starting "--rtp-out: ".
Expected<Target> ParseTarget(std::string_view text);
// "HOST:PORT" ("[IPV6]:PORT"), as ParseTarget reads it.
std::string ToString(const Target& target);

struct RtpOptions {
  Target target;
  // The largest UDP payload sent (RTP header included): 1200 leaves room
  // for tunnels and for Janus's own SRTP and header extensions on its way
  // to browsers.
  size_t mtu = 1200;
  uint8_t payload_type = 96;  // dynamic; the mountpoint's videopt
  // The local address to send from ("": any).
  std::string bind_address;
};

class RtpSender final : public egress::Output {
 public:
  RtpSender(RtpOptions options, egress::SubscribeFn subscribe, Demand& demand,
            h264::KeyframeRequests& keyframes);
  ~RtpSender() override;
  RtpSender(const RtpSender&) = delete;
  RtpSender& operator=(const RtpSender&) = delete;

  // Starts the thread (and the feed: the first access unit sent is an IDR).
  // An unreachable target is no error: the sender retries by itself.
  void Start() override;
  void Stop() override;

  // egress::OutputStatus::Json(&feed) ("kind": "rtp", "target": HOST:PORT)
  // plus "ssrc", "packets", "send_overflows" (access units cut short by a
  // full socket buffer), "dropped_while_retrying", and "rtcp": {"port"
  // (local, where PLIs come to), "sr_sent", "pli_received", "fir_received",
  // "rr_received", "malformed", "foreign" (from another host: ignored), and
  // from the last receiver report "fraction_lost" (0..1),
  // "cumulative_lost", "jitter" (RTP timestamp units)}.
  nlohmann::json Stats() const override;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace freshframe::rtp
