// The WebRTC view: WHEP (POST an SDP offer to `whep`, 201 with the answer
// and the session's Location; DELETE it to end) played in a <video>. The
// screen meter reads the strip from the video element at each animation
// frame, as from the MJPEG <img>. Any failure (refused offer, ICE failed,
// no frames) ends the session and retries with the Backoff.
(function (root) {
  "use strict";
  var GATHER_MS = 2000;       // non-trickle WHEP: wait this long at most for ICE gathering
  var DISCONNECTED_MS = 4000; // "disconnected" this long counts as failed

  function WebRtcView(video, authed, say) {
    this.kind = "webrtc";
    this.video = video; this.authed = authed; this.say = say;
    this.backoff = new root.FF.Backoff();
    this.pc = null; this.session = null; this.running = false; this.attempt = 0;
    this.bytes = 0; this.framesDecoded = 0; this.jitterMs = null; this.state = ""; this.error = "";
    this.lastFrameAt = 0; this.stalled = false;
    this.disconnectTimer = null;
    var self = this;
    video.muted = true; video.autoplay = true; video.playsInline = true;
    video.addEventListener("playing", function () { if (self.running) self.say("live", false); });
  }
  WebRtcView.prototype.start = function () { this.running = true; this.video.hidden = false; this.connect(); };

  function waitGathering(pc, ms) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise(function (resolve) {
      var timer = setTimeout(done, ms);
      function done() { clearTimeout(timer); pc.removeEventListener("icegatheringstatechange", check); resolve(); }
      function check() { if (pc.iceGatheringState === "complete") done(); }
      pc.addEventListener("icegatheringstatechange", check);
    });
  }

  WebRtcView.prototype.connect = function () {
    this.backoff.cancel();
    this.teardown();
    this.lastFrameAt = 0; this.framesDecoded = 0; this.bytes = 0; this.state = "";
    var self = this, attempt = ++this.attempt;
    var current = function () { return self.running && attempt === self.attempt; };
    this.say("connecting…", false);
    var pc = new root.RTCPeerConnection({ bundlePolicy: "max-bundle" });
    this.pc = pc;
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.ontrack = function (event) {
      if (!current()) return;
      var r = event.receiver;
      // As little jitter buffer as the browser allows: the strip measures it.
      try { r.jitterBufferTarget = 0; } catch (e) { /* not in this browser */ }
      try { r.playoutDelayHint = 0; } catch (e) { /* Chromium's older name */ }
      self.video.srcObject = event.streams && event.streams[0] ? event.streams[0] : new MediaStream([event.track]);
      var played = self.video.play();
      if (played && played.catch) played.catch(function () { /* autoplay refused: the muted video still plays on a click */ });
    };
    pc.onconnectionstatechange = function () {
      if (!current()) return;
      self.state = pc.connectionState;
      if (pc.connectionState === "connected") {
        self.backoff.reset();
        clearTimeout(self.disconnectTimer); self.disconnectTimer = null;
      } else if (pc.connectionState === "failed") {
        self.fail("ICE failed");
      } else if (pc.connectionState === "disconnected" && !self.disconnectTimer) {
        self.disconnectTimer = setTimeout(function () { self.disconnectTimer = null; if (current() && pc.connectionState !== "connected") self.fail("connection lost"); }, DISCONNECTED_MS);
      }
    };
    var whep = new URL(this.authed("whep"), location.href).href;
    pc.createOffer().then(function (offer) {
      return pc.setLocalDescription(offer);
    }).then(function () {
      return waitGathering(pc, GATHER_MS);
    }).then(function () {
      if (!current()) throw null;
      return fetch(whep, { method: "POST", headers: { "Content-Type": "application/sdp" }, body: pc.localDescription.sdp, cache: "no-store" });
    }).then(function (response) {
      return response.text().then(function (body) {
        if ((response.status === 404 || response.status === 501) && self.onUnavailable && current()) {
          var reason = "the server has no WebRTC";
          try { reason = JSON.parse(body).error || reason; } catch (e) { if (body) reason = body.trim().split("\n")[0]; }
          self.teardown();
          self.onUnavailable(reason);
          throw null;
        }
        if (response.status !== 201) {
          throw new Error("whep: HTTP " + response.status + (body ? " " + body.trim().split("\n")[0] : ""));
        }
        var location_ = response.headers.get("Location");
        if (location_) self.session = new URL(location_, whep).href;
        if (!current()) { self.endSession(); throw null; }
        return pc.setRemoteDescription({ type: "answer", sdp: body });
      });
    }).catch(function (e) {
      if (e && current()) self.fail(e.message || String(e));
    });
  };
  WebRtcView.prototype.fail = function (why) {
    this.error = why;
    this.teardown();
    var self = this;
    if (this.running) this.backoff.schedule(function () { self.connect(); }, function (text, bad) { self.say(why + "; " + text, bad); });
  };
  // DELETE the WHEP session (keepalive: it also runs while the page unloads).
  WebRtcView.prototype.endSession = function () {
    if (!this.session) return;
    var url = this.session;
    this.session = null;
    // The session URL carries no ?token=: add it as for every request.
    var u = new URL(url), authed = new URL(this.authed(u.pathname), location.href);
    u.search = authed.search;
    fetch(u.href, { method: "DELETE", keepalive: true, cache: "no-store" }).catch(function () { /* gone already */ });
  };
  WebRtcView.prototype.teardown = function () {
    clearTimeout(this.disconnectTimer); this.disconnectTimer = null;
    this.endSession();
    if (this.pc) { var pc = this.pc; this.pc = null; pc.ontrack = null; pc.onconnectionstatechange = null; pc.close(); }
    this.video.srcObject = null;
  };
  WebRtcView.prototype.stop = function () {
    this.running = false; this.attempt++; this.backoff.cancel();
    this.teardown();
    this.video.hidden = true;
  };
  WebRtcView.prototype.recovered = function () { if (this.running && !this.pc) this.connect(); };
  // Once a second: the bytes and frames received (getStats), and a session
  // that connected but shows nothing for long is restarted.
  WebRtcView.prototype.onStats = function () {
    var pc = this.pc, self = this;
    if (!this.running || !pc || !pc.getStats) return;
    pc.getStats().then(function (report) {
      report.forEach(function (s) {
        if (s.type === "inbound-rtp" && s.kind === "video") {
          self.bytes = s.bytesReceived || 0;
          if (s.framesDecoded !== self.framesDecoded) self.lastFrameAt = Date.now();
          self.framesDecoded = s.framesDecoded || 0;
          if (s.jitterBufferEmittedCount) self.jitterMs = 1000 * s.jitterBufferDelay / s.jitterBufferEmittedCount;
        }
      });
      // Connected, but the source stopped sending (the server keeps the
      // session): say so, as the WebSocket views do.
      var quiet = self.lastFrameAt ? Date.now() - self.lastFrameAt : 0;
      if (pc.connectionState === "connected" && quiet > 3000 && !self.stalled) {
        self.stalled = true; self.say("no frames for " + (quiet / 1000).toFixed(0) + " s", false);
      } else if (quiet <= 3000 && self.stalled) {
        self.stalled = false; self.say("live", false);
      }
    }).catch(function () { /* closed meanwhile */ });
  };
  WebRtcView.prototype.present = function () { return false; };  // the browser draws the <video> itself
  WebRtcView.prototype.shown = function () {
    var v = this.video;
    return this.running && v.readyState >= 2 && v.videoWidth > 0 ? { el: v, width: v.videoWidth, height: v.videoHeight } : null;
  };
  WebRtcView.prototype.describe = function () {
    return "WebRTC: " + (this.state || "new") + ", " + this.framesDecoded + " frames decoded" +
      (this.jitterMs !== null ? ", jitter buffer " + this.jitterMs.toFixed(1) + " ms/frame" : "") +
      (this.error ? ", last error: " + this.error : "");
  };

  root.FF.WebRtcView = WebRtcView;
})(typeof window !== "undefined" ? window : globalThis);
