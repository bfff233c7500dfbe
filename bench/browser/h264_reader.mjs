// A headless /ws/h264 viewer for bench/browser: a minimal RFC 6455 client on
// node:net (Node 20 has no WebSocket client without a flag, and the bench
// wants no npm dependency beyond playwright-core) that parses the FFH4
// header of each binary message (docs/websocket.md) and counts messages,
// bytes, keyframes and sequence gaps. It decodes nothing: it stands for a
// viewer's connection, so the server's cost per viewer can be measured
// without a browser per viewer.
import crypto from "node:crypto";
import net from "node:net";

const MAGIC = 0x34484646;  // "FFH4" read as a little-endian u32

// CLOCK_MONOTONIC in microseconds: what the capture stamps are in (Node's
// hrtime is CLOCK_MONOTONIC on Linux), so received − captured is a latency.
export const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

// Opens `url` (http://host:port/ws/h264). Resolves once the handshake is
// answered 101, with an H264Reader; rejects on any other answer or error.
// `onUnit(unit)`, if given, is called per access unit with {seq, captureUs,
// width, height, key, bytes, receivedUs}.
export function openH264(url, onUnit = () => {}) {
  const u = new URL(url);
  const key = crypto.randomBytes(16).toString("base64");
  const opened = monotonicUs();
  const socket = net.connect({ host: u.hostname, port: Number(u.port), noDelay: true });
  const reader = new H264Reader(socket, onUnit, opened);
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    const fail = (e) => { socket.destroy(); reject(e); };
    socket.once("error", fail);
    socket.on("connect", () => {
      socket.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
    const onHead = (chunk) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) { if (head.length > 16384) fail(new Error("no end of the handshake's answer")); return; }
      socket.off("data", onHead);
      socket.off("error", fail);
      const status = head.subarray(0, end).toString("latin1").split("\r\n")[0];
      if (!/^HTTP\/1\.1 101 /.test(status)) return fail(new Error(`${url}: ${status}`));
      reader.upgradedUs = monotonicUs();
      socket.on("error", () => {});
      socket.on("data", (c) => reader.feed(c));
      socket.on("close", () => { reader.closed = true; });
      reader.feed(head.subarray(end + 4));
      resolve(reader);
    };
    socket.on("data", onHead);
  });
}

export class H264Reader {
  constructor(socket, onUnit, openedUs) {
    this.socket = socket;
    this.onUnit = onUnit;
    this.openedUs = openedUs;  // before connect()
    this.upgradedUs = 0;       // when the 101 arrived
    this.firstUnitUs = 0;      // when the first access unit arrived
    this.firstKey = null;      // whether that one was a keyframe
    this.messages = 0; this.bytes = 0; this.keyframes = 0; this.gaps = 0; this.lastSeq = null;
    this.closed = false;
    this.buf = Buffer.alloc(0);
    this.parts = [];  // payloads of a fragmented message
  }

  feed(chunk) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      const b = this.buf;
      if (b.length < 2) return;
      const fin = (b[0] & 0x80) !== 0, opcode = b[0] & 0x0f, masked = (b[1] & 0x80) !== 0;
      let len = b[1] & 0x7f, at = 2;
      if (len === 126) { if (b.length < 4) return; len = b.readUInt16BE(2); at = 4; }
      else if (len === 127) { if (b.length < 10) return; len = Number(b.readBigUInt64BE(2)); at = 10; }
      if (masked) at += 4;  // a server never masks; tolerate it anyway
      if (b.length < at + len) return;
      let payload = b.subarray(at, at + len);
      if (masked) { const m = b.subarray(at - 4, at); payload = Buffer.from(payload.map((x, i) => x ^ m[i & 3])); }
      this.buf = b.subarray(at + len);
      if (opcode === 0x8) { this.close(); return; }
      if (opcode === 0x9) { this.send(0xA, payload); continue; }
      if (opcode === 0xA) continue;
      this.parts.push(payload);
      if (!fin) continue;
      const message = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts);
      const binary = (opcode || 0x2) === 0x2;
      this.parts = [];
      if (binary) this.unit(message);
    }
  }

  unit(m) {
    const now = monotonicUs();
    if (m.length < 32 || m.readUInt32LE(0) !== MAGIC) throw new Error("a message without the FFH4 header");
    const headerLength = m.readUInt16LE(6);
    const seq = Number(m.readBigUInt64LE(8));
    const unit = { seq, captureUs: Number(m.readBigUInt64LE(16)), width: m.readUInt16LE(24), height: m.readUInt16LE(26),
      key: (m[28] & 1) === 1, bytes: m.length - headerLength, receivedUs: now };
    if (this.messages === 0) { this.firstUnitUs = now; this.firstKey = unit.key; }
    if (this.lastSeq !== null && seq !== this.lastSeq + 1) this.gaps++;
    this.lastSeq = seq;
    this.messages++; this.bytes += m.length; if (unit.key) this.keyframes++;
    this.onUnit(unit);
  }

  // A masked frame, as a client must send.
  send(opcode, payload) {
    if (this.closed) return;
    const mask = crypto.randomBytes(4);
    const head = Buffer.from([0x80 | opcode, 0x80 | payload.length]);
    const body = Buffer.from(payload.map((x, i) => x ^ mask[i & 3]));
    this.socket.write(Buffer.concat([head, mask, body]));
  }

  requestKey() { this.send(0x1, Buffer.from("key")); }

  close() {
    if (this.closed) return;
    try { this.send(0x8, Buffer.from([0x03, 0xe8])); } catch (e) { /* gone */ }
    this.closed = true;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 500).unref();
  }
}
