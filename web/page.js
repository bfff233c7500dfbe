// The page's controller: stats polling, the live view and its latency
// meter, stage charts, detections (SSE) and controls (POST api/config).
(function () {
  "use strict";
  var FF = window.FF;
  var STAGES = [
    ["capture", "frames from the source"],
    ["grab", "capture → grabbed"],
    ["infer", "detector: work = time per frame, latency = capture → inference end"],
    ["annotate", "capture → annotated frame published"],
    ["encode", "JPEG: work = encode time, latency = capture → encoded"],
    ["encode_h264", "H.264 (one encode for every H.264 and WebRTC viewer): work = encode time, latency = capture → encoded"],
    ["send", "capture → part fully written to a client (all clients)"]
  ];
  // The stream's path, capture to screen, split where the server stamps it.
  var SEGMENTS = [
    ["grab", "#7aa2f7", "capture→grab"],
    ["annotate", "#bb9af7", "annotate"],
    ["encode", "#e0af68", "encode"],
    ["send", "#9ece6a", "send"],
    ["screen", "#4fb3ff", "network + decode + paint"]
  ];
  var CHARTS = [
    ["capture", "capture", "#7aa2f7", "capture → grabbed"],
    ["inference", "inference", "#bb9af7", "detector work per frame"],
    ["encode", "encode", "#e0af68", "encode work per frame (JPEG, or H.264 in the H.264 and WebRTC views)"],
    ["send", "send", "#9ece6a", "capture → sent to clients"],
    ["screen", "screen", "#4fb3ff", "capture → shown in this browser"]
  ];
  var DASH = "\u2014";
  var $ = function (id) { return document.getElementById(id); };
  // Opened as ?token=TOKEN (a server run with --token): the page's own
  // requests carry it too, since an <img>, an EventSource and a WebSocket
  // cannot send an Authorization header.
  var params = new URLSearchParams(location.search);
  var AUTH = params.get("token");
  function authed(url) {
    return AUTH ? url + (url.indexOf("?") < 0 ? "?" : "&") + "token=" + encodeURIComponent(AUTH) : url;
  }

  // Formatting: anything missing, non-numeric, non-finite or zero is a dash.
  function num(v) { return (typeof v === "number" && isFinite(v) && v !== 0) ? v : null; }
  function fmtMs(v) {
    v = num(v); if (v === null) return DASH;
    var a = Math.abs(v);
    return v.toFixed(a < 10 ? 2 : a < 100 ? 1 : 0);
  }
  function fmtFps(v) { v = num(v); return v === null ? DASH : v.toFixed(1); }
  function fmtInt(v) { v = num(v); return v === null ? DASH : String(Math.round(v)); }
  function fmtText(v) {
    if (v === null || v === undefined || v === "") return DASH;
    if (typeof v === "number" && !isFinite(v)) return DASH;
    return String(v);
  }
  function fmtUptime(v) {
    v = num(v); if (v === null) return "";
    var s = Math.floor(v), h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60;
    var pad = function (x) { return (x < 10 ? "0" : "") + x; };
    return "up " + (h ? h + "h " + pad(m) + "m " : m ? m + "m " : "") + pad(s % 60) + "s";
  }
  function obj(v) { return (v && typeof v === "object" && !Array.isArray(v)) ? v : {}; }
  function setText(id, text) { var el = $(id); if (el.textContent !== text) el.textContent = text; }
  function cell(row, text, cls) {
    var td = document.createElement("td");
    td.className = cls || "n"; td.textContent = text; row.appendChild(td);
    return td;
  }
  function emptyRow(tbody, cols, text) {
    var tr = document.createElement("tr"), td = document.createElement("td");
    td.colSpan = cols; td.className = "empty"; td.textContent = text;
    tr.appendChild(td); tbody.replaceChildren(tr);
  }
  function getJson(url) {
    return fetch(authed(url), { cache: "no-store" }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    });
  }

  // ---- the live view and the screen meter ----
  function streamState(text, bad) {
    var s = $("stream-state");
    s.textContent = text; s.className = "state" + (bad ? " bad" : "");
    $("video").classList.toggle("down", !!bad);
  }
  var clock = new FF.ClockSync(function () {
    return getJson("api/clock").then(function (d) { return d.now_us; });
  }, function () { return performance.now(); });
  var views = {
    mjpeg: new FF.MjpegView($("stream"), authed, streamState),
    ws: new FF.WsView($("ws-canvas"), authed, streamState),
    h264: new FF.H264View($("h264-canvas"), authed, streamState),
    webrtc: new FF.WebRtcView($("rtc-video"), authed, streamState)
  };
  var VIEW_INFO = {
    mjpeg: "<img>, multipart JPEG",
    ws: "canvas, JPEG over WebSocket, newest frame only",
    h264: "canvas, H.264 over WebSocket decoded by WebCodecs, newest frame only",
    webrtc: "<video>, H.264 over WebRTC (WHEP)"
  };
  // What this browser can show: WebCodecs exists only in a secure context
  // (HTTPS, localhost); WebRTC everywhere. serverLacks: views the server
  // refused (a build or machine without them), with its reason.
  var ENV = { secure: !!window.isSecureContext, webCodecs: typeof window.VideoDecoder === "function",
    webRtc: typeof window.RTCPeerConnection === "function", serverLacks: {} };
  var chosenView = null;
  var STORE = "freshframe.view";
  function storedView() { try { return localStorage.getItem(STORE); } catch (e) { return null; } }
  var bitrate = new FF.h264.Bitrate(2000);
  var view = null, meter = new FF.ScreenMeter(clock);
  var screen10s = new FF.RollingWindow(10000), screen1s = new FF.RollingWindow(1000);
  var recent = [];  // the last frames shown: {t, captureUs, latencyMs}, for automation
  var lastShown = null, viewSince = 0;

  // `chosen`: the user's choice (a click, ?view=, the last click in this
  // browser), kept in the URL and localStorage; null: the best this browser
  // has. A choice it cannot show falls back, and the page says why.
  function setView(chosen, remember) {
    chosenView = views[chosen] ? chosen : null;
    var pick = FF.h264.chooseView({ secure: ENV.secure, webCodecs: ENV.webCodecs, webRtc: ENV.webRtc,
      serverLacks: ENV.serverLacks, chosen: chosenView });
    var kind = pick.kind;
    var why = $("view-why");
    why.textContent = pick.why; why.hidden = !pick.why;
    if (remember && views[chosen]) {
      var url = new URL(location.href);
      url.searchParams.set("view", chosen);
      history.replaceState(null, "", url.href);
      try { localStorage.setItem(STORE, chosen); } catch (e) { /* private mode */ }
    }
    if (view && view.kind === kind) return;
    if (view) view.stop();
    view = views[kind];
    meter = new FF.ScreenMeter(clock);
    screen10s = new FF.RollingWindow(10000); screen1s = new FF.RollingWindow(1000);
    lastShown = null; viewSince = performance.now();
    bitrate.clear();
    Object.keys(views).forEach(function (k) { $("view-" + k).setAttribute("aria-pressed", String(k === kind)); });
    view.start();
  }
  function disableButtons() {
    var not = FF.h264.unavailable(ENV);
    Object.keys(views).forEach(function (k) { if (not[k]) { $("view-" + k).disabled = true; $("view-" + k).title = not[k]; } });
  }
  Object.keys(views).forEach(function (k) {
    $("view-" + k).addEventListener("click", function () { setView(k, true); });
    // The server has no such endpoint: show the next best view, and why.
    views[k].onUnavailable = function (reason) {
      ENV.serverLacks[k] = reason;
      disableButtons();
      if (view === views[k]) setView(chosenView, false);
    };
  });
  disableButtons();
  // A WHEP session ends with the page (DELETE); the others end with their sockets.
  window.addEventListener("pagehide", function () { if (view) view.stop(); });
  window.addEventListener("pageshow", function (e) { if (e.persisted && view) view.start(); });

  function animationFrame() {
    view.present();
    var sample = meter.sample(view.shown());
    if (sample) {
      var now = performance.now();
      screen10s.add(now, sample.latencyMs);
      screen1s.add(now, sample.latencyMs);
      lastShown = sample;
      recent.push({ t: now, captureUs: sample.captureUs, latencyMs: sample.latencyMs });
      if (recent.length > 2000) recent.splice(0, recent.length - 2000);
    }
    requestAnimationFrame(animationFrame);
  }

  function renderMeter() {
    var now = performance.now();
    screen10s.prune(now); screen1s.prune(now);
    var p50 = screen10s.quantile(0.5), p99 = screen10s.quantile(0.99), n = screen10s.count();
    setText("lat-p50", p50 === null ? DASH : fmtMs(p50));
    setText("lat-p99", p99 === null ? DASH : fmtMs(p99));
    var detail;
    if (!clock.synced()) detail = "waiting for the clock offset…";
    else if (n === 0) detail = meter.unreadable ? "no readable timecode strip in the shown frames" : "waiting for frames…";
    else {
      var span = Math.min(10, (now - viewSince) / 1000);
      detail = n + " frames shown in " + span.toFixed(0) + " s (" + (n / Math.max(span, 1)).toFixed(1) + " fps)";
      if (lastShown) detail += ", last " + lastShown.latencyMs.toFixed(1) + " ms";
    }
    var more = view.describe();
    if (more) detail += "; " + more;
    setText("lat-detail", detail);
    setText("view-info", VIEW_INFO[view.kind]);
    bitrate.add(now, view.bytes);
    var kbps = bitrate.kbps();
    setText("bitrate", kbps === null ? "bitrate: \u2026" : "bitrate: " + (view.estimated ? "\u2248" : "") +
      FF.h264.formatKbps(kbps));
    $("bitrate").title = view.estimated ? "frames sent \u00d7 a recent snapshot's size (the server reports no bytes per client)"
      : "bytes this page received over the last 2 s";
  }

  function renderClock() {
    if (!clock.synced()) { setText("clock-detail", "clock: no answer from api/clock yet"); return; }
    setText("clock-detail", "clock offset to the server: " + (clock.offsetUs / 1000).toFixed(1) + " ms \u00b1" +
      (clock.uncertaintyUs / 1000).toFixed(2) + " ms (best of 8 round trips, rtt " + (clock.rttUs / 1000).toFixed(2) + " ms)");
  }
  function syncClock() { clock.sync(8).then(renderClock); }

  // The encoder of what this view shows: JPEG, or the shared H.264 one.
  function encodeStage() { return view && (view.kind === "h264" || view.kind === "webrtc") ? "encode_h264" : "encode"; }

  // ---- where the time goes: server stamps, then the browser ----
  function renderBreakdown(stages) {
    var bar = $("breakdown-bar"), legend = $("breakdown-legend"), at = 0, parts = [];
    var screenP50 = screen10s.quantile(0.5);
    SEGMENTS.forEach(function (seg) {
      var stage = seg[0] === "encode" ? encodeStage() : seg[0];
      var end = stage === "screen" ? screenP50 : obj(obj(stages[stage]).latency_ms).p50;
      if (typeof end !== "number" || !isFinite(end)) return;
      var ms = Math.max(0, end - at);
      at = Math.max(at, end);
      parts.push({ ms: ms, colour: seg[1], name: seg[2] });
    });
    var total = parts.reduce(function (s, p) { return s + p.ms; }, 0) || 1;
    bar.replaceChildren.apply(bar, parts.map(function (p) {
      var s = document.createElement("span");
      s.style.width = (100 * p.ms / total) + "%"; s.style.background = p.colour;
      s.title = p.name + " " + p.ms.toFixed(2) + " ms";
      return s;
    }));
    legend.replaceChildren.apply(legend, parts.map(function (p) {
      var s = document.createElement("span"), i = document.createElement("i");
      i.style.background = p.colour;
      s.appendChild(i); s.appendChild(document.createTextNode(p.name + " " + p.ms.toFixed(1) + " ms"));
      return s;
    }));
  }

  // ---- stage charts ----
  var charts = {};
  CHARTS.forEach(function (def) {
    var box = document.createElement("div"), head = document.createElement("div");
    var title = document.createElement("b"), value = document.createElement("span"), canvas = document.createElement("canvas");
    box.className = "chart"; box.title = def[3]; head.className = "head";
    title.textContent = def[1]; value.id = "chart-" + def[0] + "-value"; value.textContent = DASH;
    head.appendChild(title); head.appendChild(value); box.appendChild(head); box.appendChild(canvas);
    $("charts").appendChild(box);
    charts[def[0]] = { chart: new FF.Chart(canvas, def[2]), value: value };
  });
  function pushCharts(stages) {
    var t = performance.now() / 1000;
    var figure = function (stage, kind) { var s = obj(obj(stages[stage])[kind]); return num(s.count) ? [s.p50, s.p99] : [null, null]; };
    var series = {
      capture: figure("grab", "latency_ms"),
      inference: figure("infer", "work_ms"),
      encode: figure(encodeStage(), "work_ms"),
      send: figure("send", "latency_ms"),
      screen: screen1s.count() ? [screen1s.quantile(0.5), screen1s.quantile(0.99)] : [null, null]
    };
    Object.keys(charts).forEach(function (key) {
      var c = charts[key], v = series[key];
      c.chart.push(t, v[0], v[1]);
      c.chart.draw(t);
      c.value.textContent = v[0] === null ? DASH : fmtMs(v[0]) + " / " + fmtMs(v[1]);
    });
  }

  // ---- tables ----
  function renderStages(stages) {
    var rows = STAGES.map(function (def) {
      var s = obj(stages[def[0]]), w = obj(s.work_ms), l = obj(s.latency_ms);
      var tr = document.createElement("tr"), name = cell(tr, def[0], "l"), what = document.createElement("span");
      name.title = def[1]; what.className = "what"; what.textContent = def[1]; name.appendChild(what);
      cell(tr, fmtFps(s.fps)); cell(tr, fmtInt(s.frames)); cell(tr, fmtInt(s.skipped));
      cell(tr, fmtMs(w.p50)); cell(tr, fmtMs(w.p99));
      cell(tr, fmtMs(l.p50)); cell(tr, fmtMs(l.p90)); cell(tr, fmtMs(l.p99));
      return tr;
    });
    $("stages").replaceChildren.apply($("stages"), rows);
  }
  function renderClients(clients) {
    var tbody = $("clients");
    if (!Array.isArray(clients) || clients.length === 0) {
      emptyRow(tbody, 7, "no clients"); setText("client-count", ""); return;
    }
    tbody.replaceChildren.apply(tbody, clients.map(function (c) {
      c = obj(c);
      var tr = document.createElement("tr");
      cell(tr, fmtText(c.id)); cell(tr, fmtText(c.peer), "l"); cell(tr, fmtText(c.path), "l");
      cell(tr, fmtInt(c.sent)); cell(tr, fmtInt(c.skipped)); cell(tr, fmtFps(c.fps));
      cell(tr, num(c.connected_s) === null ? DASH : c.connected_s.toFixed(0));
      return tr;
    }));
    setText("client-count", "(" + clients.length + ")");
  }

  function render(d) {
    var src = obj(d.source), st = obj(d.stages), send = obj(obj(st.send).latency_ms);
    setText("version", d.version ? "v" + d.version : "");
    setText("uptime", fmtUptime(d.uptime_s));
    var line = [fmtText(src.spec)];
    if (num(src.width) && num(src.height)) line.push(src.width + "\u00d7" + src.height);
    if (num(src.fps)) line.push(src.fps.toFixed(0) + " fps");
    line.push("detector " + fmtText(d.detector));
    // --detector bus:NAME: another process's model, which may be gone.
    var gone = modelGone(d.external);
    if (gone) line.push(gone);
    if (gone !== externalGone) { externalGone = gone; if (lastSet) renderDetections(lastSet); }
    setText("src-line", line.join(" \u00b7 "));
    if (num(src.width) && num(src.height)) {
      var ar = src.width + " / " + src.height, v = $("video");
      if (v.style.aspectRatio !== ar) v.style.aspectRatio = ar;
    }
    setText("srv-p50", fmtMs(send.p50));
    setText("srv-p99", fmtMs(send.p99));
    renderStages(st);
    renderClients(d.clients);
    renderBreakdown(st);
    pushCharts(st);
    if (d.config) controls.show(d.config);
  }

  // ---- status: live, stale, no signal ----
  function setStatus(text, cls, banner, detail) {
    var b = $("status");
    b.textContent = text; b.className = "badge " + cls;
    $("main").classList.toggle("stale", cls === "bad");
    var video = $("video");
    video.classList.toggle("nosignal", banner === "NO SIGNAL");
    video.classList.toggle("stale", banner === "STALE" || banner === "ENDED");
    var el = $("banner");
    el.replaceChildren(document.createTextNode(banner || ""));
    if (detail) { var small = document.createElement("small"); small.textContent = detail; el.appendChild(small); }
  }

  var downSince = 0;
  function poll() {
    var ctl = new AbortController(), timer = setTimeout(function () { ctl.abort(); }, 2500);
    fetch(authed("api/stats"), { cache: "no-store", signal: ctl.signal })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (d) {
        d = obj(d);
        render(d);
        // A stage upstream (another process) stopped: the picture is the
        // last frame it delivered, not live video.
        var source = obj(d.source);
        if (source.state === "reconnecting") {
          setStatus("no signal: reconnecting", "bad", "NO SIGNAL", (source.message || "source lost") + ", reconnecting");
        } else if (source.state === "ended") {
          setStatus("source ended", "wait", "ENDED", (source.message || "") + " (last frame)");
        } else if (d.stale) {
          var age = d.input && num(d.input.stale_s) ? d.input.stale_s.toFixed(0) + " s" : "";
          setStatus("stale " + age, "wait", "STALE", "no new frames " + (age ? "for " + age : "") + " (last frame shown)");
        } else {
          setStatus("live", "ok", "", "");
        }
        if (downSince) { view.recovered(downSince); syncClock(); }
        downSince = 0;
        view.onStats(d.clients);
      })
      .catch(function () {
        setStatus("disconnected", "bad", "NO SIGNAL", "the server does not answer");
        if (!downSince) downSince = Date.now();
      })
      .then(function () { clearTimeout(timer); setTimeout(poll, 1000); });
  }

  // ---- detections: GET api/events (SSE), one event per inferred frame ----
  // What to say instead of the detector's state when its model runs in
  // another process (external: /api/stats) and is not publishing; "" if it is.
  var externalGone = "", lastSet = null;
  function modelGone(external) {
    if (!external || typeof external !== "object" || external.alive !== false) return "";
    return num(external.sets) ? "model gone" : "waiting for the model";
  }
  function renderDetections(set) {
    lastSet = set;
    var list = Array.isArray(set.detections) ? set.detections : [];
    setText("det-count", "(" + list.length + ")");
    if (list.length === 0) emptyRow($("detections"), 6, set.detector_running === false ? (externalGone || "detector off") : "nothing detected");
    else $("detections").replaceChildren.apply($("detections"), list.map(function (det) {
      det = obj(det);
      var box = Array.isArray(det.box) ? det.box : [], tr = document.createElement("tr");
      cell(tr, fmtText(det.label), "l");
      cell(tr, typeof det.score === "number" ? det.score.toFixed(2) : DASH);
      for (var i = 0; i < 4; i++) cell(tr, typeof box[i] === "number" ? String(box[i]) : DASH);
      return tr;
    }));
    var detail = set.detector ? set.detector : "";
    if (num(set.sequence)) detail += " \u00b7 frame #" + set.sequence;
    if (num(set.infer_end_us) && num(set.infer_start_us)) detail += " \u00b7 " + ((set.infer_end_us - set.infer_start_us) / 1000).toFixed(1) + " ms";
    setText("det-detail", detail);
  }
  function watchDetections() {
    var events = new EventSource(authed("api/events"));
    events.addEventListener("detections", function (e) {
      try { renderDetections(obj(JSON.parse(e.data))); } catch (err) { /* a bad event: keep the last list */ }
    });
    events.onerror = function () {
      // EventSource retries by itself unless the server refused (no detector
      // in this process answers 404): then say so and try again later.
      if (events.readyState === EventSource.CLOSED) {
        emptyRow($("detections"), 6, "no detections from this server");
        setTimeout(watchDetections, 10000);
      }
    };
  }

  // ---- controls: POST api/config ----
  var controls = (function () {
    var busy = false, editing = false;
    var el = { detector: $("c-detector"), overlay: $("c-overlay"), quality: $("c-quality"), mirror: $("c-mirror") };
    function message(text, cls) { var m = $("c-msg"); m.textContent = text; m.className = "msg " + (cls || ""); }
    function show(config) {
      if (busy || editing) return;
      config = obj(config);
      var available = Array.isArray(config.available) ? config.available : [];
      el.detector.checked = !!config.detector;
      el.overlay.value = config.overlay || "latest";
      if (typeof config.quality === "number") { el.quality.value = String(config.quality); setText("c-quality-value", String(config.quality)); }
      el.mirror.checked = !!config.mirror;
      setText("c-detector-spec", config.detector_spec ? config.detector_spec : "");
      Object.keys(el).forEach(function (k) {
        var off = available.indexOf(k) < 0;
        el[k].disabled = off;
        el[k].title = off ? "not adjustable in this process" : "";
      });
    }
    function apply(change) {
      busy = true;
      message("applying…");
      fetch(authed("api/config"), { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(change), cache: "no-store" })
        .then(function (r) {
          return r.json().catch(function () { return {}; }).then(function (body) {
            busy = false;
            if (!r.ok) { message("refused: " + (body.error || "HTTP " + r.status), "bad"); return getJson("api/config").then(show); }
            show(body);
            message("applied: " + JSON.stringify(change), "ok");
          });
        })
        .catch(function (err) { busy = false; message("failed: " + err.message, "bad"); });
    }
    el.detector.addEventListener("change", function () { apply({ detector: el.detector.checked }); });
    el.overlay.addEventListener("change", function () { apply({ overlay: el.overlay.value }); });
    el.mirror.addEventListener("change", function () { apply({ mirror: el.mirror.checked }); });
    el.quality.addEventListener("input", function () { editing = true; setText("c-quality-value", el.quality.value); });
    el.quality.addEventListener("change", function () { editing = false; apply({ quality: Number(el.quality.value) }); });
    getJson("api/config").then(show).catch(function () { message("controls unavailable (api/config does not answer)", "bad"); });
    return { show: show };
  })();

  // ---- full screen ----
  function toggleFullscreen() {
    if (document.fullscreenElement) document.exitFullscreen();
    else if ($("video").requestFullscreen) $("video").requestFullscreen();
  }
  $("fullscreen").addEventListener("click", toggleFullscreen);
  document.addEventListener("keydown", function (e) {
    if (e.key === "f" && !/INPUT|SELECT|TEXTAREA/.test(String(e.target.tagName))) toggleFullscreen();
  });

  // For tests and benchmarks driving the page (tests/e2e, bench/browser).
  window.freshframe = {
    clock: clock,
    view: function () { return view.kind; },
    setView: function (kind) { setView(kind, true); },
    why: function () { return $("view-why").textContent; },
    bitrateKbps: function () { return bitrate.kbps(); },
    viewState: function () { return view.describe(); },
    latency: function () {
      return { p50: screen10s.quantile(0.5), p99: screen10s.quantile(0.99), count: screen10s.count(),
        offsetUs: clock.offsetUs, uncertaintyUs: clock.uncertaintyUs };
    },
    recent: function () { return recent.slice(); }
  };

  setText("probe-url", new URL(authed("stream.mjpg"), location.href).href);
  document.querySelectorAll(".links a").forEach(function (a) { a.href = authed(a.getAttribute("href")); });
  renderStages({});
  renderClients([]);
  emptyRow($("detections"), 6, "waiting for detections…");
  setView(params.get("view") || storedView(), false);
  syncClock();
  setInterval(syncClock, 30000);
  setInterval(renderMeter, 500);
  requestAnimationFrame(animationFrame);
  poll();
  watchDetections();
})();
