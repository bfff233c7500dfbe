// The live view: an MJPEG <img> or a WebSocket drawn on a canvas, each with
// reconnection, and the screen meter that reads the timecode strip from the
// pixels the page actually shows.
(function (root) {
  "use strict";
  var MAX_DELAY_MS = 10000;

  // Reconnection with exponential backoff and jitter, reset by a frame.
  function Backoff() { this.delay = 500; this.timer = null; }
  Backoff.prototype.schedule = function (fn, say) {
    if (this.timer) return;
    var wait = Math.round(this.delay * (0.8 + Math.random() * 0.4));
    say("stream lost, retrying in " + (wait / 1000).toFixed(1) + " s", true);
    var self = this;
    this.timer = setTimeout(function () { self.timer = null; fn(); }, wait);
    this.delay = Math.min(this.delay * 2, MAX_DELAY_MS);
  };
  Backoff.prototype.cancel = function () { if (this.timer) clearTimeout(this.timer); this.timer = null; };
  Backoff.prototype.reset = function () { this.delay = 500; };

  // ws:// or wss:// for a path relative to the page.
  function wsUrl(path) {
    var url = new URL(path, location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    return url.href;
  }

  // ---- MJPEG: <img src=stream.mjpg> ----
  // An <img> fires "load" once per MJPEG connection (at its first frame) and
  // nothing when the server closes it, so a stream that ended quietly, or
  // never sent a frame, is found in the server's clients list (onStats): it
  // must hold our cache-buster. Three misses in a row: reconnect.
  function MjpegView(img, authed, say) {
    this.kind = "mjpeg";
    this.img = img; this.authed = authed; this.say = say;
    this.backoff = new Backoff();
    this.buster = ""; this.openedAt = 0; this.loadedAt = 0; this.misses = 0; this.running = false;
    // Bytes of this stream so far: the server's count for this client when
    // /api/stats has one, else frames sent times a recent snapshot's size.
    this.bytes = 0; this.estimated = false; this.lastSent = null; this.frameBytes = 0; this.sizedAt = 0;
    var self = this;
    img.addEventListener("load", function () {
      if (!self.running) return;
      self.backoff.reset(); self.loadedAt = Date.now(); say("live", false);
    });
    img.addEventListener("error", function () {
      if (self.running) self.backoff.schedule(function () { self.connect(); }, say);
    });
  }
  MjpegView.prototype.start = function () { this.running = true; this.img.hidden = false; this.connect(); };
  MjpegView.prototype.connect = function () {
    this.backoff.cancel();
    this.loadedAt = 0; this.openedAt = Date.now(); this.misses = 0; this.lastSent = null;
    this.say("connecting…", false);
    this.buster = "t=" + Date.now();
    this.img.src = this.authed("stream.mjpg?parts=early&" + this.buster);
  };
  MjpegView.prototype.stop = function () {
    this.running = false; this.backoff.cancel();
    this.img.removeAttribute("src");  // ends the stream's connection
    this.img.hidden = true;
  };
  // After the server was unreachable: a restart ends the stream without an
  // error event, so reconnect unless it already came back by itself.
  MjpegView.prototype.recovered = function (downSince) {
    if (this.running && this.loadedAt < downSince) this.connect();
  };
  MjpegView.prototype.onStats = function (clients) {
    if (!this.running || !Array.isArray(clients)) return;
    var buster = this.buster;
    var mine = clients.filter(function (c) { return String((c && c.path) || "").indexOf(buster) >= 0; })[0];
    if (mine) this.countBytes(mine);
    if (this.backoff.timer || Date.now() - this.openedAt < 3000) return;
    this.misses = mine ? 0 : this.misses + 1;
    if (this.misses >= 3) { var self = this; this.backoff.schedule(function () { self.connect(); }, this.say); }
  };
  MjpegView.prototype.countBytes = function (client) {
    var exact = typeof client.bytes === "number" ? client.bytes : client.bytes_sent;
    if (typeof exact === "number") { this.bytes = exact; this.estimated = false; return; }
    this.estimated = true;
    var sent = typeof client.sent === "number" ? client.sent : 0;
    if (this.lastSent !== null && sent >= this.lastSent) this.bytes += (sent - this.lastSent) * this.frameBytes;
    this.lastSent = sent;
    if (Date.now() - this.sizedAt > 10000) {
      var self = this;
      this.sizedAt = Date.now();
      fetch(this.authed("snapshot.jpg"), { cache: "no-store" })
        .then(function (r) { return r.ok ? r.blob() : null; })
        .then(function (b) { if (b) self.frameBytes = b.size; }, function () { /* next time */ });
    }
  };
  MjpegView.prototype.describe = function () { return ""; };
  MjpegView.prototype.present = function () { return false; };  // the browser draws an <img> itself
  MjpegView.prototype.shown = function () {
    var img = this.img;
    return this.running && img.complete && img.naturalWidth > 0 ? { el: img, width: img.naturalWidth, height: img.naturalHeight } : null;
  };

  // ---- WebSocket: ws/stream, one message per frame (docs/websocket.md) ----
  // Newest-only on the browser side too: while one JPEG decodes, only the
  // newest message received meanwhile waits; older ones are dropped and
  // counted. A decoded frame is drawn at the next animation frame.
  function WsView(canvas, authed, say) {
    this.kind = "ws";
    this.canvas = canvas; this.authed = authed; this.say = say;
    this.ctx = canvas.getContext("2d", { willReadFrequently: true, alpha: false });
    this.backoff = new Backoff();
    this.ws = null; this.running = false;
    this.pending = null;   // newest message not yet decoding
    this.decoding = false;
    this.ready = null;     // decoded, not yet drawn: {bitmap, header}
    this.header = null;    // of the frame on the canvas
    this.received = 0; this.dropped = 0; this.drawn = 0; this.bytes = 0;
    this.lastMessageAt = 0;
  }
  WsView.prototype.start = function () { this.running = true; this.canvas.hidden = false; this.connect(); };
  WsView.prototype.connect = function () {
    this.backoff.cancel();
    var self = this;
    this.say("connecting…", false);
    var ws = new WebSocket(wsUrl(this.authed("ws/stream")));
    ws.binaryType = "arraybuffer";
    ws.onopen = function () { self.backoff.reset(); };
    ws.onmessage = function (event) {
      if (ws !== self.ws || !(event.data instanceof ArrayBuffer)) return;
      self.received++;
      self.bytes += event.data.byteLength;
      self.lastMessageAt = Date.now();
      if (self.pending) self.dropped++;
      self.pending = event.data;
      self.decodeNext();
    };
    ws.onclose = function () {
      if (ws !== self.ws) return;
      self.ws = null;
      if (self.running) self.backoff.schedule(function () { self.connect(); }, self.say);
    };
    this.ws = ws;
  };
  WsView.prototype.decodeNext = function () {
    if (this.decoding || !this.pending) return;
    var data = this.pending, self = this;
    this.pending = null;
    var header = parseHeader(data);
    if (!header) { this.say("bad message from the server", true); return; }
    this.decoding = true;
    createImageBitmap(new Blob([new Uint8Array(data, header.length)], { type: "image/jpeg" })).then(function (bitmap) {
      if (self.ready) { self.ready.bitmap.close(); self.dropped++; }
      self.ready = { bitmap: bitmap, header: header };
    }, function () { self.dropped++; }).then(function () {
      self.decoding = false;
      self.decodeNext();
    });
  };
  // Draws the newest decoded frame; true if the canvas changed.
  WsView.prototype.present = function () {
    if (!this.ready || !this.running) return false;
    var frame = this.ready, bitmap = frame.bitmap;
    this.ready = null;
    if (this.canvas.width !== bitmap.width || this.canvas.height !== bitmap.height) {
      this.canvas.width = bitmap.width; this.canvas.height = bitmap.height;
    }
    this.ctx.drawImage(bitmap, 0, 0);
    bitmap.close();
    this.header = frame.header;
    this.drawn++;
    if (this.drawn === 1 || this.stalled) { this.stalled = false; this.say("live", false); }
    return true;
  };
  WsView.prototype.shown = function () {
    return this.running && this.header ? { el: this.canvas, width: this.canvas.width, height: this.canvas.height, ctx: this.ctx } : null;
  };
  WsView.prototype.stop = function () {
    this.running = false; this.backoff.cancel();
    if (this.ws) { var ws = this.ws; this.ws = null; ws.close(); }
    if (this.ready) { this.ready.bitmap.close(); this.ready = null; }
    this.pending = null; this.header = null; this.drawn = 0;
    this.canvas.hidden = true;
  };
  WsView.prototype.describe = function () {
    return "WebSocket: " + this.received + " received, " + this.dropped + " dropped while decoding" +
      (this.header ? ", frame #" + this.header.sequence : "");
  };
  WsView.prototype.recovered = function () { if (this.running && !this.ws) this.connect(); };
  WsView.prototype.onStats = function () {
    // Connected but silent for 3 s (a source that stopped keeps the socket open).
    if (this.running && this.ws && this.drawn > 0 && Date.now() - this.lastMessageAt > 3000 && !this.stalled) {
      this.stalled = true; this.say("no frames for " + ((Date.now() - this.lastMessageAt) / 1000).toFixed(0) + " s", false);
    }
  };

  // The FFWS header: magic, version, header length, sequence, capture stamp
  // (little-endian; docs/websocket.md). null if it is not one.
  function parseHeader(data) {
    if (data.byteLength < 32) return null;
    var v = new DataView(data);
    if (v.getUint32(0, false) !== 0x46465753) return null;  // "FFWS"
    var length = v.getUint16(6, true);
    if (length < 32 || length > data.byteLength) return null;
    return {
      length: length,
      sequence: Number(v.getBigUint64(8, true)),
      captureUs: Number(v.getBigUint64(16, true)),
      width: v.getUint16(24, true), height: v.getUint16(26, true)
    };
  }

  // ---- the screen meter ----
  // Called once per animation frame with what is shown: reads the strip of
  // the shown picture (for the <img>, by drawing its top rows onto a scratch
  // canvas; for the WebSocket canvas, straight from it) and, when it changed,
  // returns the new frame's capture stamp and its capture-to-screen latency
  // at this animation frame, i.e. when the browser paints it.
  function ScreenMeter(clock) {
    this.clock = clock;
    this.scratch = document.createElement("canvas");
    this.scratchCtx = this.scratch.getContext("2d", { willReadFrequently: true });
    this.lastCaptureUs = null;
    this.unreadable = 0;
  }
  ScreenMeter.prototype.sample = function (shown) {
    var nowUs = this.clock.serverNowUs();
    if (!shown || nowUs === null) return null;
    var rows = root.FF.timecode.stripRows(shown.width);
    if (rows === 0) return null;
    var pixels;
    try {
      if (shown.ctx) {
        pixels = shown.ctx.getImageData(0, 0, shown.width, rows).data;
      } else {
        if (this.scratch.width !== shown.width || this.scratch.height !== rows) {
          this.scratch.width = shown.width; this.scratch.height = rows;
        }
        this.scratchCtx.drawImage(shown.el, 0, 0, shown.width, rows, 0, 0, shown.width, rows);
        pixels = this.scratchCtx.getImageData(0, 0, shown.width, rows).data;
      }
    } catch (e) {
      return null;  // a tainted or not-yet-decoded image: nothing to read
    }
    var reading = root.FF.timecode.readTimecode(pixels, shown.width, rows, nowUs);
    if (!reading) { this.unreadable++; return null; }
    if (reading.captureUs === this.lastCaptureUs) return null;  // the same frame, still shown
    this.lastCaptureUs = reading.captureUs;
    return { captureUs: reading.captureUs, latencyMs: (nowUs - reading.captureUs) / 1000, mirrored: reading.mirrored };
  };

  root.FF = root.FF || {};
  root.FF.Backoff = Backoff;
  root.FF.wsUrl = wsUrl;
  root.FF.MjpegView = MjpegView;
  root.FF.WsView = WsView;
  root.FF.ScreenMeter = ScreenMeter;
  root.FF.parseWsHeader = parseHeader;
})(typeof window !== "undefined" ? window : globalThis);
