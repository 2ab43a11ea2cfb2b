/**
 * A milter fuzzer: many connections, each a negotiated session followed by a stream of packets
 * that are mostly well framed with hostile contents (random strings, missing NULs, lying
 * lengths, unknown commands, random stage bytes, bit flips of valid packets), written in
 * random splits, some peers never reading their replies. Deterministic for a seed, so a
 * failure can be replayed. Used by the CI test and by scripts/fuzz-milter.mjs for long runs.
 */
import { connect, type Socket } from 'node:net';
import { encodeCommand, encodePacketUnchecked } from './milter-codec.js';

export interface FuzzTarget {
  port?: number;
  host?: string;
  path?: string;
}

export interface FuzzOptions {
  /** Packets to send in total. */
  packets: number;
  /** Connections open at a time (default 8). */
  concurrency?: number;
  seed?: number;
  /** Packets per connection are drawn from 1..maxPerConnection (default 400). */
  maxPerConnection?: number;
}

export interface FuzzReport {
  packets: number;
  bytes: number;
  connections: number;
  /** Connections the server closed (the rest were closed by the fuzzer). */
  closedByServer: number;
}

/** xorshift32: small, fast, reproducible. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  int(n: number): number {
    return this.next() % n;
  }
  chance(p: number): boolean {
    return this.next() / 0x100000000 < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.next() & 0xff;
    return b;
  }
}

const COMMANDS = 'ABCDEHKLMNOQRTU'.split('').map((c) => c.charCodeAt(0));
const SENDERS = ['<>', '<a@pass.e2e.test>', '<b@foreign.e2e.test>', '<x@nonexistent.invalid>', '<postmaster>', 'bare@e2e.test', '<@route:a@b>', '<"q u"@pass.e2e.test>'];

function randomString(r: Rng, max = 40): string {
  const n = r.int(max);
  let s = '';
  for (let i = 0; i < n; i++) {
    const k = r.int(10);
    s += k < 6 ? String.fromCharCode(0x61 + r.int(26)) : k < 8 ? r.pick(['.', '@', '<', '>', '{', '}', ' ', '-', ':']) : String.fromCharCode(r.int(0x110) || 1);
  }
  return s;
}

/** One hostile packet. Most are framed correctly; a few are fatal for the connection by design. */
export function fuzzPacket(r: Rng): Buffer {
  const k = r.int(100);
  if (k < 20) {
    // Macros with random names, values and stage bytes (sometimes an odd count).
    const pairs = Array.from({ length: r.int(6) }, () => ({ name: r.chance(0.5) ? `{${randomString(r, 12)}}` : randomString(r, 3), value: randomString(r) }));
    return encodeCommand({ type: 'macro', stage: r.chance(0.8) ? r.pick(COMMANDS) : r.int(256), pairs });
  }
  if (k < 35) return encodeCommand({ type: 'mail', args: [r.chance(0.6) ? r.pick(SENDERS) : `<${randomString(r)}@${randomString(r, 20)}>`, ...(r.chance(0.3) ? [randomString(r)] : [])] });
  if (k < 45) return encodeCommand({ type: 'rcpt', args: [`<${randomString(r)}>`] });
  if (k < 52) return encodeCommand({ type: 'eob', data: r.chance(0.2) ? r.bytes(r.int(64)) : Buffer.alloc(0) });
  if (k < 57) return encodeCommand({ type: 'helo', name: randomString(r) });
  if (k < 62) {
    const ip = r.chance(0.5) ? `192.0.2.${r.int(256)}` : `2001:db8::${r.int(0xffff).toString(16)}`;
    return encodeCommand({ type: 'connect', hostname: randomString(r), family: ip.includes(':') ? 'inet6' : 'inet', port: r.int(65536), address: ip });
  }
  if (k < 66) return encodeCommand({ type: 'header', name: randomString(r, 10) || 'X', value: randomString(r) });
  if (k < 72) return encodeCommand(r.pick([{ type: 'abort' }, { type: 'data' }, { type: 'eoh' }, { type: 'quitNc' }] as const));
  if (k < 76) return encodeCommand({ type: 'body', chunk: r.bytes(r.int(200)) });
  if (k < 80) return encodeCommand({ type: 'unknown', line: randomString(r) });
  if (k < 90) {
    // A valid packet with a few bytes of its payload flipped (the length stays true).
    const p = Buffer.from(encodeCommand({ type: 'mail', args: [r.pick(SENDERS), 'SIZE=10'] }));
    for (let i = 0; i < 1 + r.int(3); i++) p[5 + r.int(p.length - 5)] ^= 1 << r.int(8);
    return p;
  }
  if (k < 95) return encodePacketUnchecked(r.pick(COMMANDS), r.bytes(r.int(32))); // random payload, right length
  if (k < 97) return encodePacketUnchecked(r.int(256), r.bytes(r.int(16))); // maybe an unknown command
  if (k < 98) return encodeCommand({ type: 'optneg', version: r.int(8), actions: r.next(), protocol: r.next() });
  if (k < 99) {
    // A lying length: zero, or larger than the payload limit.
    const b = Buffer.alloc(5);
    b.writeUInt32BE(r.chance(0.5) ? 0 : 0x7fffffff, 0);
    b[4] = r.pick(COMMANDS);
    return b;
  }
  return encodeCommand({ type: 'quit' });
}

const OFFER = encodeCommand({ type: 'optneg', version: 6, actions: 0x1ff, protocol: 0x1fffff });

function openSocket(t: FuzzTarget): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = t.path !== undefined ? connect(t.path) : connect({ port: t.port!, host: t.host ?? '127.0.0.1' });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Runs one hostile connection: negotiation, then `n` fuzz packets in random splits. */
async function fuzzConnection(t: FuzzTarget, r: Rng, n: number, report: FuzzReport): Promise<void> {
  const s = await openSocket(t);
  report.connections++;
  let serverClosed = true;
  s.on('error', () => undefined);
  // A third of the peers never read their replies.
  if (r.chance(0.33)) s.pause();
  else s.on('data', () => undefined);
  const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
  const packets: Buffer[] = r.chance(0.95) ? [OFFER] : [];
  for (let i = 0; i < n; i++) packets.push(fuzzPacket(r));
  report.packets += n;
  const all = Buffer.concat(packets);
  report.bytes += all.length;
  let off = 0;
  while (off < all.length && !s.destroyed) {
    const len = r.chance(0.5) ? all.length - off : 1 + r.int(Math.min(4096, all.length - off));
    s.write(all.subarray(off, off + len));
    off += len;
    if (r.chance(0.1)) await new Promise((res) => setImmediate(res));
  }
  // Give the server a moment to answer or close; then hang up ourselves.
  const timer = setTimeout(() => {
    serverClosed = false;
    s.destroy();
  }, 50 + r.int(150));
  await closed;
  clearTimeout(timer);
  if (serverClosed) report.closedByServer++;
}

export async function runFuzz(target: FuzzTarget, opts: FuzzOptions): Promise<FuzzReport> {
  const r = new Rng(opts.seed ?? 1);
  const report: FuzzReport = { packets: 0, bytes: 0, connections: 0, closedByServer: 0 };
  const maxPer = opts.maxPerConnection ?? 400;
  const workers = Array.from({ length: opts.concurrency ?? 8 }, async (_, w) => {
    const wr = new Rng((opts.seed ?? 1) * 7919 + w + 1);
    while (report.packets < opts.packets) {
      const n = Math.min(1 + wr.int(maxPer), opts.packets - report.packets);
      if (n <= 0) break;
      await fuzzConnection(target, new Rng(wr.next() ^ r.next()), n, report);
    }
  });
  await Promise.all(workers);
  return report;
}
