// Unit tests of the page's pure scripts (web/timecode.js, web/clock.js,
// web/chart.js), loaded the way the page loads them: as plain scripts that
// attach to a global FF. Run: node --test tests/web/
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import vm from "node:vm";
import { fileURLToPath } from "node:url";

const web = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "web");
function load(...names) {
  const context = vm.createContext({});
  for (const name of names) vm.runInContext(fs.readFileSync(path.join(web, name), "utf8"), context, { filename: name });
  return context.FF;
}

const NOW = 22563594123;  // a CLOCK_MONOTONIC microsecond stamp, ~6 h of uptime

function frame(width, rows, t) {
  const rgba = new Uint8ClampedArray(width * rows * 4).fill(128);
  load("timecode.js").timecode.drawTimecode(rgba, width, t);
  return rgba;
}

function mirror(rgba, width, rows) {
  const out = new Uint8ClampedArray(rgba.length);
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 4; c++) out[(y * width + x) * 4 + c] = rgba[(y * width + (width - 1 - x)) * 4 + c];
    }
  }
  return out;
}

test("strip rows: 2 cells of floor(W/64) px, none below 320 px", () => {
  const { timecode } = load("timecode.js");
  assert.equal(timecode.stripRows(640), 20);
  assert.equal(timecode.stripRows(1280), 40);
  assert.equal(timecode.stripRows(1000), 30);
  assert.equal(timecode.stripRows(319), 0);
});

test("reads a strip at several widths, exactly", () => {
  const { timecode } = load("timecode.js");
  for (const width of [320, 640, 1000, 1280, 1920]) {
    const rows = timecode.stripRows(width);
    for (const t of [NOW, NOW - 599e6, 2 ** 40 + 12345, 1]) {
      const reading = timecode.readTimecode(frame(width, rows, t), width, rows, t + 1000);
      assert.deepEqual({ ...reading }, { captureUs: t, mirrored: false }, `width ${width} t ${t}`);
    }
  }
});

test("reads a mirrored strip (a width that is no multiple of 64 too)", () => {
  const { timecode } = load("timecode.js");
  for (const width of [640, 1000]) {
    const rows = timecode.stripRows(width);
    const reading = timecode.readTimecode(mirror(frame(width, rows, NOW), width, rows), width, rows, NOW + 5000);
    assert.deepEqual({ ...reading }, { captureUs: NOW, mirrored: true });
  }
});

test("rejects a broken complement, implausible times and short input", () => {
  const { timecode } = load("timecode.js");
  const width = 640, rows = 20;
  const rgba = frame(width, rows, NOW);
  assert.equal(timecode.readTimecode(rgba, width, rows, NOW + 700e6), null, "over 10 minutes old");
  assert.equal(timecode.readTimecode(rgba, width, rows, NOW - 2e6), null, "2 s in the future");
  assert.equal(timecode.readTimecode(rgba, width, 10, NOW), null, "only band 1");
  const broken = rgba.slice();
  const x = 5 * 10 + 5, y = 15;  // band 2 of cell 5 set equal to band 1
  const p = (y * width + x) * 4, q = (5 * width + x) * 4;
  broken[p] = broken[p + 1] = broken[p + 2] = rgba[q];
  assert.equal(timecode.readTimecode(broken, width, rows, NOW), null);
  const noise = new Uint8ClampedArray(width * rows * 4).fill(200);
  assert.equal(timecode.readTimecode(noise, width, rows, NOW), null);
});

test("survives JPEG-like noise: values off by up to 100 levels still read", () => {
  const { timecode } = load("timecode.js");
  const width = 640, rows = 20, rgba = frame(width, rows, NOW);
  for (let i = 0; i < rgba.length; i++) if (i % 4 !== 3) rgba[i] = rgba[i] > 128 ? rgba[i] - 100 : rgba[i] + 100;
  assert.equal(timecode.readTimecode(rgba, width, rows, NOW).captureUs, NOW);
});

test("clock sync keeps the round trip with the lowest duration", async () => {
  const FF = load("clock.js");
  // Browser clock in ms; the server's clock runs 5 s ahead. Round trips of
  // 8, 2 and 6 ms, the server answering 1 ms after the request left.
  let now = 1000;
  const trips = [8, 2, 6];
  let i = 0;
  const sync = new FF.ClockSync(async () => {
    const rtt = trips[i++];
    const server = (now + 1) * 1000 + 5e6;
    now += rtt;
    return server;
  }, () => now);
  assert.equal(sync.synced(), false);
  assert.equal(sync.serverNowUs(), null);
  await sync.sync(3);
  assert.equal(sync.rttUs, 2000);
  assert.equal(sync.uncertaintyUs, 1000);
  // The 2 ms trip left at 1008 and the server read at 1009: offset 5 s, the
  // midpoint estimate is exact to within the uncertainty.
  assert.ok(Math.abs(sync.offsetUs - 5e6) <= sync.uncertaintyUs);
  assert.ok(Math.abs(sync.serverNowUs() - (now * 1000 + 5e6)) <= 1000);
});

test("clock sync skips failed and nonsense answers, keeps the old estimate if all fail", async () => {
  const FF = load("clock.js");
  let now = 0;
  const answers = [Promise.reject(new Error("down")), Promise.resolve("x"), Promise.resolve(7e6)];
  let i = 0;
  const sync = new FF.ClockSync(() => { now += 1; return answers[i++]; }, () => now);
  await sync.sync(3);
  assert.ok(sync.synced());
  const offset = sync.offsetUs;
  const failing = new FF.ClockSync(() => Promise.reject(new Error("down")), () => now);
  await failing.sync(4);
  assert.equal(failing.synced(), false);
  sync.fetchServerUs = () => Promise.reject(new Error("down"));
  await sync.sync(2);
  assert.equal(sync.offsetUs, offset);
});

test("rolling window: nearest-rank percentiles over the last span only", () => {
  const FF = load("clock.js");
  const w = new FF.RollingWindow(10000);
  assert.equal(w.quantile(0.5), null);
  for (let i = 1; i <= 100; i++) w.add(i, i);
  assert.equal(w.quantile(0.5), 50);
  assert.equal(w.quantile(0.99), 99);
  assert.equal(w.quantile(1), 100);
  w.add(10050, 1000);  // the first 49 fall out of the 10 s window
  assert.equal(w.count(), 52);
  assert.equal(w.quantile(1), 1000);
  w.prune(30000);
  assert.equal(w.count(), 0);
});

test("chart axis maximum is 1, 2 or 5 times a power of ten", () => {
  const FF = load("chart.js");
  assert.equal(FF.niceMax(0), 1);
  assert.equal(FF.niceMax(0.3), 0.5);
  assert.equal(FF.niceMax(1.7), 2);
  assert.equal(FF.niceMax(2), 2);
  assert.equal(FF.niceMax(37), 50);
  assert.equal(FF.niceMax(501), 1000);
});

test("the WebSocket header is parsed as docs/websocket.md lays it out", () => {
  const context = vm.createContext({ DataView, Uint8Array, Number });
  vm.runInContext(fs.readFileSync(path.join(web, "view.js"), "utf8"), context);
  const parse = context.FF.parseWsHeader;
  const buf = new ArrayBuffer(40), v = new DataView(buf);
  new Uint8Array(buf).set([0x46, 0x46, 0x57, 0x53]);
  v.setUint16(4, 1, true); v.setUint16(6, 32, true);
  v.setBigUint64(8, 77n, true); v.setBigUint64(16, BigInt(NOW), true);
  v.setUint16(24, 640, true); v.setUint16(26, 480, true);
  assert.deepEqual({ ...parse(buf) }, { length: 32, sequence: 77, captureUs: NOW, width: 640, height: 480 });
  assert.equal(parse(new ArrayBuffer(16)), null);
  v.setUint16(6, 64, true);
  assert.equal(parse(buf), null, "header longer than the message");
  new Uint8Array(buf)[0] = 0x47;
  assert.equal(parse(buf), null, "bad magic");
});
