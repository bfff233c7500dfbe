#!/usr/bin/env python3
"""WebRTC playback by WHEP (POST /whep), with aiortc as the player.

aiortc (Debian python3-aiortc) offers recvonly video; the server answers 201
with an SDP answer naming the offered H.264 payload type, a Location and an
ETag; frames arrive, aiortc decodes them, and the timecode strip reads on
them (latency bounded); the peer shows in /api/stats; DELETE on the Location
ends it (and the peer leaves /api/stats); a player that vanishes without
DELETE is removed once its RTCP stops (15 s). Offers that are not SDP, have no
video or no H.264 are 400/406 saying why; beyond --max-webrtc-peers, 503.

ICE: both ends gather host candidates on the machine's non-loopback
interfaces (aioice and libnice skip loopback), so the test needs one; it is
skipped with a message on a loopback-only host (CI: run it in a network
namespace with a veth, as tests/e2e does for Chromium).
"""
import asyncio
import http.client
import socket
import time
import unittest

import ffharness as ff
from jpeg_strip import read_strip_gray

try:
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.rtcrtpsender import RTCRtpSender
except ImportError:  # pragma: no cover - the test is skipped below
    RTCPeerConnection = None

MAX_PEERS = 2
FRAMES = 30  # decoded frames each player must read the strip on


def non_loopback_ipv4():
    """An IPv4 address of this host that is not loopback, or None."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent
            address = s.getsockname()[0]
            return None if address.startswith("127.") else address
    except OSError:
        return None


def post(port, path, body, content_type="application/sdp", timeout=30.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=body.encode("utf-8"),
                     headers={"Content-Type": content_type})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode("utf-8")
    finally:
        conn.close()


def request(port, method, path, timeout=10.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def header(headers, name):
    for k, v in headers.items():
        if k.lower() == name.lower():
            return v
    return None


async def make_offer(h264_only=True):
    pc = RTCPeerConnection()
    transceiver = pc.addTransceiver("video", direction="recvonly")
    if h264_only:
        codecs = RTCRtpSender.getCapabilities("video").codecs
        transceiver.setCodecPreferences([c for c in codecs if c.mimeType == "video/H264"])
    await pc.setLocalDescription(await pc.createOffer())  # gathers every candidate
    return pc, pc.localDescription.sdp


async def play(port, frames, path="/whep"):
    """Plays /whep until `frames` decoded frames carried a readable strip.
    Returns (pc, location, stats) with the peer still up."""
    pc, offer = await make_offer()
    track_ready = asyncio.get_running_loop().create_future()

    @pc.on("track")
    def on_track(track):
        if not track_ready.done():
            track_ready.set_result(track)

    status, headers, answer = await asyncio.to_thread(post, port, path, offer)
    if status != 201:
        await pc.close()
        raise AssertionError(f"POST {path} -> {status}: {answer}")
    location = header(headers, "Location")
    stats = {"location": location, "etag": header(headers, "ETag"),
             "content_type": header(headers, "Content-Type"), "answer": answer,
             "latencies_ms": [], "decoded": 0, "read": 0, "first_frame_s": None}
    started = time.monotonic()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    track = await asyncio.wait_for(track_ready, 10)
    deadline = time.monotonic() + 30
    while stats["read"] < frames:
        if time.monotonic() > deadline:
            break
        frame = await asyncio.wait_for(track.recv(), 10)
        now_us = int(ff.mono_s() * 1e6)
        stats["decoded"] += 1
        if stats["first_frame_s"] is None:
            stats["first_frame_s"] = time.monotonic() - started
        gray = frame.to_ndarray(format="gray")
        strip = read_strip_gray(gray, now_us)
        if strip is not None:
            stats["read"] += 1
            stats["latencies_ms"].append((now_us - strip[0]) / 1000.0)
    return pc, location, stats


def whep_clients(server):
    return server.stats().get("webrtc", {}).get("clients", [])


@unittest.skipIf(RTCPeerConnection is None, "aiortc is not installed (Debian python3-aiortc)")
@unittest.skipIf(non_loopback_ipv4() is None,
                 "no non-loopback IPv4 interface: ICE (libnice, aioice) gathers none on loopback")
class WhepTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = ff.Server("--detector", "none", "--max-webrtc-peers",
                               str(MAX_PEERS)).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def tearDown(self):
        self.assertTrue(self.server.alive(), self.server.stderr())

    def test_play_read_strip_and_delete(self):
        async def scenario():
            pc, location, stats = await play(self.server.port, FRAMES)
            try:
                clients = await asyncio.to_thread(whep_clients, self.server)
            finally:
                await pc.close()
            return location, stats, clients

        location, stats, clients = asyncio.run(scenario())
        self.assertEqual(stats["content_type"], "application/sdp")
        self.assertTrue(stats["etag"], "no ETag")
        self.assertTrue(location and "/whep/" in location, location)
        self.assertIn(" H264/90000", stats["answer"])
        self.assertGreaterEqual(stats["read"], FRAMES,
                                f"strip read on {stats['read']} of {stats['decoded']} frames")
        # Every decoded frame carries the strip (it survives the encode).
        self.assertGreaterEqual(stats["read"], stats["decoded"] - 2, stats)
        latencies = sorted(stats["latencies_ms"])
        p50 = latencies[len(latencies) // 2]
        print(f"\nwhep/aiortc: first frame {stats['first_frame_s'] * 1000:.0f} ms after the "
              f"answer, strip latency p50 {p50:.1f} ms max {latencies[-1]:.1f} ms over "
              f"{len(latencies)} frames")
        self.assertLess(p50, 500.0)  # generous: aiortc decodes in Python on a busy box
        self.assertEqual(len(clients), 1, clients)
        self.assertEqual(clients[0]["state"], "connected")
        self.assertGreater(clients[0]["sent_frames"], 0)
        self.assertTrue(location.endswith(clients[0]["id"]), (location, clients))
        path = location[location.index("/whep/"):] if "://" in location else location
        status, _ = request(self.server.port, "DELETE", path)
        self.assertIn(status, (200, 204))
        deadline = time.monotonic() + 5
        while whep_clients(self.server) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(whep_clients(self.server), [])
        status, _ = request(self.server.port, "DELETE", path)
        self.assertEqual(status, 404)

    def test_a_player_that_vanishes_is_removed(self):
        """No DELETE: the player just stops (its RTCP stops); the server
        removes the peer after its silence timeout (15 s)."""
        async def scenario():
            pc, location, _ = await play(self.server.port, 3)
            await pc.close()
            started = time.monotonic()
            while time.monotonic() - started < 40:
                clients = await asyncio.to_thread(whep_clients, self.server)
                if not clients:
                    return time.monotonic() - started
                await asyncio.sleep(0.5)
            return None

        gone_after = asyncio.run(scenario())
        self.assertIsNotNone(gone_after, "the peer of a vanished player stayed")

    def test_bad_offers_say_what_is_missing(self):
        status, _, body = post(self.server.port, "/whep", "hello")
        self.assertEqual((status, body.strip()), (400, "offer is not SDP"))
        status, _, body = post(self.server.port, "/whep",
                               "v=0\r\nm=audio 9 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n")
        self.assertEqual((status, body.strip()), (400, "offer has no video"))

        async def vp8_offer():
            pc, offer = await make_offer(h264_only=False)
            await pc.close()
            lines = offer.split("\r\n")
            # Keep VP8 only: drop the H.264 formats' attributes and the
            # m-line's H.264 payload types.
            h264 = {l.split(":")[1].split()[0] for l in lines if l.startswith("a=rtpmap:")
                    and "H264" in l}
            kept = []
            for l in lines:
                if l.startswith("m=video"):
                    l = " ".join(p for p in l.split() if p not in h264)
                elif l.startswith(("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:")) and \
                        l.split(":")[1].split()[0] in h264:
                    continue
                kept.append(l)
            return "\r\n".join(kept)

        status, _, body = post(self.server.port, "/whep", asyncio.run(vp8_offer()))
        self.assertEqual((status, body.strip()), (406, "offer has no H.264 (packetization-mode 1)"))
        status, _ = request(self.server.port, "PATCH", "/whep/0123456789abcdef0123456789abcdef")
        self.assertIn(status, (404, 405))

    def test_beyond_the_peer_cap_is_503(self):
        async def scenario():
            peers = []
            try:
                for _ in range(MAX_PEERS):
                    pc, offer = await make_offer()
                    peers.append(pc)
                    status, headers, body = await asyncio.to_thread(
                        post, self.server.port, "/whep", offer)
                    self.assertEqual(status, 201, body)
                    peers_location = header(headers, "Location")
                    await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
                    peers.append(peers_location)
                pc, offer = await make_offer()
                status, _, body = await asyncio.to_thread(post, self.server.port, "/whep", offer)
                await pc.close()
                return status, body, [p for p in peers if isinstance(p, str)]
            finally:
                for p in peers:
                    if not isinstance(p, str):
                        await p.close()

        status, body, locations = asyncio.run(scenario())
        self.assertEqual(status, 503, body)
        for location in locations:
            path = location[location.index("/whep/"):] if "://" in location else location
            self.assertIn(request(self.server.port, "DELETE", path)[0], (200, 204))


if __name__ == "__main__":
    ff.main()
