// Unit tests of the grid page's pure parts (web/grid.js): api/streams read
// defensively, the tile's WebSocket path (scaled variant or not), states and
// figures. Loaded as the page loads it: a plain script attaching to FF; with
// no document it only defines the helpers. Run: node --test tests/web/
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import vm from "node:vm";
import { fileURLToPath } from "node:url";

const web = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "web");
function grid() {
  const context = vm.createContext({});
  vm.runInContext(fs.readFileSync(path.join(web, "grid.js"), "utf8"), context, { filename: "grid.js" });
  return context.FF.grid;
}
const plain = (v) => JSON.parse(JSON.stringify(v));  // objects of the vm's realm, compared by value

const CAM1 = {
  name: "cam1", index: 0, path: "streams/cam1/", source: "pattern:640x480@30", state: "live",
  width: 640, height: 480, fps: 29.9, viewers: 1, detector: "faces", detection_fps: 4.2,
  latency_ms: { p50: 12.3, p99: 20.1 }
};

test("parseStreams reads the documented fields", () => {
  const [s] = plain(grid().parseStreams({ streams: [CAM1] }));
  assert.deepEqual(s, {
    name: "cam1", index: 0, path: "streams/cam1/", source: "pattern:640x480@30", state: "live",
    width: 640, height: 480, fps: 29.9, viewers: 1, detector: "faces", detectionFps: 4.2, p50: 12.3, p99: 20.1
  });
});

test("parseStreams: missing or wrong fields are 0 or empty, bad entries and duplicates are dropped", () => {
  const list = plain(grid().parseStreams({
    streams: [null, 7, { name: "" }, { name: 3 }, { name: "a b" }, { name: "cam2", fps: "30", width: NaN, latency_ms: null },
      { name: "cam2", fps: 5 }]
  }));
  assert.deepEqual(list.map((s) => s.name), ["a b", "cam2"]);
  assert.equal(list[0].path, "streams/a%20b/", "no path: built from the name, escaped");
  assert.deepEqual([list[1].fps, list[1].width, list[1].p50, list[1].p99, list[1].state], [0, 0, 0, 0, ""]);
  for (const bad of [null, {}, { streams: {} }, { streams: "x" }, []]) assert.deepEqual(plain(grid().parseStreams(bad)), []);
});

test("socketPath: a scaled variant of wide sources, the stream itself when narrow, none while the size is unknown", () => {
  const g = grid();
  const at = (width) => g.socketPath({ path: "streams/cam1/", width });
  assert.equal(at(640), "streams/cam1/ws/stream?width=320&fps=10");
  assert.equal(at(1920), "streams/cam1/ws/stream?width=320&fps=10");
  assert.equal(at(320), "streams/cam1/ws/stream?fps=10", "320 wide: no variant");
  assert.equal(at(160), "streams/cam1/ws/stream?fps=10", "narrower than 320: width=320 would be refused");
  assert.equal(at(0), null);
  assert.equal(g.socketPath({ path: "streams/x/", width: 1280 }, 480, 5), "streams/x/ws/stream?width=480&fps=5");
});

test("stateLook: only live is live; every documented state has its badge", () => {
  const g = grid();
  assert.deepEqual(plain(g.stateLook("live")), { text: "live", cls: "ok", live: true });
  for (const [state, cls] of [["reconnecting", "bad"], ["no signal", "bad"], ["ended", "wait"], ["starting", "wait"]]) {
    assert.deepEqual(plain(g.stateLook(state)), { text: state, cls, live: false }, state);
  }
  assert.deepEqual(plain(g.stateLook("")), { text: "unknown", cls: "wait", live: false });
  assert.deepEqual(plain(g.stateLook("paused")), { text: "paused", cls: "wait", live: false });
});

test("figures: fps and latency, a dash when 0 (unknown)", () => {
  const g = grid();
  assert.equal(g.fmtFps(29.94), "30 fps");
  assert.equal(g.fmtFps(4.24), "4.2 fps");
  assert.equal(g.fmtFps(0), "\u2014 fps");
  assert.equal(g.fmtLatency(12.34, 20.1), "p50 12 / p99 20 ms");
  assert.equal(g.fmtLatency(2.34, 9.96), "p50 2.3 / p99 10.0 ms");
  assert.equal(g.fmtLatency(0, 0), "latency \u2014");
  assert.equal(g.fmtLatency(0, 5), "p50 \u2014 / p99 5.0 ms");
});

test("withToken carries ?token= as the full page does", () => {
  const g = grid();
  assert.equal(g.withToken("api/streams", null), "api/streams");
  assert.equal(g.withToken("api/streams", "s3cret"), "api/streams?token=s3cret");
  assert.equal(g.withToken("streams/cam1/ws/stream?fps=10", "a b&c"), "streams/cam1/ws/stream?fps=10&token=a%20b%26c");
});
