#!/usr/bin/python3
"""The viewers of bench/scaleout, run INSIDE the viewer host's namespace (so
aiortc's ICE, PyAV's sockets and all traffic start there). Prints one JSON
object on stdout: frames, strip latencies (capture -> decoded here, ms: the
namespaces share CLOCK_MONOTONIC, the strip's clock) and errors.

    viewers.py whep   URL SECONDS               # freshframe's own WebRTC (aiortc)
    viewers.py janus  API_URL MOUNT N SECONDS   # N aiortc viewers of a Janus mountpoint
    viewers.py janus-silent API_URL MOUNT N SECONDS   # the same, counting frames undecoded
    viewers.py wsh264 HOST PORT SECONDS         # /ws/h264 decoded by PyAV (the bytes WebCodecs gets)
    viewers.py rtsp   URL SECONDS               # RTSP through PyAV/libavformat (TCP)
    viewers.py hls    PLAYLIST_URL SECONDS      # newest segment's last frame when it is listed

Debian's /usr/bin/python3 with python3-aiortc and python3-av.
"""
import asyncio
import json
import os
import socket
import statistics
import struct
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "integration"))
import jpeg_strip  # noqa: E402


def now_us():
    return int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6)


def strip_age_ms(frame):
    """capture -> now (ms) from a decoded av.VideoFrame's strip, or None."""
    t = now_us()
    reading = jpeg_strip.read_strip_gray(frame.to_ndarray(format="gray"), t + 1_000_000)
    return None if reading is None else (t - reading[0]) / 1000.0


def summary(latencies):
    if not latencies:
        return {"count": 0}
    s = sorted(latencies)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))]  # noqa: E731
    return {"count": len(s), "p50": round(statistics.median(s), 2), "p90": round(pick(0.9), 2),
            "p99": round(pick(0.99), 2), "max": round(s[-1], 2)}


# ---------------------------------------------------------------- WebRTC (aiortc)

async def _consume(track, seconds, measure, out):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            frame = await asyncio.wait_for(track.recv(), max(0.1, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            break
        out["frames"] += 1
        if measure:
            age = strip_age_ms(frame)
            if age is not None:
                out["lat"].append(age)


def _http(method, url, body=None, content_type="application/json", timeout=20):
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", content_type)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, dict(r.headers), r.read().decode()


async def whep(url, seconds):
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.rtcrtpsender import RTCRtpSender
    pc = RTCPeerConnection()
    tr = pc.addTransceiver("video", direction="recvonly")
    tr.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                            if c.mimeType == "video/H264"])
    got = asyncio.get_running_loop().create_future()
    pc.on("track", lambda t: got.done() or got.set_result(t))
    await pc.setLocalDescription(await pc.createOffer())
    status, headers, answer = await asyncio.to_thread(
        _http, "POST", url, pc.localDescription.sdp, "application/sdp")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    track = await asyncio.wait_for(got, 15)
    out = {"frames": 0, "lat": []}
    await _consume(track, 2.0, False, {"frames": 0})  # settle
    await _consume(track, seconds, True, out)
    await pc.close()
    location = headers.get("Location") or headers.get("location")
    if location:  # else the server keeps sending until its 15 s silence timeout
        resource = location if "://" in location else url.split("/whep")[0] + location
        try:
            await asyncio.to_thread(_http, "DELETE", resource)
        except Exception:
            pass
    return {"frames": out["frames"], "fps": out["frames"] / seconds,
            "latency_ms": summary(out["lat"])}


class JanusViewer:
    """One session + streaming handle through the Janus HTTP API (long poll)."""

    def __init__(self, api):
        self.api = api.rstrip("/")

    def call(self, path, body):
        body = dict(body, transaction=os.urandom(6).hex())
        return json.loads(_http("POST", self.api + path, json.dumps(body))[2])

    async def start(self, mount):
        from aiortc import RTCPeerConnection, RTCSessionDescription
        s = (await asyncio.to_thread(self.call, "", {"janus": "create"}))["data"]["id"]
        h = (await asyncio.to_thread(self.call, f"/{s}", {
            "janus": "attach", "plugin": "janus.plugin.streaming"}))["data"]["id"]
        self.session, self.handle = s, h
        await asyncio.to_thread(self.call, f"/{s}/{h}", {
            "janus": "message", "body": {"request": "watch", "id": mount}})
        offer = None
        deadline = time.monotonic() + 15
        while offer is None and time.monotonic() < deadline:
            events = json.loads((await asyncio.to_thread(
                _http, "GET", f"{self.api}/{s}?maxev=5"))[2])
            for ev in events if isinstance(events, list) else [events]:
                if "jsep" in ev:
                    offer = ev["jsep"]
        if offer is None:
            raise RuntimeError("no offer from Janus")
        self.pc = RTCPeerConnection()
        got = asyncio.get_running_loop().create_future()
        self.pc.on("track", lambda t: got.done() or got.set_result(t))
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await asyncio.to_thread(self.call, f"/{s}/{h}", {
            "janus": "message", "body": {"request": "start"},
            "jsep": {"type": "answer", "sdp": self.pc.localDescription.sdp}})
        self.track = await asyncio.wait_for(got, 15)
        self.keepalive = asyncio.create_task(self._poll())

    async def _poll(self):  # the long poll keeps the session alive
        while True:
            try:
                await asyncio.to_thread(_http, "GET", f"{self.api}/{self.session}?maxev=5", None,
                                        "application/json", 40)
            except Exception:
                await asyncio.sleep(1)

    async def stop(self):
        self.keepalive.cancel()
        await self.pc.close()
        try:
            await asyncio.to_thread(self.call, f"/{self.session}", {"janus": "destroy"})
        except Exception:
            pass


def _undecoded_worker(loop, input_q, output_q):
    """Replaces aiortc's decoder thread in `janus-silent` viewers: each
    assembled access unit is counted as a frame, nothing is decoded. Those
    viewers still do everything Janus asks of a viewer (ICE, DTLS, SRTP,
    RTCP, NACK), but cost this 2-core machine no decode: one Python process
    cannot decode 16 streams at 30 fps, and the viewers would then measure
    themselves, not Janus."""
    while True:
        task = input_q.get()
        if task is None:
            asyncio.run_coroutine_threadsafe(output_q.put(None), loop)
            break
        asyncio.run_coroutine_threadsafe(output_q.put(True), loop)


async def janus(api, mount, n, seconds, decode=True):
    if not decode:
        import aiortc.rtcrtpreceiver
        aiortc.rtcrtpreceiver.decoder_worker = _undecoded_worker
    viewers = [JanusViewer(api) for _ in range(n)]
    await asyncio.gather(*(v.start(mount) for v in viewers))
    warm = [{"frames": 0} for _ in viewers]
    await asyncio.gather(*(_consume(v.track, 2.0, False, w) for v, w in zip(viewers, warm)))
    # Every viewer's latency is read from the first 2 viewers only: reading
    # the strip of 16 decodes would load the same 2 cores Janus runs on.
    outs = [{"frames": 0, "lat": []} for _ in viewers]
    window = [time.clock_gettime(time.CLOCK_MONOTONIC)]
    await asyncio.gather(*(_consume(v.track, seconds, decode and i < 2, o)
                           for i, (v, o) in enumerate(zip(viewers, outs))))
    window.append(time.clock_gettime(time.CLOCK_MONOTONIC))
    await asyncio.gather(*(v.stop() for v in viewers), return_exceptions=True)
    frames = [o["frames"] for o in outs]
    return {"viewers": n, "window": window, "frames_min": min(frames), "frames_max": max(frames),
            "fps_min": min(frames) / seconds,
            "latency_ms": summary([x for o in outs for x in o["lat"]])}


# ---------------------------------------------------------------- PyAV readers

FFH4 = struct.Struct("<4sHHQQHHB3x")


def wsh264(host, port, seconds):
    import av
    import base64
    sock = socket.create_connection((host, port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws/h264 HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(65536)
    buf = buf.split(b"\r\n\r\n", 1)[1]

    def exact(n):
        nonlocal buf
        while len(buf) < n:
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        out, buf = buf[:n], buf[n:]
        return out

    codec = av.CodecContext.create("h264", "r")
    lat, frames = [], 0
    start = time.monotonic()
    while time.monotonic() - start < seconds + 1.0:
        b0, b1 = exact(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", exact(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", exact(8))[0]
        payload = exact(n)
        if b0 & 0x0F != 0x2:
            continue
        header_length = FFH4.unpack_from(payload)[2]
        for frame in codec.decode(av.Packet(payload[header_length:])):
            frames += 1
            age = strip_age_ms(frame)
            if age is not None and time.monotonic() - start > 1.0:
                lat.append(age)
    sock.close()
    return {"frames": frames, "fps": frames / (time.monotonic() - start),
            "latency_ms": summary(lat)}


def rtsp(url, seconds):
    import av
    lat, frames = [], 0
    container = av.open(url, options={"rtsp_transport": "tcp", "fflags": "nobuffer",
                                      "flags": "low_delay", "max_delay": "0"}, timeout=10)
    start = time.monotonic()
    for frame in container.decode(video=0):
        frames += 1
        age = strip_age_ms(frame)
        if age is not None and time.monotonic() - start > 1.0:
            lat.append(age)
        if time.monotonic() - start > seconds + 1.0:
            break
    container.close()
    return {"frames": frames, "fps": frames / (time.monotonic() - start),
            "latency_ms": summary(lat)}


def hls(playlist_url, seconds):
    """Polls the playlist every 100 ms; when a segment is first listed,
    decodes it: age of its LAST frame then = the least any player can be
    behind; a player that starts 3 segments back (hls.js, Safari) plays
    at about that plus two more segment durations."""
    import av
    import io
    base = playlist_url.rsplit("/", 1)[0] + "/"
    seen, ages, durations = set(), [], []
    start = time.monotonic()
    first = True
    while time.monotonic() - start < seconds:
        try:
            text = urllib.request.urlopen(playlist_url, timeout=5).read().decode()
        except Exception:
            time.sleep(0.2)
            continue
        lines = text.splitlines()
        segs = [(float(lines[i].split(":")[1].rstrip(",").split(",")[0]), lines[i + 1])
                for i in range(len(lines) - 1) if lines[i].startswith("#EXTINF")]
        for dur, name in segs:
            if name in seen:
                continue
            seen.add(name)
            if first:
                continue  # listed before we looked: its age says nothing
            listed = now_us()
            data = urllib.request.urlopen(base + name, timeout=5).read()
            last = None
            with av.open(io.BytesIO(data), format="mpegts") as c:
                for packet in c.demux(video=0):
                    try:
                        for frame in packet.decode():
                            last = frame
                    except av.error.InvalidDataError:
                        pass  # before the segment's first decodable picture
            if last is not None:
                reading = jpeg_strip.read_strip_gray(last.to_ndarray(format="gray"),
                                                     listed + 1_000_000)
                if reading is not None:
                    ages.append((listed - reading[0]) / 1000.0)
                    durations.append(dur)
        first = False
        time.sleep(0.1)
    mean_dur = statistics.mean(durations) if durations else 0
    return {"segments": len(ages), "segment_s": round(mean_dur, 2),
            "newest_listed_age_ms": summary(ages),
            "player_3_back_s": round((statistics.median(ages) / 1000.0 + 2 * mean_dur), 2)
            if ages else None}


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    try:
        if mode == "whep":
            out = asyncio.run(whep(args[0], float(args[1])))
        elif mode in ("janus", "janus-silent"):
            out = asyncio.run(janus(args[0], int(args[1]), int(args[2]), float(args[3]),
                                    decode=(mode == "janus")))
        elif mode == "wsh264":
            out = wsh264(args[0], int(args[1]), float(args[2]))
        elif mode == "rtsp":
            out = rtsp(args[0], float(args[1]))
        elif mode == "hls":
            out = hls(args[0], float(args[1]))
        else:
            raise SystemExit(f"unknown mode {mode}")
    except Exception as e:  # the driver prints it in the table
        out = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
