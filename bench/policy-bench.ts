/**
 * Full-policy benchmark: the real daemon (`node dist/src/cli/main.js`, a child process so its
 * own CPU time and peak RSS can be read from /proc) in test mode with SPF_CHECK=regex and LDAP
 * on, DNS from a private Knot and own domains from a private slapd (the e2e zone and LDIF).
 * A Postfix-like load client sends a mix of senders: passing, violating own (LDAP asked, header
 * added), violating foreign (LDAP asked), null sender. Caches are warmed before measuring.
 * Figures per concurrency level: messages/s, p50/p99 per message (MAIL..EOM), milter CPU µs
 * per message (utime+stime) and RSS.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startKnot, type KnotInstance } from '../test/support/knot.js';
import { startSlapd, freePort, type SlapdInstance } from '../test/support/slapd.js';
import { PolicyConnection, type MessageSpec } from './policy-client.js';

export interface PolicyBenchOptions {
  /** Concurrent milter connections per run (default 1, 8, 32, 128). */
  concurrency?: number[];
  /** Messages per run (default 20000). */
  messagesPerRun?: number;
  /** Messages per milter connection, i.e. per SMTP session (default 10). */
  messagesPerConnection?: number;
  /** Total rate of the paced latency level at 32 connections (default 2000 messages/s; 0 skips it). */
  pacedRatePerSec?: number;
  /** Directory for a V8 CPU profile of the daemon (node --cpu-prof), written when it exits. */
  cpuProfileDir?: string;
}

export interface PolicyLevelResult {
  connections: number;
  /** 'max': closed loop, every connection sends as fast as it is answered; a number: open loop at that total rate. */
  offeredRatePerSec: number | 'max';
  messages: number;
  durationMs: number;
  messagesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  milterCpuUsPerMessage: number;
  milterUserUsPerMessage: number;
  milterRssMiB: number;
  milterPeakRssMiB: number;
  /** p99 of the load client's event-loop delay: latency the client adds itself. */
  clientLoopDelayP99Ms: number;
}

export interface PolicyBenchResult {
  mix: Record<SenderKind, number>;
  levels: PolicyLevelResult[];
  /** Lines the daemon logged per judged (non-null) message at LOG_LEVEL=info. */
  logLinesPerMessage: number;
  /** WARN/ERROR lines in the daemon's log during the whole bench (expected: 0). */
  warnings: number;
}

type SenderKind = 'pass' | 'own' | 'foreign' | 'null';

const REPO = (rel: string): string => fileURLToPath(new URL(`../../${rel}`, import.meta.url));
const MAIN_JS = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const SPF_REGEX = String.raw`v=spf1 (?P<before>.*)include:_spf\.esp\.e2e\.test(?:\s|$)`;

// Postfix-like traffic of an ESP's submission service: mostly fine, some broken records.
const MIX: { kind: SenderKind; sender: string }[] = [
  { kind: 'pass', sender: 'news@pass.e2e.test' },
  { kind: 'pass', sender: 'billing@pass.e2e.test' },
  { kind: 'own', sender: 'info@own.e2e.test' },
  { kind: 'foreign', sender: 'news@foreign.e2e.test' },
  { kind: 'pass', sender: 'alerts@soft.e2e.test' },
  { kind: 'foreign', sender: 'team@redirected.e2e.test' },
  { kind: 'null', sender: '' },
  { kind: 'pass', sender: 'news@pass.e2e.test' },
];

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** utime+stime and utime of a process, µs. */
function cpuOf(pid: number): { total: number; user: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return { total: ((utime + stime) * 1e6) / CLK_TCK, user: (utime * 1e6) / CLK_TCK };
}

function memOf(pid: number): { rssKiB: number; hwmKiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return { rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM') };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const round = (x: number): number => Math.round(x * 100) / 100;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

interface RunningDaemon {
  child: ChildProcess;
  port: number;
  logPath: string;
  stop(): Promise<void>;
}

async function startDaemonChild(knot: KnotInstance, slapd: SlapdInstance, dir: string, cpuProfileDir?: string): Promise<RunningDaemon> {
  const port = await freePort();
  const logPath = join(dir, 'daemon.log');
  const out = openSync(logPath, 'w');
  const execArgv = cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfileDir}`] : [];
  // Extra Node flags for the daemon, for experiments (e.g. --trace-gc).
  if (process.env.SOS_BENCH_NODE_ARGS) execArgv.push(...process.env.SOS_BENCH_NODE_ARGS.split(' ').filter(Boolean));
  const child = spawn(process.execPath, [...execArgv, MAIN_JS], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      MILTER_SOCKET: `inet:${port}@127.0.0.1`,
      MILTER_MODE: 'test',
      SPF_CHECK: 'regex',
      SPF_REGEX,
      DNS_SERVERS: `127.0.0.1:${knot.port}`,
      LDAP_ENABLED: 'yes',
      LDAP_SERVER_URI: slapd.url,
      LDAP_SEARCH_BASE: `ou=domains,${slapd.suffix}`,
      LDAP_QUERY_FILTER: '(dc=%d)',
      // Warm caches for the whole run: no answer expires while measuring.
      LDAP_CACHE_TTL: '3600',
      LDAP_NEGATIVE_CACHE_TTL: '3600',
      LOG_LEVEL: 'info',
    },
    // The log goes to a file, as to a journal: a pipe read by this process would bill its reads here.
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 15_000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`sos-milter did not start:\n${readFileSync(logPath, 'utf8').slice(-3000)}`);
    }
    await sleep(50);
  }
  return {
    child,
    port,
    logPath,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

interface RunTotals {
  latencies: number[];
  counts: Record<SenderKind, number>;
  /** Messages whose header additions do not fit their kind (own: 1, others: 0), or not 'c'. */
  unexpected: string[];
}

let queueCounter = 0x10000;

/** Open-loop pacing: message j may start at t0 + j / rate, whichever connection sends it. */
class Pacer {
  private ticket = 0;
  private readonly t0 = performance.now();
  constructor(private readonly ratePerSec: number) {}
  async wait(): Promise<void> {
    const due = this.t0 + (this.ticket++ * 1000) / this.ratePerSec;
    const delay = due - performance.now();
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

async function oneConnection(port: number, messages: number, cursor: { i: number }, totals: RunTotals, pacer?: Pacer): Promise<void> {
  const c = await PolicyConnection.open(port);
  await c.start();
  for (let k = 0; k < messages; k++) {
    if (pacer) await pacer.wait();
    const pick = MIX[cursor.i++ % MIX.length]!;
    const spec: MessageSpec = { sender: pick.sender, recipient: 'someone@rcpt.example', queueId: (queueCounter++).toString(16).toUpperCase() };
    const o = await c.message(spec);
    totals.latencies.push(o.latencyMs);
    totals.counts[pick.kind]++;
    const wantHeaders = pick.kind === 'own' ? 1 : 0;
    if (o.reply !== 'c' || o.headersAdded !== wantHeaders) {
      if (totals.unexpected.length < 5) totals.unexpected.push(`${pick.kind} ${pick.sender || '<>'}: reply ${o.reply}, ${o.headersAdded} header(s)`);
    }
  }
  await c.end();
}

async function runLevel(port: number, connections: number, messages: number, perConn: number, pacer?: Pacer): Promise<RunTotals> {
  const totals: RunTotals = { latencies: [], counts: { pass: 0, own: 0, foreign: 0, null: 0 }, unexpected: [] };
  const cursor = { i: 0 };
  let left = messages;
  const worker = async (): Promise<void> => {
    while (left > 0) {
      const n = Math.min(perConn, left);
      left -= n;
      await oneConnection(port, n, cursor, totals, pacer);
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  return totals;
}

export async function runPolicyBench(opts: PolicyBenchOptions = {}): Promise<PolicyBenchResult> {
  const levels: { n: number; rate?: number }[] = (opts.concurrency ?? [1, 8, 32, 128]).map((n) => ({ n }));
  // Saturation levels measure CPU; the paced level measures latency under a realistic load
  // (twice what the Python original handled at saturation), where queueing does not dominate.
  if (opts.pacedRatePerSec !== 0) levels.push({ n: 32, rate: opts.pacedRatePerSec ?? 2000 });
  const perRun = opts.messagesPerRun ?? 20000;
  const perConn = opts.messagesPerConnection ?? 10;
  const dir = mkdtempSync(join(tmpdir(), 'sos-policy-bench-'));
  let knot: KnotInstance | undefined;
  let slapd: SlapdInstance | undefined;
  let daemon: RunningDaemon | undefined;
  try {
    knot = await startKnot({ zonesDir: REPO('test/data/dns/e2e') });
    slapd = await startSlapd({ ldif: REPO('test/data/ldap/e2e.ldif') });
    daemon = await startDaemonChild(knot, slapd, dir, opts.cpuProfileDir);
    const pid = daemon.child.pid!;

    // Warm-up: fills the DNS and LDAP caches and lets V8 compile the hot paths.
    const warm = await runLevel(daemon.port, 8, 4000, perConn);
    if (warm.unexpected.length > 0) throw new Error(`unexpected outcomes during warm-up: ${warm.unexpected.join('; ')}`);

    const results: PolicyLevelResult[] = [];
    const mix: Record<SenderKind, number> = { pass: 0, own: 0, foreign: 0, null: 0 };
    for (const { n, rate } of levels) {
      const cpu0 = cpuOf(pid);
      const t0 = performance.now();
      const count0 = rate ? Math.min(perRun, rate * 5) : Math.max(perRun, n * perConn);
      // The load client's own event-loop stalls end up in the measured latency: report them.
      const clientDelay = monitorEventLoopDelay({ resolution: 1 });
      clientDelay.enable();
      const totals = await runLevel(daemon.port, n, count0, perConn, rate ? new Pacer(rate) : undefined);
      clientDelay.disable();
      const durationMs = performance.now() - t0;
      const cpu1 = cpuOf(pid);
      const mem = memOf(pid);
      if (totals.unexpected.length > 0) throw new Error(`unexpected outcomes at ${n} connections: ${totals.unexpected.join('; ')}`);
      for (const k of Object.keys(mix) as SenderKind[]) mix[k] += totals.counts[k];
      const count = totals.latencies.length;
      totals.latencies.sort((a, b) => a - b);
      results.push({
        connections: n,
        offeredRatePerSec: rate ?? 'max',
        messages: count,
        durationMs: Math.round(durationMs),
        messagesPerSec: Math.round((count / durationMs) * 1000),
        p50Ms: round(percentile(totals.latencies, 50)),
        p99Ms: round(percentile(totals.latencies, 99)),
        milterCpuUsPerMessage: round((cpu1.total - cpu0.total) / count),
        milterUserUsPerMessage: round((cpu1.user - cpu0.user) / count),
        milterRssMiB: round(mem.rssKiB / 1024),
        milterPeakRssMiB: round(mem.hwmKiB / 1024),
        clientLoopDelayP99Ms: round(clientDelay.percentile(99) / 1e6),
      });
    }
    await daemon.stop();
    const log = readFileSync(daemon.logPath, 'utf8').split('\n');
    const judged = log.filter((l) => / judged /.test(l)).length;
    const perMessage = log.filter((l) => /^\S+ \S+ sos-milter: [a-z0-9]{8}/.test(l)).length;
    return {
      mix,
      levels: results,
      logLinesPerMessage: judged > 0 ? round(perMessage / judged) : 0,
      warnings: log.filter((l) => /^\S+ (WARN|ERROR) /.test(l)).length,
    };
  } finally {
    await daemon?.stop();
    await slapd?.close();
    await knot?.close();
    if (process.env.SOS_BENCH_KEEP_DIR) console.error(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}
