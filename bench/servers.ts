/**
 * The two servers the side-by-side bench compares, as child processes on loopback ports, and
 * what the harness reads of them from /proc:
 *  - sos-milter: the real daemon (`node dist/src/cli/main.js`) in reject mode with the regex
 *    check and LDAP on, DNS from a private Knot and own domains from a private slapd (the e2e
 *    zones and LDIF), caches that outlive the run;
 *  - the bare Node responder (responder-child.ts), sent the daemon's own OPTNEG reply.
 * Children are killed when this process exits or is interrupted.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startKnot, type KnotInstance } from '../test/support/knot.js';
import { freePort, startSlapd, type SlapdInstance } from '../test/support/slapd.js';
import { E2E_ZONES_DIR } from '../test/support/daemon-process.js';
import { MAIN_JS, repoPath } from '../test/support/paths.js';

const RESPONDER_JS = fileURLToPath(new URL('./responder-child.js', import.meta.url));
const SPF_REGEX = String.raw`v=spf1 (?P<before>.*)include:_spf\.esp\.e2e\.test(?:\s|$)`;

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** utime+stime and utime of a process and all its threads, µs (resolution 1/CLK_TCK s). */
export function cpuOf(pid: number): { total: number; user: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return { total: ((utime + stime) * 1e6) / CLK_TCK, user: (utime * 1e6) / CLK_TCK };
}

/** Current and peak resident set size, KiB. */
export function memOf(pid: number): { rssKiB: number; hwmKiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return { rssKiB: kib('VmRSS'), hwmKiB: kib('VmHWM') };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let cleanupInstalled = false;

/** A temp dir to remove when this process exits or is interrupted (kept with SOS_BENCH_KEEP_DIR). */
export function removeAtExit(dir: string): void {
  installCleanup();
  tempDirs.add(dir);
}

/** Kills every child still running and removes temp dirs, synchronously: safe in 'exit' and signal handlers. */
export function killChildren(): void {
  for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  live.clear();
  if (!process.env.SOS_BENCH_KEEP_DIR) for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}

function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on('exit', killChildren);
  // Knot's and slapd's helpers re-raise these signals after their own cleanup; ours runs in
  // the same dispatch, before the process dies of it.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killChildren();
      process.kill(process.pid, signal);
    });
  }
}

export interface ServerChild {
  readonly name: string;
  readonly port: number;
  readonly pid: number;
  /** SIGTERM, SIGKILL after a grace period; resolves once the child is gone. */
  stop(): Promise<void>;
}

async function startChild(name: string, args: string[], env: NodeJS.ProcessEnv, port: number, stdio: ['ignore' | 'pipe', number | 'inherit', number | 'inherit']): Promise<ServerChild & { child: ChildProcess }> {
  installCleanup();
  const child = spawn(process.execPath, args, { env, stdio });
  live.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => (live.delete(child), resolve())));
  const deadline = Date.now() + 20_000;
  while (!(await accepts(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} did not start listening on 127.0.0.1:${port} within 20 s (exit ${child.exitCode})`);
    }
    await sleep(50);
  }
  return {
    name,
    port,
    pid: child.pid!,
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export interface DaemonChild extends ServerChild {
  readonly logPath: string;
}

/**
 * Starts the daemon with its private Knot and slapd (stop() stops all three). `nodeArgs` go before the script (e.g. --cpu-prof); SOS_BENCH_NODE_ARGS
 * adds more for experiments (e.g. --trace-gc, whose lines land in the log file), and
 * SOS_BENCH_DAEMON_ENV (space-separated NAME=value) overrides its environment; `env` adds to it
 * for one part of the bench (e.g. METRICS_LISTEN), below SOS_BENCH_DAEMON_ENV.
 */
export async function startDaemon(dir: string, nodeArgs: string[] = [], env: Record<string, string> = {}): Promise<DaemonChild> {
  let knot: KnotInstance | undefined;
  let slapd: SlapdInstance | undefined;
  try {
    knot = await startKnot({ zonesDir: E2E_ZONES_DIR });
    slapd = await startSlapd({ ldif: repoPath('test/data/ldap/e2e.ldif') });
    const daemon = await startDaemonOn(knot, slapd, dir, nodeArgs, env);
    const peers = { knot, slapd };
    let stopped: Promise<void> | undefined;
    return {
      ...daemon,
      stop() {
        stopped ??= (async () => {
          await daemon.stop();
          await peers.slapd.close();
          await peers.knot.close();
        })();
        return stopped;
      },
    };
  } catch (err) {
    await slapd?.close();
    await knot?.close();
    throw err;
  }
}

async function startDaemonOn(knot: KnotInstance, slapd: SlapdInstance, dir: string, nodeArgs: string[], extraEnv: Record<string, string>): Promise<DaemonChild> {
  const port = await freePort();
  const logPath = join(dir, 'daemon.log');
  const out = openSync(logPath, 'w');
  const execArgv = [...nodeArgs, ...(process.env.SOS_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)];
  try {
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      MILTER_SOCKET: `inet:${port}@127.0.0.1`,
      MILTER_MODE: 'reject',
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
      // Room for the 1000 idle sessions besides connections still closing from the last phase.
      MILTER_MAX_CONNECTIONS: '2000',
      LOG_LEVEL: 'info',
      ...extraEnv,
      // For experiments, e.g. SOS_BENCH_DAEMON_ENV='LOG_LEVEL=error' to see what logging costs.
      ...Object.fromEntries((process.env.SOS_BENCH_DAEMON_ENV ?? '').split(' ').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])),
    };
    // The log goes to a file, as to a journal: a pipe read by this process would bill its reads here.
    const started = await startChild('sos-milter', [...execArgv, MAIN_JS], env, port, ['ignore', out, out]).catch((err: Error) => {
      throw new Error(`${err.message}\n${readFileSync(logPath, 'utf8').slice(-3000)}`);
    });
    return { ...started, logPath };
  } finally {
    closeSync(out);
  }
}

/** Starts the bare responder with the OPTNEG reply payload to send (the daemon's own). */
export async function startResponder(optnegReplyPayload: Buffer, nodeArgs: string[] = []): Promise<ServerChild> {
  const port = await freePort();
  // stdin is a pipe: the responder exits when it closes, even if this process is SIGKILLed.
  return startChild('bare Node', [...nodeArgs, RESPONDER_JS, String(port), optnegReplyPayload.toString('hex')], { PATH: process.env.PATH ?? '/usr/bin:/bin' }, port, ['pipe', 'inherit', 'inherit']);
}
