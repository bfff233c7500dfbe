// One of freshframe's page views in headless Debian chromium, run INSIDE the
// viewer host's namespace by bench/scaleout/run.py:
//   node bench/scaleout/page_view.mjs http://10.89.0.2:8080/ h264|webrtc SECONDS
// Prints one JSON object: the page's own meter (the timecode strip read from
// the shown pixels at the animation frame that shows them, through the
// page's /api/clock offset), as bench/browser reads it.
//   node bench/scaleout/page_view.mjs 'http://.../viewer.html?janus=..&ff=..' janus SECONDS
// opens examples/janus/viewer.html instead and reads viewer 0's console line
// of each second ({"age_ms":{"p50","p95"}}, the same strip, presented
// frames): p50 = the median of the seconds' p50s, p90 column = their p95s'.
// The server is not loopback here, so chromium is told to treat its origin
// as secure (WebCodecs needs a secure context) and to gather its real
// address as an ICE candidate (no mDNS name), as on a LAN.
import { launchBrowser } from "../../tests/e2e/harness.mjs";

const [url, view, secondsText] = process.argv.slice(2);
const seconds = Number(secondsText);
const origin = new URL(url).origin;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const quantile = (xs, q) => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

let out;
const browser = await launchBrowser({ args: [`--unsafely-treat-insecure-origin-as-secure=${origin}`,
  "--disable-features=WebRtcHideLocalIpsWithMdns", "--autoplay-policy=no-user-gesture-required"] });
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1100 } });
  if (view === "janus") {
    out = await janusPage(page);
  } else {
    out = await freshframePage(page);
  }
} catch (e) {
  out = { error: String(e.message || e).slice(0, 300) };
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));

async function janusPage(page) {
  const seconds0 = [];
  let measuring = false;
  page.on("console", (message) => {
    const text = message.text();
    if (!text.startsWith("janus-viewer ")) return;
    const summary = JSON.parse(text.slice("janus-viewer ".length));
    if (summary.viewer === 0 && summary.age_ms && measuring) seconds0.push(summary);
  });
  await page.goto(url);
  const deadline = Date.now() + 30000;
  while (!(await page.evaluate(() => (window.janusViewers || [])[0]?.ages?.length > 0))) {
    if (Date.now() > deadline) throw new Error("no frame through Janus in 30 s");
    await sleep(200);
  }
  await sleep(2000);
  measuring = true;
  await sleep(seconds * 1000);
  measuring = false;
  const p50s = seconds0.map((s) => s.age_ms.p50), p95s = seconds0.map((s) => s.age_ms.p95);
  const fps = seconds0.map((s) => s.fps);
  return { seconds: seconds0.length, fps: quantile(fps, 0.5),
    latency_ms: { count: seconds0.reduce((n, s) => n + s.age_ms.n, 0), p50: quantile(p50s, 0.5),
      p90: quantile(p95s, 0.5), p99: null, max: null } };
}

async function freshframePage(page) {
  let out;
  await page.goto(`${url}?view=${view}`);
  const deadline = Date.now() + 30000;
  while ((await page.evaluate(() => window.freshframe.latency().count)) <= 10) {
    if (Date.now() > deadline) throw new Error(`no frames measured: ${await page.evaluate(() => window.freshframe.why())}`);
    await sleep(200);
  }
  const shown = await page.evaluate(() => window.freshframe.view());
  if (shown !== view) throw new Error(`the page shows ${shown}: ${await page.evaluate(() => window.freshframe.why())}`);
  await sleep(2000);
  const start = await page.evaluate(() => performance.now());
  await sleep(seconds * 1000);
  const frames = await page.evaluate((t) => window.freshframe.recent().filter((f) => f.t > t), start);
  const clock = await page.evaluate(() => window.freshframe.latency());
  const lat = frames.map((f) => f.latencyMs);
  const span = frames.length > 1 ? (frames[frames.length - 1].t - frames[0].t) / 1000 : 0;
  out = { frames: frames.length, fps: span > 0 ? (frames.length - 1) / span : 0,
    latency_ms: { count: lat.length, p50: quantile(lat, 0.5), p90: quantile(lat, 0.9), p99: quantile(lat, 0.99),
      max: quantile(lat, 1) }, clock_uncertainty_ms: clock.uncertaintyUs / 1000 };
  return out;
}
