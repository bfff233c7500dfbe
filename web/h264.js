// The pure parts of the page's H.264 and WebRTC views: the /ws/h264 header
// (docs/websocket.md), the WebCodecs codec string from an SPS, the rule for
// which chunks to decode (never a delta after a gap or a decoder reset),
// which view to show by default, and a bitrate over the last second or two.
// No DOM here: node's test runner checks them (tests/web/h264.test.mjs).
(function (root) {
  "use strict";

  // The FFH4 header: magic, version, header length, sequence, capture stamp,
  // size, flags (little-endian). null if it is not one.
  function parseHeader(data) {
    if (!data || data.byteLength < 32) return null;
    var v = new DataView(data);
    if (v.getUint32(0, false) !== 0x46464834) return null;  // "FFH4"
    var length = v.getUint16(6, true);
    if (length < 32 || length > data.byteLength) return null;
    return {
      version: v.getUint16(4, true),
      length: length,
      sequence: Number(v.getBigUint64(8, true)),
      captureUs: Number(v.getBigUint64(16, true)),
      width: v.getUint16(24, true), height: v.getUint16(26, true),
      key: (v.getUint8(28) & 1) === 1
    };
  }

  // The NAL units of an Annex B access unit: [{type, start, end}] where
  // start is the NAL header byte (after the 00 00 01 start code).
  function nalUnits(bytes) {
    var units = [], n = bytes.length, i = 0, start = -1;
    while (i + 2 < n) {
      if (bytes[i] === 0 && bytes[i + 1] === 0 && bytes[i + 2] === 1) {
        if (start >= 0) units.push(nal(bytes, start, i));
        start = i + 3; i += 3;
      } else {
        i++;
      }
    }
    if (start >= 0 && start < n) units.push(nal(bytes, start, n));
    return units;
  }
  function nal(bytes, start, end) {
    // A 4-byte start code leaves its first zero at the end of the previous unit.
    while (end > start && bytes[end - 1] === 0) end--;
    return { type: bytes[start] & 0x1f, start: start, end: end };
  }

  function hex2(b) { return (b < 16 ? "0" : "") + b.toString(16).toUpperCase(); }

  // "avc1.PPCCLL" (RFC 6381) from the first SPS in an Annex B access unit:
  // profile_idc, the constraint flags and level_idc follow its NAL header.
  // null without an SPS.
  function codecFromAnnexB(bytes) {
    var units = nalUnits(bytes);
    for (var i = 0; i < units.length; i++) {
      var u = units[i];
      if (u.type === 7 && u.end - u.start >= 4) {
        return "avc1." + hex2(bytes[u.start + 1]) + hex2(bytes[u.start + 2]) + hex2(bytes[u.start + 3]);
      }
    }
    return null;
  }

  // Which chunks go to the decoder. A delta is decodable only if every
  // chunk since the last keyframe was decoded: after a gap in the sequence
  // (the server skipped this client to a keyframe), a decoder error, or a
  // reset because the decoder fell behind, deltas are dropped until the next
  // keyframe, and a key request goes to the server (at most one per
  // `keyEveryMs`; the server rate-limits too).
  //   offer(header, nowMs) -> {decode: bool, askKey: bool}
  //   lost(nowMs) -> {askKey}: the decoder failed or was reset
  //   behind(queueSize, warming) -> true when the decoder's queue says
  //     "reset now"; `warming` (no frame out since configure) allows more,
  //     since a decoder's first configure can take a few frames' time
  function DecodeGate(options) {
    options = options || {};
    this.maxQueue = options.maxQueue || 3;
    this.maxQueueWarming = options.maxQueueWarming || 30;
    this.keyEveryMs = options.keyEveryMs || 500;
    this.needKey = true;
    this.lastSequence = null;
    this.lastAskMs = -Infinity;
    this.decoded = 0; this.dropped = 0; this.gaps = 0; this.resets = 0; this.keysAsked = 0;
  }
  DecodeGate.prototype.ask = function (nowMs) {
    if (nowMs - this.lastAskMs < this.keyEveryMs) return false;
    this.lastAskMs = nowMs;
    this.keysAsked++;
    return true;
  };
  DecodeGate.prototype.offer = function (header, nowMs) {
    if (this.lastSequence !== null && header.sequence !== this.lastSequence + 1) {
      this.gaps++;
      this.needKey = true;
    }
    this.lastSequence = header.sequence;
    if (header.key) {
      this.needKey = false;
      this.decoded++;
      return { decode: true, askKey: false };
    }
    if (this.needKey) {
      this.dropped++;
      return { decode: false, askKey: this.ask(nowMs) };
    }
    this.decoded++;
    return { decode: true, askKey: false };
  };
  DecodeGate.prototype.lost = function (nowMs) {
    this.needKey = true;
    this.resets++;
    return { askKey: this.ask(nowMs) };
  };
  DecodeGate.prototype.behind = function (queueSize, warming) {
    return queueSize > (warming ? this.maxQueueWarming : this.maxQueue);
  };
  // A new connection: its first message is a keyframe, whatever came before.
  DecodeGate.prototype.restart = function () { this.needKey = true; this.lastSequence = null; };

  // The view shown when the user has not chosen one, or the one chosen when
  // it cannot be shown, and why. env: {secure, webCodecs, webRtc, chosen,
  // serverLacks: {h264, webrtc}: the server's reason, once it refused}.
  // Returns {kind, why} (why is "" when nothing needs saying).
  var NAMES = { mjpeg: "MJPEG", ws: "JPEG over WebSocket", h264: "H.264 (WebCodecs)", webrtc: "WebRTC" };
  function unavailable(env) {
    var lacks = env.serverLacks || {};
    // A browser hides VideoDecoder outside a secure context: there, the
    // context is the reason whether or not it has WebCodecs at all.
    var h264 = !env.secure ? "WebCodecs needs HTTPS or localhost"
      : !env.webCodecs ? "this browser has no WebCodecs" : lacks.h264 || "";
    var webrtc = !env.webRtc ? "this browser has no WebRTC" : lacks.webrtc || "";
    return { mjpeg: "", ws: "", h264: h264, webrtc: webrtc };
  }
  function chooseView(env) {
    var not = unavailable(env), chosen = env.chosen;
    if (chosen && NAMES[chosen] && !not[chosen]) return { kind: chosen, why: "" };
    var order = ["h264", "webrtc", "mjpeg"].filter(function (k) { return k !== chosen && !not[k]; });
    var kind = order[0];
    var reasons = chosen && NAMES[chosen] ? [not[chosen]]
      : ["h264", "webrtc"].slice(0, ["h264", "webrtc", "mjpeg"].indexOf(kind)).map(function (k) { return not[k]; });
    return { kind: kind, why: reasons.length ? reasons.join(" and ") + ": showing " + NAMES[kind] : "" };
  }

  // Bytes received so far, sampled now and then: kbit/s over the samples of
  // the last `spanMs` (at least two, else null).
  function Bitrate(spanMs) { this.spanMs = spanMs || 2000; this.samples = []; }
  Bitrate.prototype.add = function (nowMs, totalBytes) {
    if (typeof totalBytes !== "number" || !isFinite(totalBytes)) return;
    var s = this.samples;
    if (s.length && totalBytes < s[s.length - 1].bytes) s.length = 0;  // a counter that restarted
    s.push({ t: nowMs, bytes: totalBytes });
    while (s.length > 2 && s[1].t <= nowMs - this.spanMs) s.shift();
  };
  Bitrate.prototype.kbps = function () {
    var s = this.samples;
    if (s.length < 2) return null;
    var first = s[0], last = s[s.length - 1];
    if (last.t - first.t < 250) return null;
    return (last.bytes - first.bytes) * 8 / (last.t - first.t);  // bytes/ms * 8 = kbit/s
  };
  Bitrate.prototype.clear = function () { this.samples = []; };
  // "850 kbit/s", "13763 kbit/s", "2.5 kbit/s": whole numbers from 100 up,
  // never an exponent.
  function formatKbps(kbps) { return (kbps >= 100 ? String(Math.round(kbps)) : kbps.toFixed(1)) + " kbit/s"; }

  root.FF = root.FF || {};
  root.FF.h264 = {
    parseHeader: parseHeader, nalUnits: nalUnits, codecFromAnnexB: codecFromAnnexB,
    DecodeGate: DecodeGate, chooseView: chooseView, unavailable: unavailable, viewNames: NAMES, Bitrate: Bitrate, formatKbps: formatKbps
  };
})(typeof window !== "undefined" ? window : globalThis);
