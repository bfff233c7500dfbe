// The H.264 view: /ws/h264 (one access unit per message, docs/websocket.md)
// decoded by WebCodecs' VideoDecoder and drawn on a canvas, newest frame
// only. The screen meter reads the strip back from that canvas, as for the
// JPEG WebSocket view. Which chunks are decoded is FF.h264.DecodeGate's
// rule: never a delta after a gap, an error or a reset; then ask for a key.
(function (root) {
  "use strict";
  var H = root.FF.h264;

  function H264View(canvas, authed, say) {
    this.kind = "h264";
    this.canvas = canvas; this.authed = authed; this.say = say;
    this.ctx = canvas.getContext("2d", { willReadFrequently: true, alpha: false });
    this.backoff = new root.FF.Backoff();
    this.ws = null; this.running = false;
    this.decoder = null; this.codec = null; this.warm = false;
    this.gate = new H.DecodeGate();
    this.ready = null;    // the newest decoded VideoFrame, not yet drawn
    this.header = null;   // {captureUs} of the frame on the canvas
    this.received = 0; this.dropped = 0; this.drawn = 0; this.bytes = 0;
    this.lastMessageAt = 0; this.stalled = false; this.error = "";
  }
  H264View.prototype.start = function () { this.running = true; this.canvas.hidden = false; this.connect(); };
  H264View.prototype.connect = function () {
    this.backoff.cancel();
    var self = this;
    this.say("connecting…", false);
    var ws = new WebSocket(root.FF.wsUrl(this.authed("ws/h264")));
    ws.binaryType = "arraybuffer";
    this.gate.restart();
    var opened = false;
    ws.onopen = function () { opened = true; self.backoff.reset(); };
    ws.onmessage = function (event) {
      if (ws !== self.ws || !(event.data instanceof ArrayBuffer)) return;
      self.received++;
      self.bytes += event.data.byteLength;
      self.lastMessageAt = Date.now();
      self.onAccessUnit(event.data);
    };
    ws.onclose = function () {
      if (ws !== self.ws) return;
      self.ws = null;
      if (!self.running) return;
      self.backoff.schedule(function () { self.connect(); }, self.say);
      // A WebSocket that never opened hides the HTTP status: ask for it,
      // since a server without H.264 answers 404 (and a live one 426).
      if (!opened) self.probe();
    };
    this.ws = ws;
  };
  H264View.prototype.probe = function () {
    var self = this;
    fetch(this.authed("ws/h264"), { cache: "no-store" }).then(function (r) {
      if (r.status !== 404 || !self.running) return;
      return r.text().then(function (body) {
        var reason = "the server has no H.264";
        try { reason = JSON.parse(body).error || reason; } catch (e) { /* not JSON */ }
        if (self.onUnavailable) { self.backoff.cancel(); self.onUnavailable(reason); }
      });
    }).catch(function () { /* the server is down: the backoff retries */ });
  };
  H264View.prototype.askKey = function () {
    if (this.ws && this.ws.readyState === 1) this.ws.send("key");
  };
  H264View.prototype.onAccessUnit = function (data) {
    var header = H.parseHeader(data);
    if (!header) { this.say("bad message from the server", true); return; }
    var now = performance.now();
    var verdict = this.gate.offer(header, now);
    if (verdict.askKey) this.askKey();
    if (!verdict.decode) return;
    var bytes = new Uint8Array(data, header.length);
    if (header.key && !this.configure(bytes)) return;
    if (!this.decoder) return;
    try {
      this.decoder.decode(new root.EncodedVideoChunk({
        type: header.key ? "key" : "delta", timestamp: header.captureUs, data: bytes
      }));
    } catch (e) {
      this.lost("decode: " + e.message);
      return;
    }
    // The decoder falls behind (a slow machine, a big keyframe): drop its
    // queue rather than show ever older pictures.
    if (this.decoder && this.gate.behind(this.decoder.decodeQueueSize, !this.warm)) {
      this.dropped += this.decoder.decodeQueueSize;
      try { this.decoder.reset(); } catch (e) { this.decoder = null; }
      if (this.gate.lost(now).askKey) this.askKey();
    }
  };
  // A keyframe: (re)configure when there is no usable decoder or the SPS
  // names another codec. false if this browser cannot decode it.
  H264View.prototype.configure = function (bytes) {
    var codec = H.codecFromAnnexB(bytes) || "avc1.4D401F";
    if (this.decoder && this.decoder.state === "configured" && codec === this.codec) return true;
    var self = this;
    if (!this.decoder || this.decoder.state === "closed") {
      this.decoder = new root.VideoDecoder({
        output: function (frame) { self.output(frame); },
        error: function (e) { self.lost(e && e.message ? e.message : String(e)); }
      });
    }
    try {
      this.decoder.configure({ codec: codec, optimizeForLatency: true, hardwareAcceleration: "no-preference" });
    } catch (e) {
      this.error = codec + ": " + e.message;
      this.say("cannot decode " + codec + " here", true);
      this.decoder = null;
      return false;
    }
    this.codec = codec;
    this.warm = false;  // until its first frame out
    return true;
  };
  // The decoder failed (it is closed now) or refused a chunk.
  H264View.prototype.lost = function (why) {
    this.error = why;
    if (this.decoder && this.decoder.state !== "closed") { try { this.decoder.reset(); } catch (e) { /* closed */ } }
    if (this.decoder && this.decoder.state === "closed") this.decoder = null;
    if (this.gate.lost(performance.now()).askKey) this.askKey();
  };
  H264View.prototype.output = function (frame) {
    if (!this.running) { frame.close(); return; }
    this.warm = true;
    if (this.ready) { this.ready.close(); this.dropped++; }
    this.ready = frame;
  };
  // Draws the newest decoded frame; true if the canvas changed.
  H264View.prototype.present = function () {
    if (!this.ready || !this.running) return false;
    var frame = this.ready;
    this.ready = null;
    var w = frame.displayWidth, h = frame.displayHeight;
    if (this.canvas.width !== w || this.canvas.height !== h) { this.canvas.width = w; this.canvas.height = h; }
    this.ctx.drawImage(frame, 0, 0);
    this.header = { captureUs: frame.timestamp };
    frame.close();
    this.drawn++;
    if (this.drawn === 1 || this.stalled) { this.stalled = false; this.say("live", false); }
    return true;
  };
  H264View.prototype.shown = function () {
    return this.running && this.header ? { el: this.canvas, width: this.canvas.width, height: this.canvas.height, ctx: this.ctx } : null;
  };
  H264View.prototype.stop = function () {
    this.running = false; this.backoff.cancel();
    if (this.ws) { var ws = this.ws; this.ws = null; ws.close(); }
    if (this.ready) { this.ready.close(); this.ready = null; }
    if (this.decoder && this.decoder.state !== "closed") this.decoder.close();
    this.decoder = null; this.codec = null;
    this.header = null; this.drawn = 0;
    this.canvas.hidden = true;
  };
  H264View.prototype.recovered = function () { if (this.running && !this.ws) this.connect(); };
  H264View.prototype.onStats = function () {
    if (this.running && this.ws && this.drawn > 0 && Date.now() - this.lastMessageAt > 3000 && !this.stalled) {
      this.stalled = true; this.say("no frames for " + ((Date.now() - this.lastMessageAt) / 1000).toFixed(0) + " s", false);
    }
  };
  H264View.prototype.describe = function () {
    var g = this.gate;
    return "H.264: " + this.received + " received, " + g.dropped + " skipped to a keyframe, " +
      this.dropped + " not shown, " + g.keysAsked + " key requests (" + g.gaps + " gaps, " +
      g.resets + " decoder resets)" +
      (this.codec ? ", " + this.codec : "") + (this.error ? ", last error: " + this.error : "");
  };

  root.FF.H264View = H264View;
})(typeof window !== "undefined" ? window : globalThis);
