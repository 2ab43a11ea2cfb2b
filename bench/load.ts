/**
 * Load phases against one server: closed loop (every connection sends its next message as soon
 * as the last is answered) or paced (open loop at a total rate), and idle sessions. CPU per
 * message is the server process's own utime+stime from /proc over the phase, divided by the
 * messages it answered; it includes the per-connection work (accept, OPTNEG, CONNECT, HELO, QUIT,
 * close) amortised over the messages of a connection, garbage collection, and the kernel's work
 * for the server's reads and writes.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { MtaConnection, type ConnectionSet, type MessageOutcome, type MessageSpec, type TrafficPlan } from './mta-client.js';
import { cpuOf, memOf, type ServerChild } from './servers.js';

export type SenderKind = 'pass' | 'own' | 'foreign' | 'null';

export type Mix = readonly { kind: SenderKind; msg: MessageSpec }[];

/** Submission traffic of an ESP: mostly fine, some broken records (e2e zones and LDIF). */
export const MIX: Mix = [
  { kind: 'pass', msg: { sender: 'news@pass.e2e.test', recipient: 'someone@rcpt.example' } },
  { kind: 'pass', msg: { sender: 'billing@pass.e2e.test', recipient: 'someone@rcpt.example' } },
  { kind: 'own', msg: { sender: 'info@own.e2e.test', recipient: 'someone@rcpt.example' } },
  { kind: 'foreign', msg: { sender: 'news@foreign.e2e.test', recipient: 'someone@rcpt.example' } },
  { kind: 'pass', msg: { sender: 'alerts@soft.e2e.test', recipient: 'someone@rcpt.example' } },
  { kind: 'foreign', msg: { sender: 'team@redirected.e2e.test', recipient: 'someone@rcpt.example' } },
  { kind: 'null', msg: { sender: '', recipient: 'someone@rcpt.example' } },
  { kind: 'pass', msg: { sender: 'news@pass.e2e.test', recipient: 'someone@rcpt.example' } },
];

/** Checks an outcome; returns a description when it is not what this server should answer. */
export type OutcomeCheck = (kind: SenderKind, o: MessageOutcome) => string | undefined;

export interface Target {
  server: ServerChild;
  plan: TrafficPlan;
  check: OutcomeCheck;
  /** The senders, in turn (default MIX). */
  mix?: Mix;
  /** Messages this server answered so far (for "RSS after 100,000 messages"). */
  messagesSoFar: number;
}

export interface PhaseResult {
  messages: number;
  durationMs: number;
  messagesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Server CPU (user + system) per message, µs. */
  cpuUsPerMessage: number;
  /** User-space share of it; the rest is kernel time (socket reads and writes). */
  userUsPerMessage: number;
  /** p99 of the load client's own event-loop delay: latency the client adds itself. */
  clientLoopDelayP99Ms: number;
  /** The load client's CPU per message, µs (it shares the two cores with the server). */
  clientCpuUsPerMessage: number;
}

export interface LoadOptions {
  connections: number;
  messages: number;
  messagesPerConnection: number;
  /** Total offered rate, messages/s; undefined: closed loop. */
  ratePerSec?: number;
  /** The phase fails (its sockets destroyed) after this long. */
  timeoutMs: number;
}

const round = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits;

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Open-loop pacing: message j may start at t0 + j / rate, whichever connection sends it. */
class Pacer {
  private ticket = 0;
  private readonly t0 = performance.now();
  constructor(private readonly ratePerSec: number) {}
  wait(): Promise<void> | undefined {
    const due = this.t0 + (this.ticket++ * 1000) / this.ratePerSec;
    const delay = due - performance.now();
    return delay > 0 ? new Promise((resolve) => setTimeout(resolve, delay)) : undefined;
  }
}

/** Runs one load phase against `target` and measures it. Throws on a wrong answer or overrun. */
export async function runLoad(target: Target, opts: LoadOptions): Promise<PhaseResult> {
  const latencies = new Float64Array(opts.messages);
  let done = 0;
  let left = opts.messages;
  let cursor = 0;
  let failure: Error | undefined;
  const open: ConnectionSet = new Set();
  const pacer = opts.ratePerSec ? new Pacer(opts.ratePerSec) : undefined;
  const { server, plan } = target;
  const mix = target.mix ?? MIX;

  const fail = (err: Error): void => {
    failure ??= err;
    for (const c of open) c.destroy();
  };
  const work = async (): Promise<void> => {
    while (left > 0 && !failure) {
      const n = Math.min(opts.messagesPerConnection, left);
      left -= n;
      const c = await MtaConnection.open(server.port, open);
      await c.start(plan);
      for (let k = 0; k < n && !failure; k++) {
        await pacer?.wait();
        const pick = mix[cursor++ % mix.length]!;
        const o = await c.message(plan, pick.msg);
        const wrong = target.check(pick.kind, o);
        if (wrong) throw new Error(`${server.name}: ${pick.kind} <${pick.msg.sender}>: ${wrong}`);
        latencies[done++] = o.latencyMs;
      }
      await c.quit();
    }
  };
  const worker = (): Promise<void> => work().catch(fail);

  const watchdog = setTimeout(() => fail(new Error(`${server.name}: phase did not finish within ${opts.timeoutMs} ms (${done} of ${opts.messages} messages)`)), opts.timeoutMs);
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  const clientCpu0 = process.cpuUsage();
  const cpu0 = cpuOf(server.pid);
  const t0 = performance.now();
  loopDelay.enable();
  try {
    await Promise.all(Array.from({ length: opts.connections }, worker));
    if (failure) throw failure;
  } finally {
    clearTimeout(watchdog);
    loopDelay.disable();
  }
  const durationMs = performance.now() - t0;
  const cpu1 = cpuOf(server.pid);
  const clientCpu = process.cpuUsage(clientCpu0);
  target.messagesSoFar += done;
  const sorted = latencies.subarray(0, done).sort();
  return {
    messages: done,
    durationMs: Math.round(durationMs),
    messagesPerSec: Math.round((done / durationMs) * 1000),
    p50Ms: round(percentile(sorted, 50), 3),
    p99Ms: round(percentile(sorted, 99), 3),
    cpuUsPerMessage: round((cpu1.total - cpu0.total) / done, 1),
    userUsPerMessage: round((cpu1.user - cpu0.user) / done, 1),
    clientLoopDelayP99Ms: round(loopDelay.percentile(99) / 1e6, 2),
    clientCpuUsPerMessage: round((clientCpu.user + clientCpu.system) / done, 1),
  };
}

export interface IdleResult {
  sessions: number;
  rssMiB: number;
  /** RSS before the sessions were opened. */
  rssBeforeMiB: number;
}

/**
 * Opens `count` sessions (OPTNEG, CONNECT, HELO, as Postfix does when an SMTP client connects),
 * leaves them idle for `settleMs`, reads the server's RSS, then closes them.
 */
export async function idleSessions(target: Target, count: number, settleMs: number, timeoutMs: number): Promise<IdleResult> {
  const { server, plan } = target;
  const open: ConnectionSet = new Set();
  const rssBeforeMiB = round(memOf(server.pid).rssKiB / 1024, 1);
  const watchdog = setTimeout(() => {
    for (const c of open) c.destroy();
  }, timeoutMs);
  try {
    const sessions: MtaConnection[] = [];
    // In batches, as connections arrive at an MTA: a burst of 1000 SYNs would overrun the backlog.
    for (let i = 0; i < count; i += 100) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(100, count - i) }, async () => {
          const c = await MtaConnection.open(server.port, open);
          await c.start(plan);
          return c;
        }),
      );
      sessions.push(...batch);
    }
    await new Promise((r) => setTimeout(r, settleMs));
    const rssMiB = round(memOf(server.pid).rssKiB / 1024, 1);
    const closed = sessions.filter((s) => s.isClosed).length;
    if (closed > 0) throw new Error(`${server.name} closed ${closed} of ${count} idle sessions`);
    await Promise.all(sessions.map((s) => s.quit()));
    return { sessions: count, rssMiB, rssBeforeMiB };
  } finally {
    clearTimeout(watchdog);
    for (const c of open) c.destroy();
  }
}
