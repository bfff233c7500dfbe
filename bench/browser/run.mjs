#!/usr/bin/env node
// In-browser capture-to-screen latency: the page's own meter (timecode strip
// read from the shown pixels, clock matched to the server's) in headless
// chromium, for the MJPEG and the WebSocket view at 640x480@30 and
// 1280x720@30, next to `freshframe probe`'s figures over the same seconds.
// See bench/browser/README.md. Needs `make e2e-deps` (playwright-core) and a
// built binary.
import { parseArgs } from "node:util";
import fs from "node:fs";
import os from "node:os";
import { launchBrowser, runProbe, sleep, startServer, until } from "../../tests/e2e/harness.mjs";

const { values: opt } = parseArgs({
  options: {
    seconds: { type: "string", default: "20" },
    warmup: { type: "string", default: "3" },
    detector: { type: "string", default: "faces" },
    only: { type: "string", multiple: true, default: [] },
    json: { type: "string" },
    help: { type: "boolean", default: false }
  }
});
if (opt.help) {
  console.log("usage: bench/browser/run.mjs [--seconds N] [--warmup N] [--detector D] [--only SUBSTRING]... [--json FILE]");
  process.exit(0);
}
const seconds = Number(opt.seconds), warmup = Number(opt.warmup);
if (!(seconds > 0) || !(warmup >= 0)) { console.error("--seconds and --warmup must be numbers > 0"); process.exit(2); }

const SIZES = ["640x480", "1280x720"];
const VIEWS = [["mjpeg", "MJPEG <img>"], ["ws", "WebSocket canvas"]];

function quantile(values, q) {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length, Math.max(1, Math.ceil(q * s.length))) - 1];
}
const f1 = (v) => (v === null || v === undefined ? "—" : v.toFixed(1));

async function measure(browser, url, view) {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1100 } });
  try {
    await page.goto(`${url}?view=${view}`);
    await until("frames measured by the page", async () => (await page.evaluate(() => window.freshframe.latency().count)) > 10, 20000);
    await sleep(warmup * 1000);
    const start = await page.evaluate(() => performance.now());
    const probe = await runProbe(`${url}stream.mjpg`, seconds);
    const frames = await page.evaluate((t) => window.freshframe.recent().filter((f) => f.t > t), start);
    const clock = await page.evaluate(() => window.freshframe.latency());
    const lat = frames.map((f) => f.latencyMs);
    const span = frames.length > 1 ? (frames[frames.length - 1].t - frames[0].t) / 1000 : 0;
    return {
      browser: { frames: frames.length, fps: span > 0 ? (frames.length - 1) / span : 0,
        p50: quantile(lat, 0.5), p90: quantile(lat, 0.9), p99: quantile(lat, 0.99), max: quantile(lat, 1),
        clock_uncertainty_ms: clock.uncertaintyUs / 1000 },
      probe: { fps: probe.fps.median, p50: probe.latency_ms.p50, p90: probe.latency_ms.p90, p99: probe.latency_ms.p99,
        max: probe.latency_ms.max, no_strip: probe.no_strip }
    };
  } finally {
    await page.close();
  }
}

const rows = [];
const browser = await launchBrowser();
try {
  for (const size of SIZES) {
    for (const [view, label] of VIEWS) {
      const name = `${size}@30/${view}`;
      if (opt.only.some((o) => !name.includes(o))) continue;
      const server = await startServer(["--source", `pattern:${size}@30`, "--detector", opt.detector]);
      try {
        process.stderr.write(`${name}: measuring ${seconds} s...\n`);
        rows.push({ name, size, view: label, ...(await measure(browser, server.url, view)) });
      } catch (e) {
        rows.push({ name, size, view: label, error: e.message });
      } finally {
        await server.stop();
      }
    }
  }
} finally {
  await browser.close();
}

console.log(`\nbench/browser: headless chromium (${(await import("node:child_process")).execFileSync("/usr/bin/chromium", ["--version"], { stdio: ["ignore", "pipe", "ignore"] }).toString().trim()}), ` +
  `detector ${opt.detector}, ${seconds} s per row, load average ${os.loadavg().map((v) => v.toFixed(2)).join(" ")}\n`);
console.log("| size | view | browser fps | browser p50 | p90 | p99 | max | clock ± | probe fps | probe p50 | probe p99 | browser − probe p50 |");
console.log("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const r of rows) {
  if (r.error) { console.log(`| ${r.size} | ${r.view} | error: ${r.error.split("\n")[0]} |`); continue; }
  const b = r.browser, p = r.probe;
  console.log(`| ${r.size}@30 | ${r.view} | ${f1(b.fps)} | ${f1(b.p50)} | ${f1(b.p90)} | ${f1(b.p99)} | ${f1(b.max)} | ${b.clock_uncertainty_ms.toFixed(2)} | ` +
    `${f1(p.fps)} | ${f1(p.p50)} | ${f1(p.p99)} | ${f1(b.p50 - p.p50)} |`);
}
console.log("\nlatencies in ms, capture to screen (browser, read from the shown pixels at the animation frame that shows them) and capture to received (probe, decoding every part of /stream.mjpg meanwhile)");
if (opt.json) fs.writeFileSync(opt.json, JSON.stringify(rows, null, 2));
process.exit(rows.some((r) => r.error) ? 1 : 0);
