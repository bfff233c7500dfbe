// The grid page (web/grid.html) in Debian's chromium, against the real
// `freshframe run --config FILE` with three pattern streams: one tile per
// stream with its live picture, state and figures; the tiles are WebSockets
// (no MJPEG <img>, so the browser's 6 HTTP/1.1 connections per host stay
// free); a click opens streams/NAME/, whose page plays; with one stream, /
// is the full page, not the grid. Run: node --test tests/e2e/grid.test.mjs
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { artifactPath, BINARY, getJson, launchBrowser, sleep, startConfigServer, startServer, until } from "./harness.mjs";

// The only reason to skip: a binary without `run --config` (issue 16 not
// built yet). Anything else that fails is a failure.
function configUnsupported() {
  if (!fs.existsSync(BINARY)) return false;  // startServer reports the missing binary
  const help = spawnSync(BINARY, ["run", "--help"], { encoding: "utf8" });
  return /--config\b/.test(`${help.stdout}${help.stderr}`) ? false
    : `${BINARY} has no \`run --config\`: the grid needs a server of several streams`;
}
const SKIP = configUnsupported();

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "freshframe-grid-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));
// A TOML config of `streams` ({name: {key: value}}) and `server` keys.
function writeConfig(name, streams, server = {}) {
  const value = (v) => (typeof v === "string" ? JSON.stringify(v) : String(v));
  let text = "[server]\nport = 0\n";
  for (const [k, v] of Object.entries(server)) text += `${k} = ${value(v)}\n`;
  for (const [stream, keys] of Object.entries(streams)) {
    text += `\n[streams.${stream}]\n`;
    for (const [k, v] of Object.entries(keys)) text += `${k} = ${value(v)}\n`;
  }
  const file = path.join(tmp, name);
  fs.writeFileSync(file, text);
  return file;
}

// cam1 is wider than a tile (its tile is the 320 px variant); cam2 and
// cam3 are 320 px, served as they are.
const STREAMS = {
  cam1: { source: "pattern:640x480@15", detector: "none" },
  cam2: { source: "pattern:320x240@15", detector: "none" },
  cam3: { source: "pattern:320x240@10", detector: "none" }
};

async function openPage(browser, url) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(url);
  return { page, errors };
}
const tiles = (page) => page.evaluate(() => window.freshframe.tiles());
// A checksum of each tile's canvas pixels, by name.
const pixelSums = (page) => page.evaluate(() => {
  const out = {};
  document.querySelectorAll(".cam").forEach((a) => {
    const c = a.querySelector("canvas");
    if (!c.width || !c.height) return;
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let sum = 0;
    for (let i = 0; i < d.length; i += 7) sum = (sum * 31 + d[i]) % 1000000007;
    out[a.dataset.name] = sum;
  });
  return out;
});

describe("grid of three streams", { skip: SKIP }, () => {
  let server, browser, page, errors, cdp;
  const requests = [], sockets = [], connections = new Map();  // HTTP connection id -> URLs
  const socketBytes = new Map();  // CDP request id -> {url, bytes, messages}

  before(async () => {
    server = await startConfigServer(writeConfig("three.toml", STREAMS));
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("request", (r) => requests.push(r.url()));
    page.on("websocket", (ws) => sockets.push(ws.url()));
    // Which HTTP/1.1 connection carried each response (WebSockets are not
    // in the browser's pool of 6 per host and do not show up here).
    cdp = await page.context().newCDPSession(page);
    await cdp.send("Network.enable");
    cdp.on("Network.responseReceived", (e) => {
      const id = String(e.response.connectionId);
      if (!connections.has(id)) connections.set(id, []);
      connections.get(id).push(e.response.url);
    });
    // Bytes each tile's socket receives, for the cost printed below.
    cdp.on("Network.webSocketCreated", (e) => { socketBytes.set(e.requestId, { url: e.url, bytes: 0, messages: 0 }); });
    cdp.on("Network.webSocketFrameReceived", (e) => {
      const s = socketBytes.get(e.requestId);
      if (s) { s.bytes += Math.floor(e.response.payloadData.length * 3 / 4); s.messages++; }
    });
    await page.goto(server.url);
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  test("one tile per stream, named, in the config's order, live with fps and latency", async () => {
    const streams = (await getJson(`${server.url}api/streams`)).streams;
    assert.deepEqual(streams.map((s) => s.name), ["cam1", "cam2", "cam3"]);
    await until("3 tiles", async () => (await tiles(page)).length === 3);
    assert.deepEqual(await page.locator(".cam .name").allTextContents(), ["cam1", "cam2", "cam3"]);
    await until("every badge to say live", async () =>
      (await page.locator(".cam .badge").allTextContents()).every((t) => t === "live"));
    await until("fps > 0 on every tile", async () =>
      (await page.locator(".cam .fps").allTextContents()).every((t) => parseFloat(t) > 0));
    await until("latency figures on every tile", async () =>
      (await page.locator(".cam .lat").allTextContents()).every((t) => /p50 [\d.]+ \/ p99 [\d.]+ ms/.test(t)));
    assert.match(await page.locator("#count").textContent(), /3 streams, 3 live/);
    assert.match(await page.locator("#status").textContent(), /connected/);
  });

  test("each tile's picture changes over time, the wide stream as a 320 px variant", async () => {
    const first = await until("a picture in every tile", async () => {
      const t = await tiles(page);
      return t.every((x) => x.drawn > 0) ? t : null;
    });
    const sums = await pixelSums(page);
    await sleep(1500);
    const later = await until("10 more frames in every tile", async () => {
      const t = await tiles(page);
      return t.every((x, i) => x.sequence >= first[i].sequence + 10 && x.drawn >= 10) ? t : null;
    }, 20000);
    const sums2 = await pixelSums(page);
    for (const name of ["cam1", "cam2", "cam3"]) assert.notEqual(sums2[name], sums[name], `${name}'s pixels changed`);
    const byName = Object.fromEntries(later.map((t) => [t.name, t]));
    assert.deepEqual([byName.cam1.width, byName.cam1.height], [320, 240], "cam1 640x480 drawn at 320x240");
    assert.equal(byName.cam1.path, "streams/cam1/ws/stream?width=320&fps=10");
    assert.equal(byName.cam2.path, "streams/cam2/ws/stream?fps=10", "a 320 px stream needs no variant");
    await page.screenshot({ path: artifactPath("grid.png"), fullPage: true });
  });

  test("no tile holds an HTTP connection: WebSockets only, the HTTP pool stays free", async () => {
    assert.ok(!requests.some((u) => /stream\.mjpg|snapshot\.jpg/.test(u)), `no MJPEG or snapshot request: ${requests.join(" ")}`);
    const tileSockets = new Set(sockets.map((u) => new URL(u).pathname));
    assert.deepEqual([...tileSockets].sort(), ["/streams/cam1/ws/stream", "/streams/cam2/ws/stream", "/streams/cam3/ws/stream"]);
    // Seen from the server: each stream has one streaming client, the tile's socket.
    for (const name of ["cam1", "cam2", "cam3"]) {
      const stats = await getJson(`${server.url}streams/${name}/api/stats`);
      const paths = stats.clients.map((c) => c.path);
      assert.equal(paths.length, 1, `${name}'s clients: ${paths.join(" ")}`);
      assert.match(paths[0], /ws\/stream\?/);
    }
    const polls = requests.filter((u) => /\/api\/streams$/.test(u)).length;
    await sleep(2500);
    assert.ok(requests.filter((u) => /\/api\/streams$/.test(u)).length >= polls + 1, "api/streams keeps being polled");
    // What a tile costs (printed, not asserted): bytes and messages per
    // second over 3 s, and the server's variant encode for cam1's 320 px tile.
    const before = new Map([...socketBytes].map(([id, s]) => [id, { ...s }]));
    await sleep(3000);
    for (const [id, s] of socketBytes) {
      const b = before.get(id) || { bytes: 0, messages: 0 };
      console.log(`# tile ${new URL(s.url).pathname}: ${((s.bytes - b.bytes) / 3 / 1024).toFixed(1)} KiB/s, ${((s.messages - b.messages) / 3).toFixed(1)} messages/s`);
    }
    const variants = (await getJson(`${server.url}streams/cam1/api/stats`)).stages?.encode_variants;
    if (variants) console.log(`# cam1's 320 px variant: ${variants.fps} encodes/s, work p50 ${variants.work_ms?.p50} ms p99 ${variants.work_ms?.p99} ms`);
    const http = [...connections.entries()].filter(([, urls]) => urls.some((u) => u.startsWith("http")));
    console.log(`# grid: ${http.length} HTTP connection(s) for ${requests.length} requests, ${tileSockets.size} WebSockets`);
    assert.ok(http.length < 6, `HTTP connections: ${JSON.stringify(http)}`);
    assert.deepEqual(errors, [], "no script errors on the grid");
  });

  test("a click opens streams/NAME/, the stream's full page, and it plays", async () => {
    await page.locator('.cam[data-name="cam2"]').click();
    await page.waitForURL(/\/streams\/cam2\/$/);
    // The full page opens its default view: H.264 on 127.0.0.1 where the
    // binary has it (docs/page.md), MJPEG otherwise.
    const view = await page.evaluate(() => window.freshframe.view());
    const shown = { mjpeg: "stream", h264: "h264-canvas" }[view];
    assert.ok(shown, `view ${view}`);
    await until("the full page to show a 320 px frame", () => page.evaluate((id) => {
      const el = document.getElementById(id);
      return (el.naturalWidth || el.width) === 320;
    }, shown));
    const start = await page.evaluate(() => performance.now());
    const frames = await until("10 frames on the full page", async () => {
      const f = await page.evaluate((t) => window.freshframe.recent().filter((x) => x.t > t), start);
      return f.length >= 10 ? f : null;
    }, 20000);
    assert.ok(new Set(frames.map((f) => f.captureUs)).size >= 10, "each shown frame has its own capture stamp");
    assert.ok([...requests, ...sockets].some((u) => /\/streams\/cam2\/(stream\.mjpg\?|ws\/h264)/.test(u)), "the page's stream is cam2's");
    assert.match(await page.locator("#src-line").textContent(), /pattern:320x240@15/);
    await page.screenshot({ path: artifactPath("grid-click.png") });
    assert.deepEqual(errors, []);
  });
});

describe("grid with --token and a source that cannot be opened", { skip: SKIP }, () => {
  test("the token reaches every request; the dead stream shows its state", async () => {
    const config = writeConfig("token.toml", {
      good: { source: "pattern:320x240@15", detector: "none" },
      dead: { source: "http://127.0.0.1:9/none.mjpg", detector: "none" }
    }, { token: "gr1d-token" });
    const server = await startConfigServer(config);
    const browser = await launchBrowser();
    try {
      assert.equal((await fetch(`${server.url}api/streams`)).status, 401);
      const { page, errors } = await openPage(browser, `${server.url}?token=gr1d-token`);
      await until("2 tiles", async () => (await tiles(page)).length === 2);
      await until("good to play", async () => (await tiles(page)).find((t) => t.name === "good").drawn >= 5);
      await until("dead to say it is not live", async () =>
        /reconnecting|no signal/.test(await page.locator('.cam[data-name="dead"] .badge').textContent()));
      assert.ok(await page.locator('.cam[data-name="dead"] .over').isVisible(), "the state is shown over the picture");
      assert.equal(await page.locator('.cam[data-name="good"] .over').isVisible(), false);
      const href = await page.locator('.cam[data-name="good"]').getAttribute("href");
      assert.equal(href, "streams/good/?token=gr1d-token");
      await page.screenshot({ path: artifactPath("grid-token.png") });
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await server.stop();
    }
  });
});

describe("one stream", () => {
  for (const [what, start] of [
    ["flags", () => startServer(["--source", "pattern:320x240@15", "--detector", "none"])],
    ["a config of one stream", () => startConfigServer(writeConfig("one.toml", { only: STREAMS.cam2 }))]
  ]) {
    test(`from ${what}: / is the stream's full page, not the grid`, { skip: what !== "flags" && SKIP }, async () => {
      const server = await start();
      try {
        const html = await (await fetch(server.url)).text();
        assert.match(html, /id="view-mjpeg"/, "index.html");
        assert.doesNotMatch(html, /id="grid"/);
      } finally {
        await server.stop();
      }
    });
  }
});
