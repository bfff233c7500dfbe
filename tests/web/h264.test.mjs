// Unit tests of the page's H.264 parts (web/h264.js, web/h264_view.js):
// the /ws/h264 header, the WebCodecs codec string from an SPS, which chunks
// are decoded (never a delta after a gap, an error or a reset), the H.264
// view driving a fake VideoDecoder and WebSocket, which view a browser gets
// by default and why, and the bitrate. Run: node --test tests/web/
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import vm from "node:vm";
import { fileURLToPath } from "node:url";

const web = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "web");
function load(globals, ...names) {
  const context = vm.createContext({ DataView, Uint8Array, Number, ...globals });
  for (const name of names) vm.runInContext(fs.readFileSync(path.join(web, name), "utf8"), context, { filename: name });
  return context.FF;
}
const NOW = 22563594123;

// An FFH4 message: 32-byte header, then `payload`.
function message({ sequence = 1, captureUs = NOW, width = 640, height = 480, key = false, length = 32, payload = [0, 0, 0, 1, 0x41, 0x9a] } = {}) {
  const buf = new ArrayBuffer(length + payload.length), v = new DataView(buf);
  new Uint8Array(buf).set([0x46, 0x46, 0x48, 0x34]);
  v.setUint16(4, 1, true); v.setUint16(6, length, true);
  v.setBigUint64(8, BigInt(sequence), true); v.setBigUint64(16, BigInt(captureUs), true);
  v.setUint16(24, width, true); v.setUint16(26, height, true);
  v.setUint8(28, key ? 1 : 0);
  new Uint8Array(buf, length).set(payload);
  return buf;
}
// An IDR access unit as x264 writes it: AUD, SPS (Main, level 3.1), PPS, IDR slice.
const SPS_MAIN_31 = [0x67, 0x4d, 0x40, 0x1f, 0xe8, 0x80, 0x28, 0x02, 0xdd, 0x80];
const IDR_AU = [0, 0, 0, 1, 0x09, 0x10, 0, 0, 0, 1, ...SPS_MAIN_31, 0, 0, 0, 1, 0x68, 0xeb, 0xe3, 0xcb, 0, 0, 1, 0x65, 0x88, 0x84];

test("the FFH4 header is parsed as docs/websocket.md lays it out", () => {
  const { h264 } = load({}, "h264.js");
  const h = h264.parseHeader(message({ sequence: 77, key: true }));
  assert.deepEqual({ ...h }, { version: 1, length: 32, sequence: 77, captureUs: NOW, width: 640, height: 480, key: true });
  assert.equal(h264.parseHeader(message({ key: false })).key, false);
  // A longer header (a later version's fields): the payload starts at its length.
  const longer = message({ length: 40, payload: [1, 2, 3] });
  assert.equal(h264.parseHeader(longer).length, 40);
  assert.deepEqual([...new Uint8Array(longer, 40)], [1, 2, 3]);
  assert.equal(h264.parseHeader(new ArrayBuffer(31)), null, "short");
  const bad = message();
  new DataView(bad).setUint16(6, 200, true);
  assert.equal(h264.parseHeader(bad), null, "header longer than the message");
  new DataView(bad).setUint16(6, 16, true);
  assert.equal(h264.parseHeader(bad), null, "header shorter than 32");
  const ws = message();
  new Uint8Array(ws)[3] = 0x53;  // "FFWS": a JPEG message is not an H.264 one
  assert.equal(h264.parseHeader(ws), null);
});

test("codec string from the SPS: profile, constraint flags, level", () => {
  const { h264 } = load({}, "h264.js");
  assert.equal(h264.codecFromAnnexB(new Uint8Array(IDR_AU)), "avc1.4D401F");
  // Constrained baseline 3.0 behind a 3-byte start code, no AUD.
  assert.equal(h264.codecFromAnnexB(new Uint8Array([0, 0, 1, 0x67, 0x42, 0xe0, 0x1e, 0xab, 0, 0, 1, 0x68, 0xce])), "avc1.42E01E");
  assert.equal(h264.codecFromAnnexB(new Uint8Array([0, 0, 0, 1, 0x27, 0x64, 0x00, 0x28, 0xac])), "avc1.640028", "nal_ref_idc 1");
  assert.equal(h264.codecFromAnnexB(new Uint8Array([0, 0, 0, 1, 0x41, 0x9a, 0x02])), null, "a P slice has no SPS");
  assert.equal(h264.codecFromAnnexB(new Uint8Array([0, 0, 1, 0x67, 0x4d])), null, "truncated SPS");
  const units = h264.nalUnits(new Uint8Array(IDR_AU));
  assert.deepEqual([...units.map((u) => u.type)], [9, 7, 8, 5]);
  assert.equal(units[1].end - units[1].start, SPS_MAIN_31.length, "a 4-byte start code's zero is not part of the unit before");
});

test("decode gate: starts at a keyframe, skips deltas after a gap until the next keyframe, asks for one", () => {
  const { h264 } = load({}, "h264.js");
  const gate = new h264.DecodeGate({ keyEveryMs: 500 });
  const at = (sequence, key, ms) => ({ ...gate.offer({ sequence, key }, ms) });
  assert.deepEqual(at(5, false, 0), { decode: false, askKey: true }, "a delta first: nothing to decode it against");
  assert.deepEqual(at(6, true, 10), { decode: true, askKey: false });
  assert.deepEqual(at(7, false, 40), { decode: true, askKey: false });
  assert.deepEqual(at(8, false, 70), { decode: true, askKey: false });
  // Sequence 9 and 10 never came: the server skipped us, deltas are useless.
  assert.deepEqual(at(11, false, 600), { decode: false, askKey: true });
  assert.deepEqual(at(12, false, 630), { decode: false, askKey: false }, "key requests are rate-limited");
  assert.deepEqual(at(13, false, 1100), { decode: false, askKey: true });
  assert.deepEqual(at(14, true, 1130), { decode: true, askKey: false });
  assert.deepEqual(at(15, false, 1160), { decode: true, askKey: false });
  assert.equal(gate.gaps, 1);
  assert.equal(gate.dropped, 4);
  assert.equal(gate.keysAsked, 3);
  // A gap that lands on a keyframe (what the server sends after a skip) loses nothing.
  assert.deepEqual(at(20, true, 1200), { decode: true, askKey: false });
  assert.deepEqual(at(21, false, 1230), { decode: true, askKey: false });
});

test("decode gate: a reset or decoder error drops deltas until a keyframe; a reconnect starts over", () => {
  const { h264 } = load({}, "h264.js");
  const gate = new h264.DecodeGate({ maxQueue: 3, keyEveryMs: 500 });
  gate.offer({ sequence: 1, key: true }, 0);
  assert.equal(gate.behind(3, false), false);
  assert.equal(gate.behind(4, false), true);
  assert.equal(gate.behind(30, true), false, "a decoder not warm yet may queue a second's worth");
  assert.equal(gate.behind(31, true), true);
  assert.deepEqual({ ...gate.lost(10) }, { askKey: true });
  assert.deepEqual({ ...gate.offer({ sequence: 2, key: false }, 20) }, { decode: false, askKey: false }, "asked 10 ms ago");
  assert.deepEqual({ ...gate.lost(30) }, { askKey: false });
  assert.equal(gate.offer({ sequence: 3, key: true }, 40).decode, true);
  assert.equal(gate.resets, 2);
  gate.offer({ sequence: 4, key: false }, 50);
  gate.restart();
  assert.equal(gate.offer({ sequence: 1, key: false }, 600).decode, false, "a new connection needs its keyframe");
  assert.equal(gate.gaps, 0, "a new connection's sequence is no gap");
});

// Fakes: a WebSocket the test feeds, a VideoDecoder that queues chunks and
// outputs frames when told, a canvas that records what it draws.
function fakes() {
  const log = { sockets: [], decoders: [], drawn: [], closedFrames: 0 };
  class FakeSocket {
    constructor(url) { this.url = url; this.sent = []; this.readyState = 1; log.sockets.push(this); }
    send(text) { this.sent.push(text); }
    close() { this.readyState = 3; }
  }
  class FakeDecoder {
    constructor(init) { this.init = init; this.state = "unconfigured"; this.queue = []; this.configs = []; log.decoders.push(this); }
    configure(config) { this.configs.push(config); this.state = "configured"; }
    get decodeQueueSize() { return this.queue.length; }
    decode(chunk) {
      if (this.state !== "configured") throw new Error("InvalidStateError: not configured");
      this.queue.push(chunk);
    }
    // Outputs every queued chunk as a frame.
    flushOut() {
      for (const chunk of this.queue.splice(0)) {
        this.init.output({ timestamp: chunk.timestamp, displayWidth: 640, displayHeight: 480, close() { log.closedFrames++; } });
      }
    }
    reset() { this.queue = []; this.state = "unconfigured"; }
    close() { this.state = "closed"; }
    fail() { this.state = "closed"; this.init.error(new Error("EncodingError: decoding failed")); }
  }
  class FakeChunk { constructor(init) { Object.assign(this, init); } }
  const ctx = { drawImage(frame) { log.drawn.push(frame.timestamp); } };
  const canvas = { hidden: true, width: 0, height: 0, getContext: () => ctx };
  let now = 0;
  const globals = {
    WebSocket: FakeSocket, VideoDecoder: FakeDecoder, EncodedVideoChunk: FakeChunk, URL, Blob, ArrayBuffer,
    location: { href: "http://127.0.0.1:8080/" }, performance: { now: () => now },
    setTimeout, clearTimeout, Math, Date
  };
  return { log, canvas, globals, advance: (ms) => { now += ms; } };
}

test("H.264 view: configures on the first keyframe from its SPS, decodes, paints only the newest frame", () => {
  const f = fakes();
  const FF = load(f.globals, "view.js", "h264.js", "h264_view.js");
  const states = [];
  const view = new FF.H264View(f.canvas, (u) => u + "?token=t", (text) => states.push(text));
  view.start();
  const ws = f.log.sockets[0];
  assert.equal(ws.url, "ws://127.0.0.1:8080/ws/h264?token=t");
  assert.equal(ws.binaryType, "arraybuffer");
  const deliver = (m) => ws.onmessage({ data: m });
  deliver(message({ sequence: 3, key: false }));
  assert.equal(f.log.decoders.length, 0, "no decoder before a keyframe");
  assert.deepEqual(ws.sent, ["key"], "a delta first: ask for a keyframe");
  deliver(message({ sequence: 4, key: true, captureUs: NOW, payload: IDR_AU }));
  const decoder = f.log.decoders[0];
  assert.deepEqual({ ...decoder.configs[0] }, { codec: "avc1.4D401F", optimizeForLatency: true, hardwareAcceleration: "no-preference" });
  assert.equal(decoder.queue[0].type, "key");
  assert.equal(decoder.queue[0].timestamp, NOW, "the chunk's timestamp is the capture stamp");
  assert.deepEqual([...decoder.queue[0].data], IDR_AU, "the payload from the header's length on");
  deliver(message({ sequence: 5, key: false, captureUs: NOW + 33333 }));
  assert.equal(decoder.queue[1].type, "delta");
  decoder.flushOut();
  assert.equal(view.present(), true);
  assert.deepEqual(f.log.drawn, [NOW + 33333], "only the newest of two decoded frames is painted");
  assert.equal(f.log.closedFrames, 2, "both frames are closed");
  assert.equal(view.present(), false, "nothing new");
  assert.deepEqual([f.canvas.width, f.canvas.height], [640, 480]);
  assert.equal(view.shown().ctx.drawImage !== undefined, true);
  assert.ok(states.includes("live"));
  assert.equal(view.bytes, 3 * 32 + 6 + 6 + IDR_AU.length);
  view.stop();
  assert.equal(decoder.state, "closed");
  assert.equal(ws.readyState, 3);
});

test("H.264 view: a decoder that falls behind is reset, deltas wait for the keyframe it asks for", () => {
  const f = fakes();
  const FF = load(f.globals, "view.js", "h264.js", "h264_view.js");
  const view = new FF.H264View(f.canvas, (u) => u, () => {});
  view.start();
  const ws = f.log.sockets[0], deliver = (m) => ws.onmessage({ data: m });
  deliver(message({ sequence: 1, key: true, payload: IDR_AU }));
  const decoder = f.log.decoders[0];
  // Its first configure is slow: 10 chunks wait, and no reset.
  for (let s = 2; s <= 10; s++) deliver(message({ sequence: s }));
  assert.equal(decoder.queue.length, 10);
  assert.equal(decoder.state, "configured");
  decoder.flushOut();
  // Warm now: more than 3 queued is falling behind.
  for (let s = 11; s <= 14; s++) deliver(message({ sequence: s }));
  assert.equal(decoder.state, "unconfigured", "4 queued, none out: reset");
  assert.equal(decoder.queue.length, 0);
  assert.equal(view.dropped, 9 + 4, "9 frames replaced by a newer one before a paint, 4 queued chunks dropped");
  assert.deepEqual(ws.sent, ["key"]);
  deliver(message({ sequence: 15 }));
  assert.equal(decoder.queue.length, 0, "a delta after a reset is not decoded");
  f.advance(1000);
  deliver(message({ sequence: 16, key: true, payload: IDR_AU }));
  assert.equal(decoder.state, "configured", "configured again on the keyframe");
  assert.equal(decoder.configs.length, 2);
  deliver(message({ sequence: 17 }));
  assert.deepEqual(decoder.queue.map((c) => c.type), ["key", "delta"]);
  // A decoding error closes the decoder: a new one on the next keyframe.
  f.advance(1000);
  decoder.fail();
  assert.deepEqual(ws.sent, ["key", "key"]);
  deliver(message({ sequence: 18 }));
  assert.equal(f.log.decoders.length, 1, "no new decoder for a delta");
  deliver(message({ sequence: 19, key: true, payload: IDR_AU }));
  assert.equal(f.log.decoders.length, 2);
  assert.equal(f.log.decoders[1].queue[0].type, "key");
  assert.match(view.describe(), /H\.264: 19 received, 2 skipped to a keyframe, 13 not shown, 2 key requests \(0 gaps, 2 decoder resets\)/);
});

test("view choice: WebCodecs where it exists (secure context), else WebRTC, else MJPEG, saying why", () => {
  const { h264 } = load({}, "h264.js");
  const choose = (env) => ({ ...h264.chooseView(env) });
  const chromeLocal = { secure: true, webCodecs: true, webRtc: true };
  const chromeLan = { secure: false, webCodecs: false, webRtc: true };  // VideoDecoder hidden on plain HTTP
  assert.deepEqual(choose(chromeLocal), { kind: "h264", why: "" });
  assert.deepEqual(choose(chromeLan), { kind: "webrtc", why: "WebCodecs needs HTTPS or localhost: showing WebRTC" });
  assert.deepEqual(choose({ secure: true, webCodecs: false, webRtc: true }),
    { kind: "webrtc", why: "this browser has no WebCodecs: showing WebRTC" });
  assert.deepEqual(choose({ secure: false, webCodecs: false, webRtc: false }),
    { kind: "mjpeg", why: "WebCodecs needs HTTPS or localhost and this browser has no WebRTC: showing MJPEG" });
  // A user's choice is kept when the browser can show it...
  for (const kind of ["mjpeg", "ws", "h264", "webrtc"]) assert.deepEqual(choose({ ...chromeLocal, chosen: kind }), { kind, why: "" });
  assert.deepEqual(choose({ ...chromeLan, chosen: "ws" }), { kind: "ws", why: "" });
  // ...and replaced, with the reason, when it cannot.
  assert.deepEqual(choose({ ...chromeLan, chosen: "h264" }), { kind: "webrtc", why: "WebCodecs needs HTTPS or localhost: showing WebRTC" });
  assert.deepEqual(choose({ secure: true, webCodecs: true, webRtc: false, chosen: "webrtc" }),
    { kind: "h264", why: "this browser has no WebRTC: showing H.264 (WebCodecs)" });
  assert.deepEqual(choose({ ...chromeLocal, chosen: "nonsense" }), { kind: "h264", why: "" }, "an unknown ?view= is no choice");
  // A server without an endpoint (it answered 404): the next best, with its reason.
  const noRtc = { webrtc: "WebRTC is not available on this server" };
  assert.deepEqual(choose({ ...chromeLan, serverLacks: noRtc }),
    { kind: "mjpeg", why: "WebCodecs needs HTTPS or localhost and WebRTC is not available on this server: showing MJPEG" });
  assert.deepEqual(choose({ ...chromeLan, serverLacks: noRtc, chosen: "webrtc" }),
    { kind: "mjpeg", why: "WebRTC is not available on this server: showing MJPEG" });
  assert.deepEqual(choose({ ...chromeLocal, serverLacks: { h264: "no H.264 here" } }),
    { kind: "webrtc", why: "no H.264 here: showing WebRTC" });
  assert.deepEqual(choose({ ...chromeLocal, serverLacks: { h264: "no H.264 here" }, chosen: "ws" }), { kind: "ws", why: "" });
  assert.deepEqual({ ...h264.unavailable(chromeLan) }, { mjpeg: "", ws: "", h264: "WebCodecs needs HTTPS or localhost", webrtc: "" });
  assert.deepEqual({ ...h264.unavailable(chromeLocal) }, { mjpeg: "", ws: "", h264: "", webrtc: "" });
});

test("bitrate: kbit/s over the last 2 s of byte counts, a restarted counter starts over", () => {
  const { h264 } = load({}, "h264.js");
  const b = new h264.Bitrate(2000);
  assert.equal(b.kbps(), null);
  b.add(0, 0);
  assert.equal(b.kbps(), null, "one sample");
  b.add(100, 1000);
  assert.equal(b.kbps(), null, "too short a span");
  for (let t = 500; t <= 5000; t += 500) b.add(t, t * 125);  // 125 bytes/ms = 1000 kbit/s
  assert.equal(b.kbps(), 1000);
  for (let t = 5500; t <= 8000; t += 500) b.add(t, 625000 + (t - 5000) * 12.5);  // then 100 kbit/s
  assert.equal(b.kbps(), 100, "only the last 2 s count");
  b.add(8500, 10);  // a new connection's counter
  assert.equal(b.kbps(), null);
  b.add(9000, 6260);
  assert.equal(b.kbps(), 100);
  b.add(9500, undefined);
  assert.equal(b.kbps(), 100, "a missing count changes nothing");
  assert.equal(h264.formatKbps(849.6), "850 kbit/s");
  assert.equal(h264.formatKbps(1834.2), "1834 kbit/s", "no exponent between 1000 and 10000");
  assert.equal(h264.formatKbps(13763.4), "13763 kbit/s");
  assert.equal(h264.formatKbps(2.54), "2.5 kbit/s");
});

// A fake RTCPeerConnection and fetch: the WHEP exchange as the view runs it.
function rtcFakes(answer) {
  const log = { pcs: [], fetches: [] };
  class FakePc extends EventTarget {
    constructor(config) { super(); this.config = config; this.transceivers = []; this.iceGatheringState = "new"; this.connectionState = "new"; this.closed = false; log.pcs.push(this); }
    addTransceiver(kind, init) { this.transceivers.push([kind, init.direction]); }
    async createOffer() { return { type: "offer", sdp: "v=0 offer" }; }
    async setLocalDescription(d) {
      this.localDescription = d;
      setTimeout(() => { this.iceGatheringState = "complete"; this.localDescription = { type: "offer", sdp: "v=0 offer with candidates" }; this.dispatchEvent(new Event("icegatheringstatechange")); }, 5);
    }
    async setRemoteDescription(d) { this.remoteDescription = d; }
    close() { this.closed = true; }
  }
  const fetch = async (url, init) => {
    log.fetches.push({ url, method: init.method, type: init.headers && init.headers["Content-Type"], body: init.body, keepalive: init.keepalive });
    if (init.method === "POST") return answer();
    return { status: 200, text: async () => "", headers: { get: () => null } };
  };
  const video = { hidden: true, muted: false, addEventListener() {}, play: () => Promise.resolve() };
  const globals = { RTCPeerConnection: FakePc, fetch, URL, location: { href: "http://10.0.0.1:8080/streams/cam/" },
    setTimeout, clearTimeout, Math, Date, Promise, Event, EventTarget };
  return { log, video, globals };
}
const settle = () => new Promise((r) => setTimeout(r, 30));

test("WebRTC view: recvonly offer after ICE gathering, POSTed to whep with the token, answer applied, DELETE on stop", async () => {
  const f = rtcFakes(() => ({ status: 201, text: async () => "v=0 answer", headers: { get: (h) => (h === "Location" ? "/streams/cam/whep/abc123" : null) } }));
  const FF = load(f.globals, "view.js", "webrtc_view.js");
  const states = [];
  const view = new FF.WebRtcView(f.video, (u) => u + (u.includes("?") ? "&" : "?") + "token=t", (s) => states.push(s));
  assert.equal(f.video.muted, true, "muted: autoplay without a click");
  view.start();
  await settle();
  const pc = f.log.pcs[0];
  assert.deepEqual(pc.transceivers, [["video", "recvonly"]]);
  assert.deepEqual(f.log.fetches[0], { url: "http://10.0.0.1:8080/streams/cam/whep?token=t", method: "POST",
    type: "application/sdp", body: "v=0 offer with candidates", keepalive: undefined }, "the offer with its candidates (non-trickle)");
  assert.deepEqual({ ...pc.remoteDescription }, { type: "answer", sdp: "v=0 answer" });
  view.stop();
  assert.equal(pc.closed, true);
  assert.deepEqual(f.log.fetches[1], { url: "http://10.0.0.1:8080/streams/cam/whep/abc123?token=t", method: "DELETE",
    type: undefined, body: undefined, keepalive: true });
  assert.equal(f.log.fetches.length, 2);
});

test("WebRTC view: a refused offer says why and retries later, without a session to DELETE", async () => {
  const f = rtcFakes(() => ({ status: 503, text: async () => "too many WebRTC peers (8)\n", headers: { get: () => null } }));
  const FF = load(f.globals, "view.js", "webrtc_view.js");
  const states = [];
  const view = new FF.WebRtcView(f.video, (u) => u, (s, bad) => states.push([s, bad]));
  view.start();
  await settle();
  assert.equal(f.log.pcs[0].closed, true);
  assert.match(states[states.length - 1][0], /^whep: HTTP 503 too many WebRTC peers \(8\); stream lost, retrying in \d\.\d s$/);
  assert.ok(view.backoff.timer, "a retry is scheduled");
  view.stop();
  assert.equal(view.backoff.timer, null);
  assert.deepEqual(f.log.fetches.map((x) => x.method), ["POST"]);
});

test("WebRTC view: a server without WHEP (404) is reported as unavailable, not retried", async () => {
  const f = rtcFakes(() => ({ status: 404, text: async () => '{"error":"WebRTC is not available on this server"}', headers: { get: () => null } }));
  const FF = load(f.globals, "view.js", "webrtc_view.js");
  const view = new FF.WebRtcView(f.video, (u) => u, () => {});
  const reasons = [];
  view.onUnavailable = (r) => reasons.push(r);
  view.start();
  await settle();
  assert.deepEqual(reasons, ["WebRTC is not available on this server"]);
  assert.equal(view.backoff.timer, null, "no retry");
  assert.equal(f.log.pcs[0].closed, true);
});

test("H.264 view: a socket that never opens is probed; a 404 reports the view unavailable, anything else retries", async () => {
  for (const [status, expect] of [[404, ["no H.264 in this build"]], [426, []]]) {
    const f = fakes();
    f.globals.fetch = async (url) => ({ status, text: async () => '{"error":"no H.264 in this build"}', url });
    const FF = load(f.globals, "view.js", "h264.js", "h264_view.js");
    const view = new FF.H264View(f.canvas, (u) => u, () => {});
    const reasons = [];
    view.onUnavailable = (r) => reasons.push(r);
    view.start();
    f.log.sockets[0].onclose({});
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(reasons, expect, `HTTP ${status}`);
    assert.equal(!!view.backoff.timer, status !== 404, "a retry unless the server has no H.264");
    view.stop();
  }
});
