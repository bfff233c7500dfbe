// A small live chart on a canvas: one series' p50 (line) and p99 (band)
// over the last 60 s, with the current figures in its corner. Written here
// rather than taken from a charting library: the page embeds everything it
// needs and downloads nothing.
(function (root) {
  "use strict";
  var SPAN_S = 60;

  function Chart(canvas, colour) {
    this.canvas = canvas;
    this.colour = colour;
    this.points = [];  // {t: seconds, p50, p99}; p50/p99 may be null (no data then)
  }

  Chart.prototype.push = function (tSeconds, p50, p99) {
    this.points.push({ t: tSeconds, p50: p50, p99: p99 });
    while (this.points.length && this.points[0].t < tSeconds - SPAN_S) this.points.shift();
  };

  Chart.prototype.last = function () {
    for (var i = this.points.length - 1; i >= 0; i--) if (this.points[i].p50 !== null) return this.points[i];
    return null;
  };

  // A round axis maximum at or above v: 1, 2, 5 x 10^k.
  function niceMax(v) {
    if (!(v > 0)) return 1;
    var base = Math.pow(10, Math.floor(Math.log10(v)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * base >= v) return steps[i] * base;
    return 10 * base;
  }

  Chart.prototype.draw = function (nowSeconds) {
    var c = this.canvas, dpr = root.devicePixelRatio || 1;
    var w = Math.max(1, Math.round(c.clientWidth * dpr)), h = Math.max(1, Math.round(c.clientHeight * dpr));
    if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
    var g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    var cw = c.clientWidth, ch = c.clientHeight, top = 16, bottom = ch - 4;
    g.clearRect(0, 0, cw, ch);
    var max = 0;
    this.points.forEach(function (p) { if (p.p99 !== null) max = Math.max(max, p.p99, p.p50); });
    max = niceMax(max);
    var x = function (t) { return cw - ((nowSeconds - t) / SPAN_S) * cw; };
    var y = function (v) { return bottom - (Math.min(v, max) / max) * (bottom - top); };

    g.strokeStyle = "#262b36"; g.lineWidth = 1;
    g.beginPath(); g.moveTo(0, top + 0.5); g.lineTo(cw, top + 0.5); g.moveTo(0, bottom + 0.5); g.lineTo(cw, bottom + 0.5); g.stroke();

    // p99 as a band down to p50, p50 as a line; gaps where there is no data.
    var self = this;
    g.fillStyle = this.colour; g.globalAlpha = 0.22;
    runs(this.points).forEach(function (run) {
      g.beginPath();
      run.forEach(function (p, i) { if (i === 0) g.moveTo(x(p.t), y(p.p99)); else g.lineTo(x(p.t), y(p.p99)); });
      for (var i = run.length - 1; i >= 0; i--) g.lineTo(x(run[i].t), y(run[i].p50));
      g.closePath(); g.fill();
    });
    g.globalAlpha = 1; g.strokeStyle = self.colour; g.lineWidth = 1.5;
    runs(this.points).forEach(function (run) {
      g.beginPath();
      run.forEach(function (p, i) { if (i === 0) g.moveTo(x(p.t), y(p.p50)); else g.lineTo(x(p.t), y(p.p50)); });
      if (run.length === 1) g.arc(x(run[0].t), y(run[0].p50), 1.5, 0, 2 * Math.PI);
      g.stroke();
    });

    g.font = "11px ui-monospace, monospace"; g.fillStyle = "#8a93a6"; g.textBaseline = "top";
    g.textAlign = "left"; g.fillText(fmt(max) + " ms", 2, 2);
    g.textAlign = "right"; g.fillText("60 s", cw - 2, 2);
  };

  // Consecutive points that have data.
  function runs(points) {
    var out = [], run = [];
    points.forEach(function (p) {
      if (p.p50 === null || p.p99 === null) { if (run.length) out.push(run); run = []; } else run.push(p);
    });
    if (run.length) out.push(run);
    return out;
  }

  function fmt(v) { return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(2); }

  root.FF = root.FF || {};
  root.FF.Chart = Chart;
  root.FF.niceMax = niceMax;
})(typeof window !== "undefined" ? window : globalThis);
