// Shared helpers of the browser tests and benchmarks: start `freshframe run`
// on loopback, run `freshframe probe`, launch Debian's chromium through
// playwright-core (never a downloaded browser). Every process started here
// is killed by PID when done, and with the test process if it dies.
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const BINARY = process.env.FRESHFRAME_BINARY || path.join(REPO, "build", "release", "freshframe");
export const CHROMIUM = process.env.FRESHFRAME_CHROMIUM || "/usr/bin/chromium";
// Without the background-networking flags chromium keeps trying to reach
// Google's hosts, which this machine's closed network refuses.
export const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--no-first-run", "--disable-component-update", "--disable-sync", "--disable-quic"];

const SERVING = /^freshframe: serving on (http:\/\/\S+\/)$/m;
const children = new Set();
process.on("exit", () => { for (const child of children) child.kill("SIGKILL"); });

// Starts `freshframe run --port 0 ARGS`; resolves to {url, proc, stop(), log()}
// once it prints its address, rejects (with its output) if it exits first or
// takes longer than `timeoutMs`.
export function startServer(args, timeoutMs = 20000) {
  return startFreshframe(["run", "--port", "0", ...args], timeoutMs);
}

// `freshframe run --config FILE` (the file sets `port = 0`: no flag may be
// given beside --config), as startServer.
export function startConfigServer(file, timeoutMs = 20000) {
  return startFreshframe(["run", "--config", file], timeoutMs);
}

// `PREFIX... freshframe run --port 0 ARGS` (e.g. `ip netns exec NS`, which
// execs it: the PID stays freshframe's), as startServer.
export function startServerWith(prefix, args, timeoutMs = 20000) {
  return startFreshframe(["run", "--port", "0", ...args], timeoutMs, prefix);
}

function startFreshframe(argv, timeoutMs, prefix = []) {
  if (!fs.existsSync(BINARY)) throw new Error(`freshframe binary not found: ${BINARY}`);
  const command = [...prefix, BINARY, ...argv];
  const proc = spawn(command[0], command.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  children.add(proc);
  let output = "";
  const collect = (chunk) => { output += chunk; if (output.length > 200000) output = output.slice(-100000); };
  proc.stdout.setEncoding("utf8").on("data", collect);
  proc.stderr.setEncoding("utf8").on("data", collect);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { stop(); reject(new Error(`no "serving on" line in ${timeoutMs} ms:\n${output}`)); }, timeoutMs);
    const check = () => {
      const m = SERVING.exec(output);
      if (!m) return;
      clearTimeout(timer);
      proc.stdout.off("data", check);
      resolve({ url: m[1], proc, stop, log: () => output });
    };
    proc.stdout.on("data", check);
    proc.on("exit", (code) => { clearTimeout(timer); reject(new Error(`freshframe exited (${code}) before serving:\n${output}`)); });
    function stop() {
      return new Promise((done) => {
        if (proc.exitCode !== null || proc.signalCode !== null) { children.delete(proc); return done(); }
        const kill = setTimeout(() => proc.kill("SIGKILL"), 5000);
        proc.once("exit", () => { clearTimeout(kill); children.delete(proc); done(); });
        proc.kill("SIGTERM");
      });
    }
  });
}

// `freshframe probe URL --seconds S --json`: resolves to its JSON report.
export function runProbe(url, seconds) {
  return new Promise((resolve, reject) => {
    const proc = spawn(BINARY, ["probe", url, "--seconds", String(seconds), "--json"], { stdio: ["ignore", "pipe", "pipe"] });
    children.add(proc);
    let out = "", err = "";
    proc.stdout.setEncoding("utf8").on("data", (c) => { out += c; });
    proc.stderr.setEncoding("utf8").on("data", (c) => { err += c; });
    const timer = setTimeout(() => proc.kill("SIGKILL"), (seconds + 20) * 1000);
    proc.on("exit", (code) => {
      clearTimeout(timer);
      children.delete(proc);
      try { resolve(JSON.parse(out)); } catch (e) { reject(new Error(`probe exited ${code}: ${err}${out}`)); }
    });
  });
}

export function launchBrowser(options = {}) {
  return chromium.launch({ executablePath: options.executablePath || CHROMIUM,
    args: [...CHROMIUM_ARGS, ...(options.args || [])], timeout: 30000 });
}

export async function getJson(url, init) {
  const response = await fetch(url, { cache: "no-store", ...init });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

// Polls `fn` (async) until it returns something truthy; throws with `what`
// after `timeoutMs`.
export async function until(what, fn, timeoutMs = 15000, everyMs = 200) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try { last = await fn(); } catch (e) { last = e; }
    if (last && !(last instanceof Error)) return last;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Where screenshots go: $FRESHFRAME_ARTIFACTS, else build/e2e-artifacts.
export function artifactPath(name) {
  const dir = process.env.FRESHFRAME_ARTIFACTS || path.join(REPO, "build", "e2e-artifacts");
  fs.mkdirSync(dir, { recursive: true });
  return path.join(dir, name);
}
