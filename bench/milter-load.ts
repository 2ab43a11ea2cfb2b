/**
 * Milter load benchmark. The milter server runs in a child process (bench/milter-load-child)
 * with a trivial application; this process is the MTA side and talks like Postfix does:
 * OPTNEG, CONNECT and HELO with their macro packets, then per message D M + MAIL, D R + RCPT,
 * D E + end of message (no DATA/headers/body), ABORT after each, 10 messages per connection,
 * QUIT. Figures: messages/s, p50/p99 latency per message (MAIL sent -> EOM answered), milter
 * CPU µs per message and the milter's peak RSS.
 *
 * The CPU figure is the child's own (process.cpuUsage: all its threads, user + system) from the
 * start to the end of a level, divided by the messages that reached end of message. It includes
 * the per-connection work amortised over 10 messages (accept, OPTNEG, CONNECT, HELO, QUIT,
 * close), garbage collection, and the kernel's work for the child's writes — on loopback the
 * sender's write also runs the receiving side of TCP. It excludes the load client, which runs in
 * this process. MILTER_BENCH_CHILD=floor runs a bare responder instead of the milter library
 * (the platform's floor for the same traffic); MILTER_BENCH_SOCKET=unix uses a UNIX socket.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { loadavg } from 'node:os';
import { Cmd, PacketDecoder } from '../src/milter/index.js';
import { encodeCommand, type MtaCommand } from '../test/support/milter-codec.js';
import type { BenchAddress } from './milter-load-socket.js';

export interface MilterBenchOptions {
  /** Concurrent connections per run (default 1, 32, 128, 1000). */
  concurrency?: number[];
  /** Messages per connection (default 10). */
  messagesPerConnection?: number;
  /** Messages per run, at least one connection's worth per concurrent connection (default 20000). */
  messagesPerRun?: number;
  /** 'milter' (default): the library with a trivial application; 'floor': a bare responder. */
  child?: 'milter' | 'floor';
}

export interface Result {
  connections: number;
  messages: number;
  durationMs: number;
  messagesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  milterCpuUsPerMessage: number;
  /** User-space share of the CPU time (the rest is kernel time: socket reads and writes). */
  milterUserUsPerMessage: number;
  milterPeakRssMiB: number;
  /** 1-minute load average at the end of the level: CPU figures inflate on a busy machine. */
  loadAvg1: number;
}

const FINAL = new Set([0x61, 0x63, 0x64, 0x72, 0x73, 0x74, 0x79, 0x34, 0x4f]);

function packets(cmds: MtaCommand[]): Buffer {
  return Buffer.concat(cmds.map(encodeCommand));
}

// Postfix sends a D packet before each command (even an empty one) and flushes both together.
const OPEN = packets([{ type: 'optneg', version: 6, actions: 0x1ff, protocol: 0x1fffff }]);
const CONNECT = packets([
  { type: 'macro', stage: Cmd.CONNECT, pairs: [{ name: 'j', value: 'mx.example' }, { name: '{daemon_name}', value: 'mx.example' }, { name: 'v', value: 'Postfix 3.7.11' }, { name: '{client_addr}', value: '192.0.2.10' }] },
  { type: 'connect', hostname: '[192.0.2.10]', family: 'inet', port: 40000, address: '192.0.2.10' },
]);
const HELO = packets([{ type: 'macro', stage: Cmd.HELO, pairs: [] }, { type: 'helo', name: 'client.example' }]);
const MAIL = packets([
  { type: 'macro', stage: Cmd.MAIL, pairs: [{ name: '{mail_addr}', value: 'alice@sender.example' }, { name: '{mail_host}', value: 'sender.example' }, { name: '{mail_mailer}', value: 'smtp' }] },
  { type: 'mail', args: ['<alice@sender.example>', 'SIZE=1234'] },
]);
const RCPT = packets([
  { type: 'macro', stage: Cmd.RCPT, pairs: [{ name: '{rcpt_addr}', value: 'bob@rcpt.example' }, { name: '{rcpt_host}', value: 'rcpt.example' }, { name: '{rcpt_mailer}', value: 'smtp' }] },
  { type: 'rcpt', args: ['<bob@rcpt.example>'] },
]);
const EOM = packets([{ type: 'macro', stage: Cmd.BODYEOB, pairs: [{ name: 'i', value: '4XyZ1234' }] }, { type: 'eob', data: Buffer.alloc(0) }]);
const ABORT = packets([{ type: 'abort' }]);
const QUIT = packets([{ type: 'abort' }, { type: 'quit' }]);

/** One MTA-side connection with a queue of waiters for final replies. */
class BenchConnection {
  private waiters: (() => void)[] = [];
  private closed = false;
  private constructor(private readonly sock: Socket) {
    const d = new PacketDecoder((cmd) => {
      if (FINAL.has(cmd)) this.waiters.shift()?.();
    });
    sock.on('data', (c: Buffer) => d.push(c));
    sock.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w();
    });
    sock.on('error', () => undefined);
  }
  static open(to: BenchAddress): Promise<BenchConnection> {
    return new Promise((resolve, reject) => {
      const s = to.path !== undefined ? connect({ path: to.path }) : connect({ port: to.port, host: '127.0.0.1', noDelay: true });
      s.once('connect', () => resolve(new BenchConnection(s)));
      s.once('error', reject);
    });
  }
  request(bytes: Buffer): Promise<void> {
    if (this.closed) return Promise.reject(new Error('milter closed the connection'));
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.sock.write(bytes);
    });
  }
  send(bytes: Buffer): void {
    this.sock.write(bytes);
  }
  end(): Promise<void> {
    return new Promise((resolve) => {
      if (this.closed) return resolve();
      this.sock.once('close', () => resolve());
    });
  }
  get isClosed(): boolean {
    return this.closed;
  }
}

async function oneConnection(to: BenchAddress, messages: number, latencies: number[]): Promise<void> {
  const c = await BenchConnection.open(to);
  await c.request(OPEN);
  await c.request(CONNECT);
  await c.request(HELO);
  for (let i = 0; i < messages; i++) {
    const t0 = process.hrtime.bigint();
    await c.request(MAIL);
    await c.request(RCPT);
    await c.request(EOM);
    latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
    c.send(ABORT);
  }
  if (c.isClosed) throw new Error('milter closed the connection early');
  c.send(QUIT);
  await c.end();
}

function ask<T>(child: ChildProcess, op: string): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: { op: string }): void => {
      if (m.op === op) {
        child.off('message', on);
        resolve(m as T);
      }
    };
    child.on('message', on);
    child.send({ op });
  });
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function runMilterBench(opts: MilterBenchOptions = {}): Promise<Result[]> {
  const levels = opts.concurrency ?? [1, 32, 128, 1000];
  const perConn = opts.messagesPerConnection ?? 10;
  const perRun = opts.messagesPerRun ?? 20000;
  const kind = opts.child ?? (process.env['MILTER_BENCH_CHILD'] === 'floor' ? 'floor' : 'milter');
  const script = kind === 'floor' ? './milter-load-floor-child.js' : './milter-load-child.js';
  const child = fork(new URL(script, import.meta.url), [], { execArgv: process.env['MILTER_BENCH_CHILD_ARGS'] ? process.env['MILTER_BENCH_CHILD_ARGS'].split(' ') : process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const ready = await new Promise<BenchAddress>((resolve, reject) => {
      child.once('message', (m: { op: string } & BenchAddress) => resolve(m.path !== undefined ? { path: m.path } : { port: m.port }));
      child.once('exit', (code) => reject(new Error(`milter child exited with ${code}`)));
    });
    const results: Result[] = [];
    // Warm-up so JIT compilation is not billed to the first level.
    await Promise.all(Array.from({ length: 8 }, () => oneConnection(ready, perConn, [])));
    for (const n of levels) {
      const connectionsTotal = Math.max(n, Math.ceil(perRun / perConn));
      const latencies: number[] = [];
      await ask(child, 'reset');
      const t0 = performance.now();
      let started = 0;
      const worker = async (): Promise<void> => {
        while (started < connectionsTotal) {
          started++;
          await oneConnection(ready, perConn, latencies);
        }
      };
      await Promise.all(Array.from({ length: n }, worker));
      const durationMs = performance.now() - t0;
      const s = await ask<{ cpuUs: number; userUs: number; messages: number; maxRssKiB: number }>(child, 'stats');
      latencies.sort((a, b) => a - b);
      results.push({
        connections: n,
        messages: latencies.length,
        durationMs: Math.round(durationMs),
        messagesPerSec: Math.round((latencies.length / durationMs) * 1000),
        p50Ms: round(percentile(latencies, 50)),
        p99Ms: round(percentile(latencies, 99)),
        milterCpuUsPerMessage: round(s.cpuUs / Math.max(1, s.messages)),
        milterUserUsPerMessage: round(s.userUs / Math.max(1, s.messages)),
        milterPeakRssMiB: round(s.maxRssKiB / 1024),
        loadAvg1: round(loadavg()[0]!),
      });
    }
    return results;
  } finally {
    child.send({ op: 'exit' });
    await new Promise((r) => {
      const t = setTimeout(() => {
        child.kill('SIGKILL');
        r(undefined);
      }, 3000);
      child.once('exit', () => {
        clearTimeout(t);
        r(undefined);
      });
    });
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
