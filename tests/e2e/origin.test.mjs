// Safe by default, in a real browser (Debian's chromium): a page served from a
// second origin (another port, standing in for any website the user opens)
// tries to read the camera through every door: the MJPEG stream's pixels
// through a canvas, fetch of /api/stats, the WebSocket stream, and
// POST /api/config (as JSON, and as a form-like no-cors request). All fail
// against a default `freshframe run`; with `--allow-origin` that origin can
// read the stream. The server's own page keeps working with --basic-auth
// (with --token and same-origin: page.test.mjs).
// Run: node --test tests/e2e/origin.test.mjs
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { getJson, launchBrowser, startServer, until } from "./harness.mjs";

const SOURCE = ["--source", "pattern:320x240@30", "--detector", "none"];

// The attacker's site: one page on 127.0.0.1:<port>, a different origin from
// freshframe's (same host, other port).
function startSite() {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
    res.end("<!doctype html><title>some website</title><p>hello</p>");
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

// Runs every attempt inside the foreign page; each resolves to a short
// description of what happened ("read 320x240", "blocked: ...").
async function attempts(page, target) {
  return page.evaluate(async (base) => {
    const withTimeout = (promise, ms = 8000) =>
      Promise.race([promise, new Promise((r) => setTimeout(() => r("timeout"), ms))]);
    // An MJPEG <img> may never fire "load" (the response never ends): poll
    // for its first frame instead.
    const loadImage = (crossOrigin) => new Promise((resolve) => {
      const img = new Image();
      if (crossOrigin) img.crossOrigin = "anonymous";
      const poll = setInterval(() => { if (img.naturalWidth > 0) drawn(); }, 50);
      let done = false;
      const drawn = () => {
        if (done) return;
        done = true;
        clearInterval(poll);
        const canvas = document.createElement("canvas");
        canvas.width = img.naturalWidth;
        canvas.height = img.naturalHeight;
        const ctx = canvas.getContext("2d");
        ctx.drawImage(img, 0, 0);
        try {
          const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
          resolve(`read ${canvas.width}x${canvas.height} (${data.length} bytes)`);
        } catch (e) {
          resolve(`blocked: ${e.name}`);
        }
        img.src = "";  // ends the endless stream
      };
      img.onload = drawn;
      img.onerror = () => { if (!done) { done = true; clearInterval(poll); resolve("blocked: image error"); } };
      img.src = `${base}stream.mjpg`;
    });
    const out = {};
    out.snapshotCanvas = await withTimeout(new Promise((resolve) => {
      const img = new Image();
      img.onload = () => {
        const c = document.createElement("canvas");
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        c.getContext("2d").drawImage(img, 0, 0);
        try { c.getContext("2d").getImageData(0, 0, 1, 1); resolve("read"); } catch (e) { resolve(`blocked: ${e.name}`); }
      };
      img.onerror = () => resolve("blocked: image error");
      img.src = `${base}snapshot.jpg`;
    }));
    out.streamCanvas = await withTimeout(loadImage(false));
    out.streamCors = await withTimeout(loadImage(true));
    out.fetchStats = await withTimeout(fetch(`${base}api/stats`).then(
      async (r) => `read ${r.status}: ${(await r.text()).slice(0, 40)}`,
      (e) => `blocked: ${e.name}`));
    out.websocket = await withTimeout(new Promise((resolve) => {
      const ws = new WebSocket(`${base.replace("http", "ws")}ws/stream`);
      ws.binaryType = "arraybuffer";
      ws.onmessage = (m) => { resolve(`read ${m.data.byteLength} bytes`); ws.close(); };
      ws.onerror = () => resolve("blocked: error");
      ws.onclose = (e) => resolve(`blocked: closed ${e.code}`);
    }));
    out.postJson = await withTimeout(fetch(`${base}api/config`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: '{"quality":11}',
    }).then((r) => `sent ${r.status}`, (e) => `blocked: ${e.name}`));
    // A "simple" request needs no preflight: the browser sends it, and only
    // the server can refuse it.
    out.postSimple = await withTimeout(fetch(`${base}api/config`, {
      method: "POST", mode: "no-cors", headers: { "Content-Type": "text/plain" }, body: '{"quality":12}',
    }).then((r) => `sent (${r.type})`, (e) => `blocked: ${e.name}`));
    return out;
  }, target);
}

describe("a page on another origin", () => {
  let site, browser, siteUrl;

  before(async () => {
    site = await startSite();
    siteUrl = `http://127.0.0.1:${site.address().port}/`;
    browser = await launchBrowser();
  });

  after(async () => {
    if (browser) await browser.close();
    if (site) site.close();
  });

  test("cannot read the camera from a default server", async () => {
    const server = await startServer(SOURCE);
    try {
      const before = (await getJson(`${server.url}api/config`)).quality;
      const page = await browser.newPage();
      await page.goto(siteUrl);
      const out = await attempts(page, server.url);
      console.log(`# default server, from ${siteUrl}: ${JSON.stringify(out)}`);
      assert.match(out.snapshotCanvas, /^blocked/, "snapshot pixels through a canvas");
      assert.match(out.streamCanvas, /^blocked/, "stream pixels through a canvas");
      assert.match(out.streamCors, /^blocked/, "stream with crossorigin=anonymous");
      assert.match(out.fetchStats, /^blocked/, "fetch /api/stats");
      assert.match(out.websocket, /^blocked/, "WebSocket /ws/stream");
      assert.match(out.postJson, /^blocked/, "POST /api/config as JSON");
      assert.equal((await getJson(`${server.url}api/config`)).quality, before, "the quality is unchanged");
      assert.match(server.log(), /403 .*cross-origin request from 'http:\/\/127\.0\.0\.1:\d+' refused/);
      await page.close();
    } finally {
      await server.stop();
    }
  });

  test("can read the stream when its origin is allowed", async () => {
    const origin = siteUrl.replace(/\/$/, "");
    const server = await startServer([...SOURCE, "--allow-origin", origin]);
    try {
      const page = await browser.newPage();
      await page.goto(siteUrl);
      const out = await attempts(page, server.url);
      console.log(`# --allow-origin ${origin}: ${JSON.stringify(out)}`);
      assert.match(out.streamCors, /^read 320x240/, "stream pixels with crossorigin=anonymous");
      assert.match(out.snapshotCanvas, /^blocked/, "an <img> without crossorigin still taints the canvas");
      assert.match(out.fetchStats, /^read 200/, "fetch /api/stats");
      assert.match(out.websocket, /^read \d+ bytes/, "WebSocket /ws/stream");
      assert.match(out.postJson, /^sent 200/, "POST /api/config as JSON (after a preflight)");
      await until("quality 12 or 11", async () => [11, 12].includes((await getJson(`${server.url}api/config`)).quality));
      await page.close();
    } finally {
      await server.stop();
    }
  });
});

describe("the server's own page with --basic-auth", () => {
  test("shows the stream, the WebSocket view and changes settings", async () => {
    const server = await startServer([...SOURCE, "--basic-auth", "viewer:pa55"]);
    const browser = await launchBrowser();
    try {
      const context = await browser.newContext({ httpCredentials: { username: "viewer", password: "pa55" } });
      const page = await context.newPage();
      const errors = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(`${server.url}?view=mjpeg`);
      await until("the <img> to get a frame", () => page.evaluate(() => document.getElementById("stream").naturalWidth === 320));
      await page.locator("#c-quality").fill("57");
      const auth = { headers: { Authorization: `Basic ${Buffer.from("viewer:pa55").toString("base64")}` } };
      await until("quality 57", async () => (await getJson(`${server.url}api/config`, auth)).quality === 57);
      await page.locator("#view-ws").click();
      const start = await page.evaluate(() => performance.now());
      await until("WebSocket frames", async () =>
        (await page.evaluate((t) => window.freshframe.recent().filter((f) => f.t > t).length, start)) >= 10);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await server.stop();
    }
  });
});
