// The timecode strip (shared/timecode.md) read from RGBA pixels, as a
// browser gets them from getImageData. Pure functions: no DOM, so node's
// test runner checks them too (tests/web/).
(function (root) {
  "use strict";
  var BITS = 64;
  var TWO_32 = 4294967296;
  var PAST_US = 600e6;  // a reading is plausible from 10 minutes before now...
  var FUTURE_US = 1e6;  // ...to 1 second after it

  // Rows of the strip for a frame `width` pixels wide; 0 when it has none.
  function stripRows(width) {
    var cell = Math.floor(width / BITS);
    return width < 320 ? 0 : 2 * cell;
  }

  function gray(rgba, i) {
    return 0.299 * rgba[i] + 0.587 * rgba[i + 1] + 0.114 * rgba[i + 2];
  }

  // The 64 bits as microseconds, read left to right or, for a mirrored
  // frame, right to left; null unless band 2 is band 1's exact complement.
  // A Number holds it exactly: CLOCK_MONOTONIC stays below 2^53 us for
  // 285 years of uptime.
  function readBands(rgba, width, mirrored) {
    var cell = Math.floor(width / BITS), half = Math.floor(cell / 2);
    var row1 = half * width, row2 = (cell + half) * width;
    var hi = 0, lo = 0;
    for (var i = 0; i < BITS; i++) {
      var x = i * cell + half;
      if (mirrored) x = width - 1 - x;
      var bit = gray(rgba, (row1 + x) * 4) >= 128 ? 1 : 0;
      var complement = gray(rgba, (row2 + x) * 4) >= 128 ? 1 : 0;
      if (bit === complement) return null;
      if (i < 32) hi = hi * 2 + bit;
      else lo = lo * 2 + bit;
    }
    return hi * TWO_32 + lo;
  }

  // Reads the strip from the top `rows` rows of an RGBA image `width` wide.
  // `nowUs` is the server's CLOCK_MONOTONIC now (see clock.js), which picks
  // the plausible reading of the two directions. Returns
  // {captureUs, mirrored} or null when there is no readable strip.
  function readTimecode(rgba, width, rows, nowUs) {
    var need = stripRows(width);
    if (need === 0 || rows < need || rgba.length < need * width * 4) return null;
    var plausible = function (t) { return t !== null && t >= nowUs - PAST_US && t <= nowUs + FUTURE_US; };
    var asIs = readBands(rgba, width, false);
    if (plausible(asIs)) return { captureUs: asIs, mirrored: false };
    var flipped = readBands(rgba, width, true);
    if (plausible(flipped)) return { captureUs: flipped, mirrored: true };
    return null;
  }

  // Draws a strip for `t` into an RGBA buffer (for tests and the page's
  // self-check): white is 1, black is 0.
  function drawTimecode(rgba, width, t) {
    var cell = Math.floor(width / BITS);
    var hi = Math.floor(t / TWO_32), lo = t - hi * TWO_32;
    for (var i = 0; i < BITS; i++) {
      var bit = i < 32 ? Math.floor(hi / Math.pow(2, 31 - i)) % 2 : Math.floor(lo / Math.pow(2, 63 - i)) % 2;
      for (var y = 0; y < 2 * cell; y++) {
        var value = (y < cell ? bit : 1 - bit) ? 255 : 0;
        for (var x = i * cell; x < (i + 1) * cell; x++) {
          var p = (y * width + x) * 4;
          rgba[p] = rgba[p + 1] = rgba[p + 2] = value;
          rgba[p + 3] = 255;
        }
      }
    }
  }

  root.FF = root.FF || {};
  root.FF.timecode = { stripRows: stripRows, readTimecode: readTimecode, drawTimecode: drawTimecode };
})(typeof window !== "undefined" ? window : globalThis);
