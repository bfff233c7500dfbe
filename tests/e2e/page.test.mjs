// The page in a real browser: Debian's chromium driven by playwright-core.
// One `freshframe run` on the test pattern (which carries the timecode strip
// and a face), one browser; the tests run in order against them and each
// bounds its waits. Screenshots go to build/e2e-artifacts/ (or
// $FRESHFRAME_ARTIFACTS). Run: node --test tests/e2e/
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { artifactPath, getJson, launchBrowser, runProbe, sleep, startServer, until } from "./harness.mjs";

const SOURCE = ["--source", "pattern:640x480@30", "--detector", "faces"];

async function newPage(browser, url) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(url);
  return { page, errors };
}

// Frames the page has shown since `since` (performance.now ms), read from
// their strips.
async function shownSince(page, since) {
  return page.evaluate((t) => window.freshframe.recent().filter((f) => f.t > t), since);
}

async function meterAfterFrames(page, frames, timeoutMs = 20000) {
  return until(`${frames} frames measured by the page`, async () => {
    const m = await page.evaluate(() => window.freshframe.latency());
    return m.count >= frames ? m : null;
  }, timeoutMs);
}

describe("page", () => {
  let server, browser, page, errors;

  before(async () => {
    server = await startServer(SOURCE);
    browser = await launchBrowser();
    // The MJPEG view by choice: on 127.0.0.1 the page's default is H.264 (h264.test.mjs).
    ({ page, errors } = await newPage(browser, `${server.url}?view=mjpeg`));
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
  });

  test("the MJPEG view renders and its picture changes", async () => {
    await until("the <img> to get a frame", () => page.evaluate(() => document.getElementById("stream").naturalWidth === 640));
    const start = await page.evaluate(() => performance.now());
    const frames = await until("10 new frames on screen", async () => {
      const f = await shownSince(page, start);
      return f.length >= 10 ? f : null;
    });
    assert.ok(new Set(frames.map((f) => f.captureUs)).size >= 10, "each shown frame has its own capture stamp");
    const first = await page.locator("#video").screenshot();
    await sleep(500);
    const second = await page.locator("#video").screenshot();
    assert.notDeepEqual(first, second, "the picture changes over time");
    assert.equal(await page.evaluate(() => window.freshframe.view()), "mjpeg");
  });

  test("the latency meter is plausible and agrees with probe", async () => {
    await meterAfterFrames(page, 60);
    const [probe] = await Promise.all([runProbe(`${server.url}stream.mjpg`, 4), sleep(4000)]);
    const m = await page.evaluate(() => window.freshframe.latency());
    assert.ok(m.p50 > 0 && m.p50 < 500, `browser p50 ${m.p50} ms`);
    assert.ok(m.p99 >= m.p50 && m.p99 < 2000, `browser p99 ${m.p99} ms`);
    assert.equal(probe.failed_clients, 0);
    assert.ok(probe.latency_ms.count > 30, `probe measured ${probe.latency_ms.count} frames`);
    // The browser adds decoding and painting (up to a display frame) to what
    // probe sees at reception; on a loaded 2-core machine, allow a lot.
    assert.ok(Math.abs(m.p50 - probe.latency_ms.p50) < 150,
      `browser p50 ${m.p50.toFixed(1)} ms vs probe p50 ${probe.latency_ms.p50} ms`);
    assert.ok(m.uncertaintyUs !== null && m.uncertaintyUs < 50000, `clock uncertainty ${m.uncertaintyUs} us`);
    const shown = await page.locator("#lat-p50").textContent();
    assert.ok(Number(shown) > 0 && Number(shown) < 500, `#lat-p50 shows "${shown}"`);
    assert.match(await page.locator("#clock-detail").textContent(), /\u00b1/);
    console.log(`# MJPEG 640x480: browser p50 ${m.p50.toFixed(1)} p99 ${m.p99.toFixed(1)} ms (${m.count} frames), probe p50 ${probe.latency_ms.p50} p99 ${probe.latency_ms.p99} ms, clock +-${(m.uncertaintyUs / 1000).toFixed(2)} ms`);
  });

  test("stats, stage charts and detections update", async () => {
    const uptime = await page.locator("#uptime").textContent();
    await until("the uptime to change", async () => (await page.locator("#uptime").textContent()) !== uptime);
    const captureFps = await page.locator("#stages tr:first-child td:nth-child(2)").textContent();
    assert.ok(Number(captureFps) > 20, `capture fps in the stages table: ${captureFps}`);
    for (const chart of ["capture", "inference", "encode", "send", "screen"]) {
      await until(`the ${chart} chart's figures`, async () => /\d/.test(await page.locator(`#chart-${chart}-value`).textContent()));
    }
    await until("a face in the detections list", async () => /face/.test(await page.locator("#detections").textContent()), 20000);
  });

  test("the controls change what the server does", async () => {
    const stats = () => getJson(`${server.url}api/stats`);
    await until("the controls to load", () => page.evaluate(() => !document.getElementById("c-quality").disabled));
    assert.equal((await stats()).detector_enabled, true);
    await page.locator("#c-detector").uncheck();
    await until("the detector to be off in /api/stats", async () => (await stats()).detector_enabled === false);
    await until("the detections list to say so", async () => /detector off|nothing detected/.test(await page.locator("#detections").textContent()));
    await page.locator("#c-quality").fill("40");
    await until("quality 40 in /api/stats", async () => (await stats()).quality === 40);
    await page.locator("#c-overlay").selectOption("inferred");
    await until("overlay inferred in /api/stats", async () => (await stats()).overlay === "inferred");
    await page.locator("#c-overlay").selectOption("latest");
    await page.locator("#c-detector").check();
    await until("the detector to be on again", async () => (await stats()).detector_enabled === true);
    // Mirrored, the strip is read right to left: the meter keeps measuring.
    await page.locator("#c-mirror").check();
    await until("mirror in /api/stats", async () => (await stats()).config.mirror === true);
    const start = await page.evaluate(() => performance.now());
    await until("frames measured while mirrored", async () => (await shownSince(page, start + 500)).length >= 10);
    await page.locator("#c-mirror").uncheck();
    await until("mirror off", async () => (await stats()).config.mirror === false);
    // The server may apply the change before the page has read the reply.
    await until("the page to report the change applied", async () => /applied/.test(await page.locator("#c-msg").textContent()));
    await page.screenshot({ path: artifactPath("page-mjpeg.png"), fullPage: true });
  });

  test("the WebSocket view renders on a canvas and is measured too", async () => {
    await page.locator("#view-ws").click();
    assert.equal(await page.evaluate(() => window.freshframe.view()), "ws");
    assert.match(page.url(), /view=ws/);
    await until("the WebSocket stream in the clients list", async () =>
      (await getJson(`${server.url}api/stats`)).clients.some((c) => c.path.startsWith("/ws/stream")));
    assert.equal(await page.evaluate(() => document.getElementById("stream").hidden), true, "the <img> is gone");
    const start = await page.evaluate(() => performance.now());
    const frames = await until("30 WebSocket frames on the canvas", async () => {
      const f = await shownSince(page, start);
      return f.length >= 30 ? f : null;
    });
    assert.ok(new Set(frames.map((f) => f.captureUs)).size >= 30);
    const size = await page.evaluate(() => { const c = document.getElementById("ws-canvas"); return [c.width, c.height, c.hidden]; });
    assert.deepEqual(size, [640, 480, false]);
    const m = await meterAfterFrames(page, 60);
    assert.ok(m.p50 > 0 && m.p50 < 500, `WebSocket browser p50 ${m.p50} ms`);
    assert.match(await page.locator("#lat-detail").textContent(), /WebSocket: \d+ received/);
    console.log(`# WebSocket 640x480: browser p50 ${m.p50.toFixed(1)} p99 ${m.p99.toFixed(1)} ms (${m.count} frames)`);
    await page.screenshot({ path: artifactPath("page-ws.png"), fullPage: true });
    assert.deepEqual(errors, [], "no script errors on the page");
  });

  test("a server that goes away shows NO SIGNAL", async () => {
    await server.stop();
    await until("the NO SIGNAL banner", async () => /NO SIGNAL/.test(await page.locator("#banner").textContent()));
    assert.ok(await page.locator("#banner").isVisible());
    await until("the status to say disconnected", async () => /disconnected/.test(await page.locator("#status").textContent()));
    await page.screenshot({ path: artifactPath("page-nosignal.png") });
  });
});

describe("page with --token", () => {
  test("works through ?token= for the stream, the WebSocket, events and controls", async () => {
    const server = await startServer([...SOURCE, "--token", "s3cret-token"]);
    const browser = await launchBrowser();
    try {
      const denied = await fetch(`${server.url}api/config`, { method: "POST", headers: { "Content-Type": "application/json" }, body: '{"quality":50}' });
      assert.equal(denied.status, 401);
      const { page, errors } = await newPage(browser, `${server.url}?token=s3cret-token&view=mjpeg`);
      await meterAfterFrames(page, 20);
      await page.locator("#c-quality").fill("55");
      await until("quality 55", async () => (await getJson(`${server.url}api/stats?token=s3cret-token`)).quality === 55);
      await until("detections through the token", async () => /face|nothing detected/.test(await page.locator("#detections").textContent()), 20000);
      await page.locator("#view-ws").click();
      const start = await page.evaluate(() => performance.now());
      await until("WebSocket frames through the token", async () => (await shownSince(page, start)).length >= 10);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await server.stop();
    }
  });
});
