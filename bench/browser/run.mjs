#!/usr/bin/env node
// In-browser capture-to-screen latency of the page's four views (MJPEG,
// JPEG over WebSocket, H.264 over WebSocket decoded by WebCodecs, WebRTC by
// WHEP) in headless chromium, read by the page's own meter (the timecode
// strip in the shown pixels, clock matched to the server's), at 640x480@30
// and 1280x720@30, with bytes per second, server CPU and encode cost per
// view; then 1/10/50 headless /ws/h264 viewers (server CPU beyond the
// encode, fps per viewer) and the first picture after a join; and the
// issue 17 targets beside the figures. See bench/browser/README.md. Needs
// `make e2e-deps` (playwright-core) and a built binary.
import { parseArgs } from "node:util";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import { getJson, launchBrowser, runProbe, sleep, startServer, until } from "../../tests/e2e/harness.mjs";
import { openH264 } from "./h264_reader.mjs";

const { values: opt } = parseArgs({
  options: {
    seconds: { type: "string", default: "20" },
    warmup: { type: "string", default: "3" },
    detector: { type: "string", default: "faces" },
    only: { type: "string", multiple: true, default: [] },
    viewers: { type: "string", default: "1,10,50" },
    joins: { type: "string", default: "20" },
    "join-every": { type: "string", default: "300" },
    probe: { type: "boolean", default: false },
    json: { type: "string" },
    help: { type: "boolean", default: false }
  }
});
if (opt.help) {
  console.log("usage: bench/browser/run.mjs [--seconds N] [--warmup N] [--detector D] [--only SUBSTRING]... " +
    "[--viewers 1,10,50] [--joins N] [--join-every MS] [--probe] [--json FILE]");
  process.exit(0);
}
const seconds = Number(opt.seconds), warmup = Number(opt.warmup);
const viewerCounts = opt.viewers.split(",").filter(Boolean).map(Number);
const joins = Number(opt.joins), joinEveryMs = Number(opt["join-every"]);
if (!(seconds > 0) || !(warmup >= 0)) { console.error("--seconds and --warmup must be numbers > 0"); process.exit(2); }
if (viewerCounts.some((n) => !(n > 0)) || !(joins >= 0) || !(joinEveryMs >= 0)) {
  console.error("--viewers takes counts > 0 separated by commas; --joins and --join-every numbers >= 0"); process.exit(2);
}

const SIZES = ["640x480", "1280x720"];
// [page view, label, how its bytes are found in /api/stats]
const VIEWS = [
  ["mjpeg", "MJPEG", { path: "/stream.mjpg" }],
  ["ws", "JPEG over WS", { path: "/ws/stream" }],
  ["h264", "H.264 over WS", { path: "/ws/h264" }],
  ["webrtc", "WebRTC", { webrtc: true }]
];
// Chromium gathers no ICE candidate on loopback unless told to, and hides
// host addresses behind mDNS names; with these two flags WebRTC works on
// 127.0.0.1, so every view runs in the same secure context on loopback.
const BROWSER_ARGS = ["--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
  "--autoplay-policy=no-user-gesture-required"];
// Issue 17's targets.
const TARGET = { h264OverMjpegMs: { "640x480": 5, "1280x720": 12 }, h264P99Ms: 40, bytesRatio: 5, webrtcOverH264Ms: 15,
  viewersCore: 0.2, viewersAt: 50, firstPictureMs: 150 };

const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
// user+sys CPU seconds of `pid` (bench/procstat.py's cpu_seconds).
function cpuSeconds(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(")").pop().trim().split(/\s+/);
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;  // utime, stime (fields 14, 15)
}

function quantile(values, q) {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length, Math.max(1, Math.ceil(q * s.length))) - 1];
}
const fx = (v, d = 1) => (v === null || v === undefined || Number.isNaN(v) ? "—" : v.toFixed(d));
const verdict = (ok) => (ok === null ? "n/a" : ok ? "pass" : "FAIL");

// Bytes the server has sent to this view's clients so far: per-client
// "bytes" of /api/stats (whole messages, headers included), or for WebRTC
// the WHEP peers' "bytes" (access units handed to webrtcbin, before RTP).
function viewBytes(stats, how) {
  if (how.webrtc) return (stats.webrtc?.clients || []).reduce((s, c) => s + (c.bytes || 0), 0);
  return (stats.clients || []).filter((c) => String(c.path).startsWith(how.path)).reduce((s, c) => s + (c.bytes || 0), 0);
}
const stageP50 = (stats, name) => {
  const s = stats.stages?.[name];
  return s && s.work_ms?.count > 0 ? s.work_ms.p50 : null;
};
const stageMean = (stats, name) => {
  const s = stats.stages?.[name];
  return s && s.work_ms?.count > 0 ? s.work_ms.mean : null;
};

// A window of `s` seconds on `server`: CPU cores, and the stats before and after.
async function serverWindow(server, s, during = async () => sleep(s * 1000)) {
  const pid = server.proc.pid;
  const before = await getJson(`${server.url}api/stats`);
  const cpu0 = cpuSeconds(pid), t0 = performance.now();
  const inner = await during();
  const cpu1 = cpuSeconds(pid), t1 = performance.now();
  const after = await getJson(`${server.url}api/stats`);
  const span = (t1 - t0) / 1000;
  return { cores: (cpu1 - cpu0) / span, span, before, after, inner };
}

async function measureView(browser, server, view, how) {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1100 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  try {
    await page.goto(`${server.url}?view=${view}`);
    await until("frames measured by the page", async () => (await page.evaluate(() => window.freshframe.latency().count)) > 10, 30000);
    const shown = await page.evaluate(() => window.freshframe.view());
    if (shown !== view) throw new Error(`the page shows ${shown}, not ${view}: ${await page.evaluate(() => window.freshframe.why())}`);
    await sleep(warmup * 1000);
    const start = await page.evaluate(() => performance.now());
    const w = await serverWindow(server, seconds, async () => (opt.probe ? runProbe(`${server.url}stream.mjpg`, seconds) : sleep(seconds * 1000)));
    const frames = await page.evaluate((t) => window.freshframe.recent().filter((f) => f.t > t), start);
    const clock = await page.evaluate(() => window.freshframe.latency());
    const pageKbps = await page.evaluate(() => window.freshframe.bitrateKbps());
    const state = await page.evaluate(() => window.freshframe.viewState());
    const lat = frames.map((f) => f.latencyMs);
    const span = frames.length > 1 ? (frames[frames.length - 1].t - frames[0].t) / 1000 : 0;
    const probe = w.inner;
    return {
      browser: { frames: frames.length, fps: span > 0 ? (frames.length - 1) / span : 0,
        p50: quantile(lat, 0.5), p90: quantile(lat, 0.9), p99: quantile(lat, 0.99), max: quantile(lat, 1),
        clock_uncertainty_ms: clock.uncertaintyUs / 1000, page_kbps: pageKbps, state, errors },
      server: { bytes_per_s: (viewBytes(w.after, how) - viewBytes(w.before, how)) / w.span, cores: w.cores,
        encode_p50_ms: stageP50(w.after, "encode"), encode_h264_p50_ms: stageP50(w.after, "encode_h264"),
        h264_kbps: w.after.h264?.kbps ?? null },
      probe: probe ? { fps: probe.fps.median, p50: probe.latency_ms.p50, p99: probe.latency_ms.p99 } : null
    };
  } finally {
    await page.close();
  }
}

// `n` headless /ws/h264 viewers for `seconds`: server CPU, each viewer's fps,
// capture → received latency in this process (same CLOCK_MONOTONIC).
async function measureViewers(server, n) {
  const readers = [], lat = [];
  for (let i = 0; i < n; i++) readers.push(await openH264(`${server.url}ws/h264`, (u) => lat.push((u.receivedUs - u.captureUs) / 1000)));
  try {
    await sleep(Math.max(warmup, 1) * 1000);
    const counts0 = readers.map((r) => r.messages), gaps0 = readers.map((r) => r.gaps);
    lat.length = 0;
    const own0 = process.cpuUsage();
    const w = await serverWindow(server, seconds);
    const own = process.cpuUsage(own0);
    const fps = readers.map((r, i) => (r.messages - counts0[i]) / w.span);
    const encodeMs = stageMean(w.after, "encode_h264");
    const encodeFps = (w.after.h264.frames - w.before.h264.frames) / w.span;
    return { n, cores: w.cores, readers_cores: (own.user + own.system) / 1e6 / w.span, fps_min: Math.min(...fps), fps_median: quantile(fps, 0.5), fps_max: Math.max(...fps),
      gaps: readers.reduce((s, r, i) => s + r.gaps - gaps0[i], 0), closed: readers.filter((r) => r.closed).length,
      skips_to_key: w.after.h264.skips_to_key - w.before.h264.skips_to_key,
      encode_cores: encodeMs === null ? null : (encodeMs * encodeFps) / 1000, encode_fps: encodeFps,
      recv_p50: quantile(lat, 0.5), recv_p99: quantile(lat, 0.99), kbps: w.after.h264.kbps };
  } finally {
    for (const r of readers) r.close();
  }
}

// `count` joins started `everyMs` apart on a fixed schedule (not waiting for
// each other, as independent viewers would; each closes after its first
// access unit): time from opening the connection to the first access unit,
// and whether it was a keyframe. `warm`: one viewer watches throughout, so
// the encoder is running (the common case); else the encoder is idle
// whenever no join is open and starts with an IDR for the next.
async function measureJoins(server, count, everyMs, warm) {
  const keeper = warm ? await openH264(`${server.url}ws/h264`) : null;
  if (warm) await sleep(1000);
  const times = [], handshakes = [];
  let notKey = 0, failed = 0;
  const join = async () => {
    try {
      const r = await openH264(`${server.url}ws/h264`);
      await until("a first access unit", () => r.messages > 0, 5000, 2);
      times.push((r.firstUnitUs - r.openedUs) / 1000);
      handshakes.push((r.upgradedUs - r.openedUs) / 1000);
      if (!r.firstKey) notKey++;
      r.close();
    } catch (e) {
      failed++;
    }
  };
  try {
    const start = performance.now(), pending = [];
    for (let i = 0; i < count; i++) {
      await sleep(Math.max(0, start + i * everyMs - performance.now()));
      pending.push(join());
    }
    await Promise.all(pending);
  } finally {
    if (keeper) keeper.close();
  }
  return { warm, joins: count, p50: quantile(times, 0.5), p90: quantile(times, 0.9), max: quantile(times, 1),
    min: quantile(times, 0), handshake_p50: quantile(handshakes, 0.5), not_key: notKey, failed };
}

const selected = (name) => !opt.only.some((o) => !name.includes(o));
const rows = [], viewerRows = [], joinRows = [];
const loadAtStart = os.loadavg();
const browser = await launchBrowser({ args: BROWSER_ARGS });
try {
  for (const size of SIZES) {
    const source = ["--source", `pattern:${size}@30`, "--detector", opt.detector];
    for (const [view, label, how] of VIEWS) {
      const name = `${size}@30/${view}`;
      if (!selected(name)) continue;
      // A server per view: its CPU and encoders are that view's alone.
      const server = await startServer(source);
      try {
        process.stderr.write(`${name}: measuring ${seconds} s...\n`);
        rows.push({ name, size, view, label, ...(await measureView(browser, server, view, how)) });
      } catch (e) {
        rows.push({ name, size, view, label, error: e.message });
      } finally {
        await server.stop();
      }
    }
    if (viewerCounts.length && selected(`${size}@30/viewers`)) {
      const server = await startServer(source);
      try {
        process.stderr.write(`${size}@30/viewers: 0 ${viewerCounts.join(" ")}, ${seconds} s each...\n`);
        await sleep(Math.max(warmup, 1) * 1000);
        const idle = await serverWindow(server, seconds);
        const levels = [];
        for (const n of viewerCounts) levels.push(await measureViewers(server, n));
        viewerRows.push({ size, idle_cores: idle.cores, levels });
      } catch (e) {
        viewerRows.push({ size, error: e.message });
      } finally {
        await server.stop();
      }
    }
    if (joins > 0 && selected(`${size}@30/joins`)) {
      for (const warm of [true, false]) {
        const server = await startServer(source);
        try {
          process.stderr.write(`${size}@30/joins: ${joins} ${warm ? "beside a viewer" : "to an idle encoder"}, ${joinEveryMs} ms apart...\n`);
          await sleep(1000);
          joinRows.push({ size, ...(await measureJoins(server, joins, joinEveryMs, warm)) });
        } catch (e) {
          joinRows.push({ size, warm, error: e.message });
        } finally {
          await server.stop();
        }
      }
    }
  }
} finally {
  await browser.close();
}

// ---- report ----
const chromiumVersion = execFileSync("/usr/bin/chromium", ["--version"], { stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
console.log(`\nbench/browser: headless ${chromiumVersion} on 127.0.0.1 (WebRTC with --allow-loopback-in-peer-connection), ` +
  `detector ${opt.detector}, ${seconds} s per row, ${os.cpus().length} cores, load average ${loadAtStart.map((v) => v.toFixed(2)).join(" ")} at the start, ${os.loadavg().map((v) => v.toFixed(2)).join(" ")} at the end\n`);
if (rows.length) {
  console.log("| size | view | browser fps | p50 | p90 | p99 | max | clock ± | kB/s | Mbit/s | server CPU | encode p50 | encode_h264 p50 |" +
    (opt.probe ? " probe fps | probe p50 | probe p99 |" : ""));
  console.log("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + (opt.probe ? "---:|---:|---:|" : ""));
  for (const r of rows) {
    if (r.error) { console.log(`| ${r.size}@30 | ${r.label} | error: ${r.error.split("\n")[0]} |`); continue; }
    const b = r.browser, s = r.server, p = r.probe;
    console.log(`| ${r.size}@30 | ${r.label} | ${fx(b.fps)} | ${fx(b.p50)} | ${fx(b.p90)} | ${fx(b.p99)} | ${fx(b.max)} | ${fx(b.clock_uncertainty_ms, 2)} | ` +
      `${fx(s.bytes_per_s / 1000, 0)} | ${fx((s.bytes_per_s * 8) / 1e6, 2)} | ${fx(s.cores, 2)} | ${fx(s.encode_p50_ms, 2)} | ${fx(s.encode_h264_p50_ms, 2)} |` +
      (opt.probe ? ` ${fx(p?.fps)} | ${fx(p?.p50)} | ${fx(p?.p99)} |` : ""));
  }
  console.log("\nlatencies in ms, capture → painted in chromium (the strip read from the shown pixels at the animation frame that shows them);" +
    " kB/s and Mbit/s: what the server sent this view's client over the window (/api/stats per-client \"bytes\" deltas, whole WebSocket" +
    " messages or multipart parts with their headers; WebRTC: the WHEP peer's \"bytes\", access units handed to webrtcbin, before RTP/SRTP);" +
    " server CPU: cores used by the freshframe process (/proc/PID/stat utime+stime) over the window, chromium excluded but on the same cores;" +
    " encode / encode_h264 p50: ms per frame of the JPEG and H.264 encoders (/api/stats stages' work_ms, — when not running)");
}

if (viewerRows.length) {
  console.log("\n| size | H.264 viewers | server CPU | − 0 viewers | encode (cores) | beyond the encode | − 1 viewer | fps per viewer min/median/max | gaps | capture → received p50/p99 | readers' CPU |");
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const v of viewerRows) {
    if (v.error) { console.log(`| ${v.size}@30 | error: ${v.error.split("\n")[0]} |`); continue; }
    console.log(`| ${v.size}@30 | 0 | ${fx(v.idle_cores, 3)} | | | | | | | | |`);
    const one = v.levels.find((l) => l.n === 1);
    for (const l of v.levels) {
      const delta = l.cores - v.idle_cores;
      l.beyond_encode = l.encode_cores === null ? null : delta - l.encode_cores;
      l.over_one = one ? l.cores - one.cores : null;
      console.log(`| ${v.size}@30 | ${l.n} | ${fx(l.cores, 3)} | ${fx(delta, 3)} | ${fx(l.encode_cores, 3)} | ${fx(l.beyond_encode, 3)} | ${l.n === 1 ? "" : fx(l.over_one, 3)} | ` +
        `${fx(l.fps_min)} / ${fx(l.fps_median)} / ${fx(l.fps_max)} | ${l.gaps} | ${fx(l.recv_p50)} / ${fx(l.recv_p99)} | ${fx(l.readers_cores, 3)} |`);
    }
  }
  console.log("\nheadless viewers: Node WebSocket readers of /ws/h264 in the bench's process (they count messages, decode nothing);" +
     " encode (cores) = encode_h264 work_ms mean × frames encoded per second (wall time per frame: on a loaded machine it counts preemption too);" +
    " beyond the encode = CPU − CPU with 0 viewers − encode; − 1 viewer = CPU − CPU with 1 viewer (the encode runs at both, so this is what N − 1 more viewers cost);" +
    " gaps: sequence gaps (skips to a keyframe) over all viewers; capture → received in ms, this process's CLOCK_MONOTONIC; readers' CPU: the bench process (all its readers) in cores, on the same cores as the server");
}

if (joinRows.length) {
  console.log(`\n| size | joins | encoder | first picture min | p50 | p90 | max | handshake p50 | first not a keyframe | failed |`);
  console.log("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const j of joinRows) {
    if (j.error) { console.log(`| ${j.size}@30 | error: ${j.error.split("\n")[0]} |`); continue; }
    console.log(`| ${j.size}@30 | ${j.joins} every ${joinEveryMs} ms | ${j.warm ? "running (1 viewer)" : "idle"} | ${fx(j.min)} | ${fx(j.p50)} | ${fx(j.p90)} | ${fx(j.max)} | ` +
      `${fx(j.handshake_p50)} | ${j.not_key} | ${j.failed} |`);
  }
  console.log("\nfirst picture: ms from opening the TCP connection to /ws/h264 to its first access unit (joins start on a fixed schedule, each closes after its first access unit; the server forces at most one IDR per 500 ms)");
}

// ---- issue 17's targets ----
const find = (size, view) => rows.find((r) => r.size === size && r.view === view && !r.error);
const targets = [];
for (const size of SIZES) {
  const mjpeg = find(size, "mjpeg"), h264 = find(size, "h264"), rtc = find(size, "webrtc");
  const add = TARGET.h264OverMjpegMs[size];
  if (mjpeg && h264) {
    const limit = mjpeg.browser.p50 + add;
    targets.push([size, `H.264-WS p50 ≤ MJPEG p50 + ${add} ms`, `${fx(h264.browser.p50)} vs ${fx(mjpeg.browser.p50)} + ${add} = ${fx(limit)} (H.264 − MJPEG ${fx(h264.browser.p50 - mjpeg.browser.p50)} ms)`, verdict(h264.browser.p50 <= limit)]);
    const ratio = mjpeg.server.bytes_per_s / h264.server.bytes_per_s;
    targets.push([size, `H.264-WS bytes ≤ 1/${TARGET.bytesRatio} of MJPEG's`, `${fx(h264.server.bytes_per_s / 1000, 0)} vs ${fx(mjpeg.server.bytes_per_s / 1000, 0)} kB/s: 1/${fx(ratio)}`, verdict(ratio >= TARGET.bytesRatio)]);
  }
  if (h264) targets.push([size, `H.264-WS p99 ≤ ${TARGET.h264P99Ms} ms`, fx(h264.browser.p99), verdict(h264.browser.p99 <= TARGET.h264P99Ms)]);
  if (h264 && rtc) {
    const limit = h264.browser.p50 + TARGET.webrtcOverH264Ms;
    targets.push([size, `WebRTC p50 ≤ H.264-WS p50 + ${TARGET.webrtcOverH264Ms} ms`, `${fx(rtc.browser.p50)} vs ${fx(h264.browser.p50)} + ${TARGET.webrtcOverH264Ms} = ${fx(limit)} (WebRTC − H.264 ${fx(rtc.browser.p50 - h264.browser.p50)} ms)`, verdict(rtc.browser.p50 <= limit)]);
  }
  const v = viewerRows.find((x) => x.size === size && !x.error);
  const l = v?.levels.find((x) => x.n === TARGET.viewersAt);
  if (l) targets.push([size, `${TARGET.viewersAt} H.264 viewers < ${TARGET.viewersCore} core beyond the encode`, `${fx(l.beyond_encode, 3)} core (CPU with ${TARGET.viewersAt} − with 1 viewer: ${fx(l.over_one, 3)})`, verdict(l.beyond_encode === null ? null : l.beyond_encode < TARGET.viewersCore)]);
  for (const j of joinRows.filter((x) => x.size === size && !x.error)) {
    targets.push([size, `first picture ≤ ${TARGET.firstPictureMs} ms (${j.warm ? "encoder running" : "idle encoder"})`, `p50 ${fx(j.p50)}, max ${fx(j.max)} ms`,
      `p50 ${verdict(j.p50 <= TARGET.firstPictureMs)}, max ${verdict(j.max <= TARGET.firstPictureMs)}`]);
  }
}
if (targets.length) {
  console.log("\n| size | issue 17 target | measured | |");
  console.log("|---|---|---|---|");
  for (const [size, what, measured, ok] of targets) console.log(`| ${size}@30 | ${what} | ${measured} | ${ok} |`);
}

if (opt.json) fs.writeFileSync(opt.json, JSON.stringify({ rows, viewers: viewerRows, joins: joinRows, targets }, null, 2));
process.exit(rows.some((r) => r.error) || viewerRows.some((v) => v.error) || joinRows.some((j) => j.error) ? 1 : 0);
