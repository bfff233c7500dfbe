// The grid page (grid.html, served at / when the server runs several
// streams): one tile per stream from api/streams, refreshed every second,
// each with its live picture, state, fps and latency; a tile links to the
// stream's full page, streams/NAME/.
//
// How a tile gets its picture: one WebSocket per tile, on
// streams/NAME/ws/stream?width=320&fps=10, drawn by view.js's WsView (newest
// frame only, as on the full page). Why not the others:
// - MJPEG <img> per tile: each holds an HTTP/1.1 connection for good, and a
//   browser opens at most 6 per host, so a 7th tile (and the page's own
//   api/streams polls) would wait forever. WebSockets are outside that pool.
// - snapshots polled: every picture is a request and a full-size JPEG
//   (snapshot.jpg has no width), queued behind the 6 connections; 16 tiles at
//   a few fps means dozens of requests a second and pictures late by the
//   queue.
// - one WebSocket for all tiles: needs a new server endpoint that multiplexes
//   streams; per-tile sockets give the same result with today's ws/stream.
// The cost: width=320 is one pixel variant per stream (encoded once per
// source frame while anyone watches it, whatever the number of grid viewers;
// it counts towards --max-variants of that stream); a source no wider than
// 320 px is served as is, no variant at all. fps=10 caps what is sent per
// tile (the server skips frames per client, newest-only). Tiles off screen
// and a hidden page close their sockets. Figures: docs/websocket.md, "The
// grid page".
(function (root) {
  "use strict";
  var TILE_WIDTH = 320, TILE_FPS = 10, DASH = "\u2014";

  // ---- pure parts (tests/web/grid.test.mjs) ----

  // api/streams' answer as a clean list: entries without a usable name are
  // dropped, duplicates keep the first; numbers that are missing are 0.
  function parseStreams(data) {
    var list = data && Array.isArray(data.streams) ? data.streams : [], seen = {}, out = [];
    list.forEach(function (s, i) {
      if (!s || typeof s !== "object" || typeof s.name !== "string" || s.name === "" || seen[s.name]) return;
      seen[s.name] = true;
      var lat = s.latency_ms && typeof s.latency_ms === "object" ? s.latency_ms : {};
      out.push({
        name: s.name,
        index: number(s.index, i),
        path: typeof s.path === "string" && s.path !== "" ? s.path : "streams/" + encodeURIComponent(s.name) + "/",
        source: typeof s.source === "string" ? s.source : "",
        state: typeof s.state === "string" ? s.state : "",
        width: number(s.width, 0), height: number(s.height, 0), fps: number(s.fps, 0),
        viewers: number(s.viewers, 0),
        detector: typeof s.detector === "string" ? s.detector : "",
        detectionFps: number(s.detection_fps, 0),
        p50: number(lat.p50, 0), p99: number(lat.p99, 0)
      });
    });
    return out;
  }
  function number(v, otherwise) { return typeof v === "number" && isFinite(v) ? v : otherwise; }

  // The tile's WebSocket path, relative to the grid page; null while the
  // stream's width is unknown (asking 320 px of a narrower source is a 400).
  function socketPath(stream, width, fps) {
    width = width || TILE_WIDTH; fps = fps || TILE_FPS;
    if (!(stream.width > 0)) return null;
    var query = "fps=" + fps;
    if (stream.width > width) query = "width=" + width + "&" + query;
    return stream.path + "ws/stream?" + query;
  }

  // What a state looks like: the badge's class, and whether the picture is
  // current (anything else shows the state over the last picture).
  function stateLook(state) {
    switch (state) {
      case "live": return { text: "live", cls: "ok", live: true };
      case "starting": return { text: "starting", cls: "wait", live: false };
      case "reconnecting": return { text: "reconnecting", cls: "bad", live: false };
      case "no signal": return { text: "no signal", cls: "bad", live: false };
      case "ended": return { text: "ended", cls: "wait", live: false };
      default: return { text: state ? String(state) : "unknown", cls: "wait", live: false };
    }
  }

  function fmtFps(v) { return v > 0 ? v.toFixed(v < 10 ? 1 : 0) + " fps" : DASH + " fps"; }
  function fmtMs(v) { return v > 0 ? v.toFixed(v < 10 ? 1 : 0) : DASH; }
  function fmtLatency(p50, p99) {
    return p50 > 0 || p99 > 0 ? "p50 " + fmtMs(p50) + " / p99 " + fmtMs(p99) + " ms" : "latency " + DASH;
  }

  // Appends ?token= (the page's own) to a URL, as page.js does.
  function withToken(url, token) {
    return token ? url + (url.indexOf("?") < 0 ? "?" : "&") + "token=" + encodeURIComponent(token) : url;
  }

  root.FF = root.FF || {};
  root.FF.grid = { parseStreams: parseStreams, socketPath: socketPath, stateLook: stateLook,
    fmtFps: fmtFps, fmtLatency: fmtLatency, withToken: withToken, TILE_WIDTH: TILE_WIDTH, TILE_FPS: TILE_FPS };

  if (!root.document || !root.document.getElementById("grid")) return;

  // ---- the page ----
  var document = root.document, FF = root.FF;
  var $ = function (id) { return document.getElementById(id); };
  var TOKEN = new URLSearchParams(location.search).get("token");
  function authed(url) { return withToken(url, TOKEN); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function setText(e, text) { if (e.textContent !== text) e.textContent = text; }

  // One stream's tile. Its WsView is started while the tile is on screen and
  // the page visible, and restarted on another socket path (the stream's
  // width became known or changed).
  function Tile(stream) {
    var self = this;
    this.name = stream.name;
    this.link = el("a", "cam");
    this.link.href = authed(stream.path);
    this.link.dataset.name = stream.name;
    var pic = el("div", "pic");
    this.canvas = el("canvas");
    this.canvas.hidden = true;
    this.badge = el("span", "badge wait", "…");
    this.over = el("div", "over");
    pic.append(this.canvas, this.over);
    var info = el("div", "info");
    this.nameEl = el("span", "name", stream.name);
    this.fpsEl = el("span", "fig fps");
    this.latEl = el("span", "fig lat");
    this.srcEl = el("span", "src");
    info.append(this.nameEl, this.badge, this.fpsEl, this.latEl, this.srcEl);
    this.link.append(pic, info);
    this.path = null;      // the socket path the view uses
    this.onScreen = false;
    this.conn = { text: "", bad: false };  // what the view said last
    this.view = new FF.WsView(this.canvas, function (url) {
      // WsView asks for "ws/stream": give it this tile's path instead.
      return authed(url === "ws/stream" && self.path ? self.path : url);
    }, function (text, bad) { self.conn = { text: text, bad: !!bad }; self.paint(); });
    this.stream = stream;
  }
  Tile.prototype.update = function (stream) {
    this.stream = stream;
    var path = socketPath(stream);
    if (path !== this.path) { this.path = path; this.sync(true); }
    this.paint();
  };
  // Starts or stops the view to match what should run.
  Tile.prototype.sync = function (restart) {
    var want = this.onScreen && !document.hidden && this.path !== null;
    if (this.view.running && (!want || restart)) this.view.stop();
    if (want && !this.view.running) this.view.start();
    // stop() hides the canvas; keep the last picture under the state.
    if (this.view.drawn > 0 || this.everDrawn) this.canvas.hidden = false;
  };
  Tile.prototype.paint = function () {
    var s = this.stream, look = stateLook(s.state);
    if (disconnected) look = { text: "server unreachable", cls: "bad", live: false };
    setText(this.badge, look.text);
    this.badge.className = "badge " + look.cls;
    setText(this.fpsEl, fmtFps(s.fps));
    setText(this.latEl, fmtLatency(s.p50, s.p99));
    setText(this.srcEl, s.source + (s.detector && s.detector !== "none" ? " \u00b7 " + s.detector : ""));
    this.srcEl.title = s.source;
    // Over the picture: the stream's state when it is not live; when it is,
    // what the socket says if frames do not arrive.
    var over = "", detail = "", cls = look.cls;
    if (!look.live) { over = look.text; detail = this.everDrawn ? "last picture" : ""; }
    else if (this.path === null) { over = "waiting"; detail = "size unknown"; cls = "wait"; }
    else if (this.view.running && this.conn.text !== "live") {
      over = this.conn.bad ? "stream lost" : this.view.drawn === 0 ? "connecting" : "stalled";
      detail = this.conn.text; cls = this.conn.bad ? "bad" : "wait";
    }
    this.link.classList.toggle("down", over !== "");
    this.link.classList.toggle("bad", cls === "bad");
    this.link.classList.toggle("wait", cls !== "bad");
    if (this.over.dataset.text !== over + "|" + detail) {
      this.over.dataset.text = over + "|" + detail;
      this.over.replaceChildren(document.createTextNode(over));
      if (detail) this.over.appendChild(el("small", "", detail));
    }
  };
  Tile.prototype.present = function () {
    if (this.view.present() && !this.everDrawn) { this.everDrawn = true; this.paint(); }
  };
  Tile.prototype.remove = function () { this.view.stop(); this.link.remove(); };

  var tiles = new Map(), disconnected = false;
  var seen = typeof IntersectionObserver === "function" ? new IntersectionObserver(function (entries) {
    entries.forEach(function (e) {
      var tile = tiles.get(e.target.dataset.name);
      if (tile) { tile.onScreen = e.isIntersecting; tile.sync(false); }
    });
  }, { rootMargin: "100px" }) : null;

  function render(streams) {
    var grid = $("grid"), names = {};
    streams.forEach(function (s) { names[s.name] = true; });
    tiles.forEach(function (tile, name) {
      if (!names[name]) { if (seen) seen.unobserve(tile.link); tile.remove(); tiles.delete(name); }
    });
    var previous = null;
    streams.forEach(function (s) {
      var tile = tiles.get(s.name);
      if (!tile) {
        tile = new Tile(s);
        tiles.set(s.name, tile);
        if (seen) seen.observe(tile.link); else tile.onScreen = true;
      }
      // In api/streams' order; a node already in place is not moved.
      var next = previous ? previous.nextSibling : grid.firstChild;
      if (next !== tile.link) grid.insertBefore(tile.link, next);
      tile.update(s);
      previous = tile.link;
    });
    var empty = grid.querySelector(".grid-empty");
    if (streams.length === 0 && !empty) grid.appendChild(el("p", "grid-empty", "no streams"));
    if (streams.length > 0 && empty) empty.remove();
    var live = streams.filter(function (s) { return s.state === "live"; }).length;
    setText($("count"), streams.length + " stream" + (streams.length === 1 ? "" : "s") + ", " + live + " live");
  }

  function status(text, cls) { var b = $("status"); setText(b, text); b.className = "badge " + cls; }

  function poll() {
    var ctl = new AbortController(), timer = setTimeout(function () { ctl.abort(); }, 2500);
    fetch(authed("api/streams"), { cache: "no-store", signal: ctl.signal })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (data) {
        var wasDown = disconnected;
        disconnected = false;
        render(parseStreams(data));
        status("connected", "ok");
        tiles.forEach(function (tile) { if (wasDown) tile.view.recovered(); tile.view.onStats(); tile.paint(); });
      })
      .catch(function (err) {
        disconnected = true;
        status("disconnected", "bad");
        tiles.forEach(function (tile) { tile.paint(); });
        setText($("count"), "api/streams: " + (err && err.name === "AbortError" ? "no answer" : err.message));
      })
      .then(function () { clearTimeout(timer); setTimeout(poll, 1000); });
  }

  function animationFrame() {
    tiles.forEach(function (tile) { tile.present(); });
    requestAnimationFrame(animationFrame);
  }

  document.addEventListener("visibilitychange", function () {
    tiles.forEach(function (tile) { tile.sync(false); });
  });

  // For tests and benchmarks driving the page (tests/e2e).
  root.freshframe = {
    tiles: function () {
      var out = [];
      tiles.forEach(function (t) {
        out.push({ name: t.name, state: t.stream.state, path: t.path, running: t.view.running,
          received: t.view.received, drawn: t.view.drawn, dropped: t.view.dropped,
          sequence: t.view.header ? t.view.header.sequence : null,
          width: t.canvas.width, height: t.canvas.height, href: t.link.href });
      });
      return out;
    }
  };

  $("api-link").href = authed("api/streams");
  requestAnimationFrame(animationFrame);
  poll();
})(typeof window !== "undefined" ? window : globalThis);
