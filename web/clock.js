// The server's clock as seen from the browser, and rolling percentiles.
//
// ClockSync estimates offset = server CLOCK_MONOTONIC - browser clock the
// way NTP does: ask the server for its time (GET api/clock) several times,
// and from the round trip with the lowest duration take
//   offset = server_us - (sent + received) / 2,  uncertainty = +-rtt / 2
// (the server read its clock somewhere inside that round trip). The browser
// clock is performance.now(): monotonic, unlike Date.now(), which a time
// adjustment can step. No DOM here: node's test runner checks it too.
(function (root) {
  "use strict";

  // fetchServerUs: () => Promise<number> (the server's now_us);
  // nowMs: () => number (performance.now).
  function ClockSync(fetchServerUs, nowMs) {
    this.fetchServerUs = fetchServerUs;
    this.nowMs = nowMs;
    this.offsetUs = null;       // null until the first successful sync
    this.uncertaintyUs = null;  // +- around offsetUs
    this.rttUs = null;
    this.syncedAtMs = null;
  }

  // Runs `rounds` round trips one after the other and keeps the best; the
  // previous estimate stays if every round trip fails. Resolves to this.
  ClockSync.prototype.sync = function (rounds) {
    var self = this, best = null, left = rounds;
    function one() {
      if (left-- <= 0) return Promise.resolve();
      var sent = self.nowMs();
      return self.fetchServerUs().then(function (serverUs) {
        var received = self.nowMs();
        var rttUs = (received - sent) * 1000;
        if (typeof serverUs === "number" && isFinite(serverUs) && rttUs >= 0 &&
            (best === null || rttUs < best.rttUs)) {
          best = { rttUs: rttUs, offsetUs: serverUs - (sent + received) * 500 };
        }
      }, function () { /* a failed round trip is skipped */ }).then(one);
    }
    return one().then(function () {
      if (best !== null) {
        self.offsetUs = best.offsetUs;
        self.rttUs = best.rttUs;
        self.uncertaintyUs = best.rttUs / 2;
        self.syncedAtMs = self.nowMs();
      }
      return self;
    });
  };

  ClockSync.prototype.synced = function () { return this.offsetUs !== null; };

  // The server's CLOCK_MONOTONIC now, in microseconds (null before a sync).
  ClockSync.prototype.serverNowUs = function () {
    return this.offsetUs === null ? null : this.nowMs() * 1000 + this.offsetUs;
  };

  // Values with the time they were taken; percentiles over the last spanMs.
  function RollingWindow(spanMs) {
    this.spanMs = spanMs;
    this.times = [];
    this.values = [];
  }
  RollingWindow.prototype.add = function (timeMs, value) {
    this.times.push(timeMs);
    this.values.push(value);
    this.prune(timeMs);
  };
  RollingWindow.prototype.prune = function (nowMs) {
    var drop = 0;
    while (drop < this.times.length && this.times[drop] < nowMs - this.spanMs) drop++;
    if (drop > 0) {
      this.times.splice(0, drop);
      this.values.splice(0, drop);
    }
  };
  RollingWindow.prototype.count = function () { return this.values.length; };
  // Nearest-rank percentile (q in [0, 1]) of the values in the window; null if empty.
  RollingWindow.prototype.quantile = function (q) {
    return quantile(this.values, q);
  };

  function quantile(values, q) {
    if (values.length === 0) return null;
    var sorted = values.slice().sort(function (a, b) { return a - b; });
    var rank = Math.ceil(q * sorted.length);
    return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
  }

  root.FF = root.FF || {};
  root.FF.ClockSync = ClockSync;
  root.FF.RollingWindow = RollingWindow;
  root.FF.quantile = quantile;
})(typeof window !== "undefined" ? window : globalThis);
