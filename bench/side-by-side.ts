/**
 * sos-milter against the bare Node responder, side by side in one run on the same machine.
 *
 * Both servers run as child processes the whole time; the load client (this process) drives one
 * at a time, alternating between them in interleaved repetitions (A B, then B A, ...) so drift on
 * a shared machine (other tenants, CPU frequency) affects both alike. The responder replays the
 * daemon's own OPTNEG reply, so the client sends both of them exactly the same packets and waits
 * for the same replies: one per message.
 *
 * Per repetition and server: a closed loop at 32 connections and a paced level of 1000 messages/s
 * over 32 connections, 10 messages per connection. Then each server is topped up to 100,000
 * messages and its RSS read, then 1000 idle sessions are opened and its RSS read again.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { idleSessions, runLoad, type IdleResult, type OutcomeCheck, type PhaseResult, type Target } from './load.js';
import { MtaConnection, TrafficPlan } from './mta-client.js';
import { memOf, removeAtExit, startDaemon, startResponder, type DaemonChild, type ServerChild } from './servers.js';
import { parseOptnegReply, Resp } from './wire.js';
import { HEAP_FLAGS } from '../src/daemon/heap-sizing.js';

export interface SideBySideOptions {
  /** Interleaved repetitions of each level per server (default 5). */
  repetitions?: number;
  /** Messages per closed-loop repetition (default 20,000). */
  closedMessages?: number;
  /** Length of each paced repetition, s (default 8). */
  pacedSeconds?: number;
  /** Messages each server has answered when its RSS is read (default 100,000). */
  rssAfterMessages?: number;
  /** Idle sessions for the second RSS reading (default 1000). */
  idleSessions?: number;
  /** Progress lines go here (stderr by default). */
  progress?: (line: string) => void;
}

export const CONNECTIONS = 32;
export const PACED_RATE = 1000;
export const MESSAGES_PER_CONNECTION = 10;

export type ServerKey = 'node' | 'sos';

export interface Negotiated {
  version: number;
  actions: string;
  protocol: string;
  macros: Record<string, string[]>;
}

export interface Level {
  /** Per repetition, in run order. */
  node: PhaseResult[];
  sos: PhaseResult[];
  /** sos-milter CPU / bare Node CPU per repetition (paired: run back to back). */
  cpuRatio: number[];
}

export interface SideBySideResult {
  negotiated: Negotiated;
  closed: Level;
  paced: Level;
  rss: Record<ServerKey, { afterMessages: number; rssMiB: number; peakRssMiB: number; idle: IdleResult }>;
  /** Lines the daemon logged per message it judged (non-null sender). */
  logLinesPerMessage: number;
  /** WARN/ERROR lines other than the reject notices (expected: 0), with up to 3 examples. */
  unexpectedWarnings: { count: number; examples: string[] };
  durationS: number;
}

const round = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits;

// In reject mode the daemon rejects violations (own and foreign alike) with 550 and continues otherwise.
export const SOS_CHECK: OutcomeCheck = (kind, o) => {
  const want = kind === 'own' || kind === 'foreign' ? Resp.REPLYCODE : Resp.CONTINUE;
  if (o.final !== want || o.headersAdded !== 0 || o.sendersChanged !== 0) {
    return `reply ${String.fromCharCode(o.final)} with ${o.headersAdded} header(s) and ${o.sendersChanged} sender change(s), expected ${String.fromCharCode(want)}`;
  }
  return undefined;
};
export const NODE_CHECK: OutcomeCheck = (_kind, o) => (o.final === Resp.CONTINUE ? undefined : `reply ${String.fromCharCode(o.final)}`);

export async function optnegOf(port: number): Promise<Buffer> {
  const c = await MtaConnection.open(port);
  try {
    return await c.negotiate();
  } finally {
    c.destroy();
  }
}

function describe(payload: Buffer): Negotiated {
  const r = parseOptnegReply(payload);
  const macros: Record<string, string[]> = {};
  const stageNames = ['connect', 'helo', 'envfrom', 'envrcpt', 'data', 'eom', 'eoh'];
  for (const [stage, names] of r.macros) macros[stageNames[stage] ?? String(stage)] = names;
  return { version: r.version, actions: '0x' + r.actions.toString(16), protocol: '0x' + r.protocol.toString(16), macros };
}

export function closedOpts(messages: number) {
  // Bounded: even at 500 messages/s (20x slower than this VM does) a phase ends.
  return { connections: CONNECTIONS, messages, messagesPerConnection: MESSAGES_PER_CONNECTION, timeoutMs: Math.max(60_000, messages * 2) };
}

export function pacedOpts(seconds: number) {
  return { connections: CONNECTIONS, messages: PACED_RATE * seconds, messagesPerConnection: MESSAGES_PER_CONNECTION, ratePerSec: PACED_RATE, timeoutMs: seconds * 1000 + 60_000 };
}

function scanLog(logPath: string): Pick<SideBySideResult, 'logLinesPerMessage' | 'unexpectedWarnings'> {
  const log = readFileSync(logPath, 'utf8').split('\n');
  const judged = log.filter((l) => / judged /.test(l)).length;
  // Per-message lines carry the 8-character message id after the program name.
  const perMessage = log.filter((l) => /^\S+ \S+ sos-milter: [a-z0-9]{8}/.test(l)).length;
  const warnings = log.filter((l) => /^\S+ (WARN|ERROR) /.test(l) && !/ mode=reject /.test(l));
  return { logLinesPerMessage: judged > 0 ? round(perMessage / judged) : 0, unexpectedWarnings: { count: warnings.length, examples: warnings.slice(0, 3) } };
}

/**
 * Both servers run with the heap flags the shipped launchers give the daemon (like for like:
 * the responder's young generation is capped as the daemon's). SOS_BENCH_V8_FLAGS replaces them
 * ('' for V8's defaults, which size the heap by the machine's memory).
 */
export function benchHeapFlags(): string[] {
  return (process.env.SOS_BENCH_V8_FLAGS ?? HEAP_FLAGS.join(' ')).split(' ').filter(Boolean);
}

export async function runSideBySide(opts: SideBySideOptions = {}): Promise<SideBySideResult> {
  const reps = opts.repetitions ?? 5;
  const closedMessages = opts.closedMessages ?? 20_000;
  const pacedSeconds = opts.pacedSeconds ?? 8;
  const rssAfter = opts.rssAfterMessages ?? 100_000;
  const idleCount = opts.idleSessions ?? 1000;
  const progress = opts.progress ?? ((line: string) => process.stderr.write(line + '\n'));
  const started = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'sos-bench-'));
  removeAtExit(dir);
  let daemon: DaemonChild | undefined;
  let responder: ServerChild | undefined;
  try {
    const v8Flags = benchHeapFlags();
    daemon = await startDaemon(dir, v8Flags);

    // What the daemon really agrees with Postfix's offer; the responder is told to send the same.
    const payload = await optnegOf(daemon.port);
    responder = await startResponder(payload, v8Flags);
    if (!(await optnegOf(responder.port)).equals(payload)) throw new Error('the bare responder does not negotiate like the daemon');
    const plan = new TrafficPlan(payload);
    const negotiated = describe(payload);
    progress(`node flags of both: ${v8Flags.join(' ') || "none (V8's defaults)"}`);
    progress(`negotiated by both: actions ${negotiated.actions}, protocol ${negotiated.protocol}, macros ${JSON.stringify(negotiated.macros)}`);

    const targets: Record<ServerKey, Target> = {
      node: { server: responder, plan, check: NODE_CHECK, messagesSoFar: 0 },
      sos: { server: daemon, plan, check: SOS_CHECK, messagesSoFar: 0 },
    };
    // Warm-up: fills the daemon's DNS and LDAP caches and lets V8 compile both servers' hot paths.
    for (const key of ['node', 'sos'] as const) await runLoad(targets[key], closedOpts(5000));

    const closed: Level = { node: [], sos: [], cpuRatio: [] };
    const paced: Level = { node: [], sos: [], cpuRatio: [] };
    for (let rep = 0; rep < reps; rep++) {
      const order: ServerKey[] = rep % 2 === 0 ? ['node', 'sos'] : ['sos', 'node'];
      for (const key of order) {
        const r = await runLoad(targets[key], closedOpts(closedMessages));
        closed[key].push(r);
        progress(`rep ${rep + 1}/${reps} closed ${key.padEnd(4)}: ${r.cpuUsPerMessage} us/msg, ${r.messagesPerSec} msg/s, p99 ${r.p99Ms} ms`);
      }
      closed.cpuRatio.push(round(closed.sos[rep]!.cpuUsPerMessage / closed.node[rep]!.cpuUsPerMessage));
      for (const key of [...order].reverse()) {
        const r = await runLoad(targets[key], pacedOpts(pacedSeconds));
        paced[key].push(r);
        progress(`rep ${rep + 1}/${reps} paced  ${key.padEnd(4)}: ${r.cpuUsPerMessage} us/msg, p99 ${r.p99Ms} ms`);
      }
      paced.cpuRatio.push(round(paced.sos[rep]!.cpuUsPerMessage / paced.node[rep]!.cpuUsPerMessage));
    }

    const rss = {} as SideBySideResult['rss'];
    for (const key of ['node', 'sos'] as const) {
      const t = targets[key];
      const missing = rssAfter - t.messagesSoFar;
      if (missing > 0) await runLoad(t, closedOpts(Math.ceil(missing / MESSAGES_PER_CONNECTION) * MESSAGES_PER_CONNECTION));
      const mem = memOf(t.server.pid);
      const idle = await idleSessions(t, idleCount, 2000, 60_000);
      rss[key] = { afterMessages: t.messagesSoFar, rssMiB: round(mem.rssKiB / 1024, 1), peakRssMiB: round(memOf(t.server.pid).hwmKiB / 1024, 1), idle };
      progress(`${key}: RSS ${rss[key].rssMiB} MiB after ${t.messagesSoFar} messages, ${idle.rssMiB} MiB with ${idleCount} idle sessions`);
    }

    await daemon.stop();
    return { negotiated, closed, paced, rss, ...scanLog(daemon.logPath), durationS: Math.round((performance.now() - started) / 1000) };
  } finally {
    await responder?.stop();
    await daemon?.stop();
    if (process.env.SOS_BENCH_KEEP_DIR) progress(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}
