// The WebRTC (WHEP) view in Debian's chromium, across a network. Chromium
// gathers no ICE candidate on a loopback-only host, so the test builds one
// (as root): two network namespaces joined by a veth pair, freshframe in
// one bound to its veth address, chromium in the other (through a wrapper
// that runs it under `ip netns exec`). On that plain-HTTP LAN address the
// browser hides WebCodecs, so the page must pick WebRTC by default and say
// why; then frames render in the <video>, the meter reads their strips, the
// bitrate shows, and switching away DELETEs the WHEP session. Namespaces
// and processes are removed at the end. Skipped unless root, or when the
// binary has no /whep. Run: node --test tests/e2e/webrtc.test.mjs
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { artifactPath, CHROMIUM, launchBrowser, sleep, startServerWith, until } from "./harness.mjs";

const SOURCE = ["--source", "pattern:640x480@30", "--detector", "none"];
// Unique per run: interface names stay under 15 characters.
const TAG = String(process.pid % 100000);
const NS_SERVER = `ffwS${TAG}`, NS_VIEWER = `ffwV${TAG}`;
const NET = `10.${77 + (process.pid % 100)}.${process.pid % 250}`;
const SERVER_IP = `${NET}.1`, VIEWER_IP = `${NET}.2`;

function ip(...args) { execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] }); }

function makeNetwork() {
  ip("netns", "add", NS_SERVER);
  ip("netns", "add", NS_VIEWER);
  ip("link", "add", `vS${TAG}`, "type", "veth", "peer", "name", `vV${TAG}`);
  ip("link", "set", `vS${TAG}`, "netns", NS_SERVER);
  ip("link", "set", `vV${TAG}`, "netns", NS_VIEWER);
  ip("-n", NS_SERVER, "addr", "add", `${SERVER_IP}/24`, "dev", `vS${TAG}`);
  ip("-n", NS_VIEWER, "addr", "add", `${VIEWER_IP}/24`, "dev", `vV${TAG}`);
  for (const [ns, dev] of [[NS_SERVER, `vS${TAG}`], [NS_VIEWER, `vV${TAG}`]]) {
    ip("-n", ns, "link", "set", "lo", "up");
    ip("-n", ns, "link", "set", dev, "up");
  }
  // Chromium gathers no candidate on an interface without a default route.
  ip("-n", NS_VIEWER, "route", "add", "default", "via", SERVER_IP);
  ip("-n", NS_SERVER, "route", "add", "default", "via", VIEWER_IP);
}

function removeNetwork() {
  for (const ns of [NS_SERVER, NS_VIEWER]) {
    try { ip("netns", "del", ns); } catch (e) { /* not made */ }
  }
}

// Chromium in the viewer's namespace: playwright starts this script, which
// execs chromium there (same PID, same pipes).
function viewerChromium(dir) {
  const file = path.join(dir, "chromium-in-netns.sh");
  fs.writeFileSync(file, `#!/bin/sh\nexec ip netns exec ${NS_VIEWER} ${CHROMIUM} "$@"\n`, { mode: 0o755 });
  return file;
}

function whyNotRun() {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return "needs root to create network namespaces";
  try { execFileSync("ip", ["-V"], { stdio: "ignore" }); } catch (e) { return "no `ip` (iproute2)"; }
  return "";
}

describe("the WebRTC (WHEP) view across a veth pair", () => {
  let server, browser, page, errors, dir, noWhep = "", skip = whyNotRun();
  const sessions = [];  // WHEP requests the page made: "METHOD path status"

  before(async () => {
    if (skip) { console.log(`# skipped: ${skip}`); return; }
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "ff-webrtc-"));
    makeNetwork();
    server = await startServerWith(["ip", "netns", "exec", NS_SERVER], [...SOURCE, "--bind", SERVER_IP]);
    browser = await launchBrowser({
      executablePath: viewerChromium(dir),
      // Video that plays without a click. Chromium's candidates stay mDNS
      // names (.local), as in a user's browser: the server cannot resolve
      // them and must learn the browser's address from its checks
      // (peer-reflexive). With --disable-features=WebRtcHideLocalIpsWithMdns
      // it passes too.
      args: ["--autoplay-policy=no-user-gesture-required"]
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("response", (r) => {
      if (/\/whep/.test(new URL(r.url()).pathname)) sessions.push(`${r.request().method()} ${new URL(r.url()).pathname} ${r.status()}`);
    });
    // A POST that is no offer: 400 where WHEP works, 404 where this binary
    // (or this machine's GStreamer) has none.
    await page.goto(`${server.url}api/clock`);
    const probe = await page.evaluate(() => fetch("/whep", { method: "POST", headers: { "Content-Type": "application/sdp" }, body: "x" })
      .then(async (r) => `${r.status} ${await r.text()}`));
    if (probe.startsWith("404")) noWhep = `this binary has no /whep: ${probe.trim()}`;
    sessions.length = 0;
    await page.goto(server.url);
  });

  after(async () => {
    if (browser) await browser.close();
    if (server) await server.stop();
    if (dir) { removeNetwork(); fs.rmSync(dir, { recursive: true, force: true }); }
  });

  test("is the default on a plain-HTTP LAN address, and the page says why", async (t) => {
    if (skip) return t.skip(skip);
    assert.equal(server.url, `http://${SERVER_IP}:${new URL(server.url).port}/`);
    assert.deepEqual(await page.evaluate(() => [window.isSecureContext, typeof window.VideoDecoder]), [false, "undefined"]);
    if (noWhep) {
      // The server refused WHEP (404): the page shows MJPEG and says why.
      const why = await until("the fallback to MJPEG", async () =>
        (await page.evaluate(() => window.freshframe.view())) === "mjpeg" && page.evaluate(() => window.freshframe.why()));
      assert.match(why, /^WebCodecs needs HTTPS or localhost and .+: showing MJPEG$/);
      await until("MJPEG frames measured", async () => (await page.evaluate(() => window.freshframe.latency().count)) >= 30, 30000);
      assert.equal(await page.locator("#view-webrtc").isDisabled(), true);
      return t.skip(`${noWhep}; the page fell back to MJPEG: "${why}"`);
    }
    assert.equal(await page.evaluate(() => window.freshframe.view()), "webrtc");
    assert.equal(await page.evaluate(() => window.freshframe.why()), "WebCodecs needs HTTPS or localhost: showing WebRTC");
    assert.ok(await page.locator("#view-why").isVisible());
    assert.equal(await page.locator("#view-h264").isDisabled(), true, "the H.264 button says it cannot work here");
  });

  test("plays in the <video>, and the meter reads the strip from it", async (t) => {
    if (skip || noWhep) return t.skip(skip || noWhep);
    await until("60 WebRTC frames measured", async () => (await page.evaluate(() => window.freshframe.latency().count)) >= 60, 45000);
    const video = await page.evaluate(() => { const v = document.getElementById("rtc-video"); return [v.videoWidth, v.videoHeight, v.hidden]; });
    assert.deepEqual(video, [640, 480, false]);
    const start = await page.evaluate(() => performance.now());
    await sleep(5000);
    const frames = await page.evaluate((s) => window.freshframe.recent().filter((f) => f.t > s), start);
    const lat = frames.map((f) => f.latencyMs).sort((a, b) => a - b);
    const q = (p) => lat[Math.min(lat.length, Math.max(1, Math.ceil(p * lat.length))) - 1];
    const fps = frames.length / 5;
    const state = await page.evaluate(() => window.freshframe.viewState());
    console.log(`# WebRTC 640x480@30 across a veth: ${fps.toFixed(1)} fps shown, browser p50 ${q(0.5).toFixed(1)} p90 ${q(0.9).toFixed(1)} p99 ${q(0.99).toFixed(1)} max ${q(1).toFixed(1)} ms (${frames.length} frames); ${state}`);
    assert.ok(fps >= 20 && fps <= 32, `${fps} fps shown`);
    assert.ok(q(0.5) > 0 && q(0.5) < 500, `p50 ${q(0.5)} ms`);
    assert.match(state, /WebRTC: connected/);
    const kbps = await until("a WebRTC bitrate", () => page.evaluate(() => window.freshframe.bitrateKbps()));
    console.log(`# WebRTC bitrate ${kbps.toFixed(0)} kbit/s`);
    assert.ok(kbps > 0, `${kbps} kbit/s`);
    assert.match(await page.locator("#bitrate").textContent(), /^bitrate: [\d.]+ kbit\/s$/);
    assert.deepEqual(sessions.filter((s) => s.startsWith("POST")).map((s) => s.replace(/\d+$/, "")).slice(0, 1), ["POST /whep "]);
    assert.ok(sessions.some((s) => /^POST \/whep 201$/.test(s)), sessions.join(", "));
    await page.screenshot({ path: artifactPath("page-webrtc.png"), fullPage: true });
  });

  test("switching to another view ends the WHEP session (DELETE)", async (t) => {
    if (skip || noWhep) return t.skip(skip || noWhep);
    await page.locator("#view-mjpeg").click();
    const deleted = await until("a DELETE of the session", () => sessions.find((s) => s.startsWith("DELETE")));
    assert.match(deleted, /^DELETE \/whep\/\S+ 200$/);
    assert.equal(await page.evaluate(() => document.getElementById("rtc-video").hidden), true);
    const start = await page.evaluate(() => performance.now());
    await until("MJPEG frames after the switch", async () =>
      (await page.evaluate((s) => window.freshframe.recent().filter((f) => f.t > s).length, start)) >= 10);
    // And back: a new session.
    await page.locator("#view-webrtc").click();
    await until("a second POST", () => sessions.filter((s) => /^POST \/whep 201$/.test(s)).length >= 2);
    const again = await page.evaluate(() => performance.now());
    await until("WebRTC frames again", async () =>
      (await page.evaluate((s) => window.freshframe.recent().filter((f) => f.t > s).length, again)) >= 10, 30000);
    assert.deepEqual(errors, [], "no script errors on the page");
  });
});
