// The H.264 view in Debian's chromium: on http://127.0.0.1 (a secure
// context) the page opens /ws/h264, decodes it with WebCodecs and paints
// the newest frame on a canvas; its meter reads the timecode strip from
// those pixels. Checks: H.264 is the default there, frames render at about
// the source's rate, the meter measures a plausible latency, the bitrate is
// far below JPEG over WebSocket's, a joining page gets its first picture
// quickly, and ?token= carries to the socket. Skipped by a binary without
// /ws/h264. Run: node --test tests/e2e/h264.test.mjs
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { artifactPath, getJson, launchBrowser, sleep, startServer, until } from "./harness.mjs";

const SOURCE = ["--source", "pattern:640x480@30", "--detector", "none"];

async function newPage(browser, url) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(url);
  return { page, errors };
}

// Frames shown over `seconds` from now: {frames, fps, p50, p99}.
async function measure(page, seconds) {
  const start = await page.evaluate(() => performance.now());
  await sleep(seconds * 1000);
  const frames = await page.evaluate((t) => window.freshframe.recent().filter((f) => f.t > t), start);
  const lat = frames.map((f) => f.latencyMs).sort((a, b) => a - b);
  const q = (p) => (lat.length ? lat[Math.min(lat.length, Math.max(1, Math.ceil(p * lat.length))) - 1] : null);
  return { frames: frames.length, fps: frames.length / seconds, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: q(1) };
}

async function serverHasH264(url) {
  const r = await fetch(`${url}ws/h264`);  // a plain GET: 426 where the endpoint exists, 404 where not
  return r.status !== 404;
}

describe("the H.264 (WebCodecs) view", () => {
  let server, browser, page, errors, skip = "";

  before(async () => {
    server = await startServer(SOURCE);
    if (!(await serverHasH264(server.url))) { skip = "this binary has no /ws/h264"; return; }
    browser = await launchBrowser();
    ({ page, errors } = await newPage(browser, server.url));
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  test("is the default on 127.0.0.1, renders, and its meter measures at the source's rate", async (t) => {
    if (skip) return t.skip(skip);
    assert.equal(await page.evaluate(() => window.isSecureContext && typeof VideoDecoder), "function");
    assert.equal(await page.evaluate(() => window.freshframe.view()), "h264");
    assert.equal(await page.evaluate(() => window.freshframe.why()), "", "nothing to explain");
    assert.equal(await page.locator("#view-h264").getAttribute("aria-pressed"), "true");
    await until("60 frames measured", async () => (await page.evaluate(() => window.freshframe.latency().count)) >= 60, 30000);
    const size = await page.evaluate(() => { const c = document.getElementById("h264-canvas"); return [c.width, c.height, c.hidden]; });
    assert.deepEqual(size, [640, 480, false]);
    assert.equal(await page.evaluate(() => document.getElementById("stream").hidden), true, "no <img> stream");
    const m = await measure(page, 5);
    // 30 fps at the source; a loaded 2-core machine may paint fewer.
    assert.ok(m.fps >= 20 && m.fps <= 32, `${m.fps} fps shown`);
    assert.ok(m.p50 > 0 && m.p50 < 500, `p50 ${m.p50} ms`);
    assert.ok(m.p99 >= m.p50 && m.p99 < 2000, `p99 ${m.p99} ms`);
    const state = await page.evaluate(() => window.freshframe.viewState());
    assert.match(state, /H\.264: \d+ received/);
    assert.match(state, /avc1\.[0-9A-F]{6}/, "the decoder was configured from the SPS");
    assert.match(await page.locator("#view-info").textContent(), /WebCodecs/);
    const clients = (await getJson(`${server.url}api/stats`)).clients;
    assert.ok(clients.some((c) => String(c.path).startsWith("/ws/h264")), "the page is a /ws/h264 client");
    console.log(`# H.264 WebCodecs 640x480@30: ${m.fps.toFixed(1)} fps shown, browser p50 ${m.p50.toFixed(1)} p90 ${m.p90.toFixed(1)} p99 ${m.p99.toFixed(1)} max ${m.max.toFixed(1)} ms (${m.frames} frames); ${state}`);
    await page.screenshot({ path: artifactPath("page-h264.png"), fullPage: true });
  });

  test("shows its bitrate, far below JPEG over WebSocket's", async (t) => {
    if (skip) return t.skip(skip);
    const h264 = await until("an H.264 bitrate", () => page.evaluate(() => window.freshframe.bitrateKbps()));
    assert.match(await page.locator("#bitrate").textContent(), /^bitrate: [\d.]+ kbit\/s$/);
    await page.locator("#view-ws").click();
    await sleep(3000);
    const jpeg = await until("a JPEG bitrate", () => page.evaluate(() => window.freshframe.bitrateKbps()));
    console.log(`# bitrate 640x480@30: H.264 ${h264.toFixed(0)} kbit/s, JPEG over WebSocket ${jpeg.toFixed(0)} kbit/s`);
    assert.ok(h264 > 0 && h264 < jpeg / 2, `H.264 ${h264} kbit/s vs JPEG ${jpeg} kbit/s`);
    // Back to H.264 by a click: the choice is kept in the URL.
    await page.locator("#view-h264").click();
    assert.match(page.url(), /view=h264/);
    const start = await page.evaluate(() => performance.now());
    await until("H.264 frames again", async () =>
      (await page.evaluate((s) => window.freshframe.recent().filter((f) => f.t > s).length, start)) >= 10);
    assert.deepEqual(errors, [], "no script errors on the page");
  });

  test("a joining page gets its first picture quickly (the server sends a keyframe first)", async (t) => {
    if (skip) return t.skip(skip);
    const joined = await newPage(browser, server.url);
    try {
      const ms = await until("the first H.264 picture", () => joined.page.evaluate(() => {
        const r = window.freshframe.recent();
        return r.length ? r[0].t : null;
      }), 15000, 50);
      // From navigation start: the clock sync and the page's own load come first.
      console.log(`# first H.264 picture ${ms.toFixed(0)} ms after the page's navigation start`);
      assert.ok(ms < 5000, `first picture after ${ms} ms`);
      assert.deepEqual(joined.errors, []);
    } finally {
      await joined.page.close();
    }
  });
});

describe("the H.264 view after a gap", () => {
  test("skips to a keyframe, asks the server for one, and shows frames again", async (t) => {
    const server = await startServer(SOURCE);
    let browser;
    try {
      if (!(await serverHasH264(server.url))) return t.skip("this binary has no /ws/h264");
      browser = await launchBrowser();
      const page = await browser.newPage();
      const errors = [];
      page.on("pageerror", (e) => errors.push(e.message));
      // Lose messages the way a network would: window.dropNext = N drops
      // the next N binary messages before the page sees them.
      await page.addInitScript(() => {
        window.dropNext = 0;
        const Real = window.WebSocket;
        window.WebSocket = class extends Real {
          set onmessage(fn) {
            super.onmessage = (e) => {
              if (e.data instanceof ArrayBuffer && window.dropNext > 0) { window.dropNext--; return; }
              fn(e);
            };
          }
          get onmessage() { return super.onmessage; }
        };
      });
      await page.goto(server.url);
      await until("30 frames measured", async () => (await page.evaluate(() => window.freshframe.latency().count)) >= 30, 30000);
      const counts = async () => {
        const s = await page.evaluate(() => window.freshframe.viewState());
        return { skipped: Number(/(\d+) skipped to a keyframe/.exec(s)[1]), asked: Number(/(\d+) key requests/.exec(s)[1]) };
      };
      const before = await counts();
      await page.evaluate(() => { window.dropNext = 3; });
      const after = await until("a key request after the gap", async () => {
        const c = await counts();
        return c.asked > before.asked ? c : null;
      });
      assert.ok(after.skipped > before.skipped, "the deltas after the gap were not decoded");
      const start = await page.evaluate(() => performance.now());
      await until("frames after the keyframe", async () =>
        (await page.evaluate((s) => window.freshframe.recent().filter((f) => f.t > s).length, start)) >= 15, 15000);
      console.log(`# after a gap: ${await page.evaluate(() => window.freshframe.viewState())}`);
      assert.deepEqual(errors, []);
    } finally {
      if (browser) await browser.close();
      await server.stop();
    }
  });
});

describe("the H.264 view with --token", () => {
  test("opens /ws/h264 with ?token=", async (t) => {
    const server = await startServer([...SOURCE, "--token", "s3cret-token"]);
    let browser;
    try {
      if ((await fetch(`${server.url}ws/h264?token=s3cret-token`)).status === 404) return t.skip("this binary has no /ws/h264");
      browser = await launchBrowser();
      const { page, errors } = await newPage(browser, `${server.url}?token=s3cret-token`);
      assert.equal(await page.evaluate(() => window.freshframe.view()), "h264");
      await until("H.264 frames through the token", async () => (await page.evaluate(() => window.freshframe.latency().count)) >= 10, 20000);
      assert.deepEqual(errors, []);
    } finally {
      if (browser) await browser.close();
      await server.stop();
    }
  });
});

describe("the page with --h264-encoder none", () => {
  test("falls back to MJPEG and gives the server's reasons", async (t) => {
    const server = await startServer([...SOURCE, "--h264-encoder", "none"]);
    let browser;
    try {
      if ((await fetch(`${server.url}ws/h264`)).status !== 404) return t.skip("this binary serves H.264 anyway");
      browser = await launchBrowser();
      const { page, errors } = await newPage(browser, server.url);
      await until("the fallback to MJPEG", async () => (await page.evaluate(() => window.freshframe.view())) === "mjpeg");
      assert.equal(await page.evaluate(() => window.freshframe.why()),
        "H.264 is not available on this server and WebRTC is not available on this server: showing MJPEG");
      assert.equal(await page.locator("#view-h264").isDisabled(), true);
      await until("MJPEG frames measured", async () => (await page.evaluate(() => window.freshframe.latency().count)) >= 20, 20000);
      assert.deepEqual(errors, []);
    } finally {
      if (browser) await browser.close();
      await server.stop();
    }
  });
});
