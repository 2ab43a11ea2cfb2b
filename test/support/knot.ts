// Throwaway Knot DNS (knotd) instance for integration tests: config, zones, database and
// control socket in a temp dir, listening on 127.0.0.1 and a free port (UDP and TCP).
// Besides ordinary zones it can make
//  - SERVFAIL zones: configured with a zone file that fails to load; Knot answers SERVFAIL
//    for every name in a zone it failed to load (verified with Knot 3.2);
//  - timeout names: each becomes a zone whose queries mod-dnsproxy forwards to a loopback
//    blackhole (UDP socket and TCP listener in this process that never answer). Knot holds
//    the query until its proxy timeout, so the client times out first and sees no answer.
//    A hung proxy occupies one Knot worker, so many workers (128) are configured (UDP sockets use
//    SO_REUSEPORT, a query hashed to a busy worker waits): keep client timeouts for such
//    names short and let other lookups retry.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StubResolver } from '../../src/dns/stub-resolver.js';
import { DnsError } from '../../src/dns/types.js';
import { sleep } from './wait.js';

export interface KnotOptions {
  /** Directory of zone files named `<origin>.zone` (e.g. `example.test.zone`). */
  zonesDir?: string;
  /** Zone texts by origin (no trailing dot needed); merged with zonesDir, these win. */
  zones?: Record<string, string>;
  /** Names that never get an answer (they and every name below them). */
  timeoutNames?: string[];
  /** Zones for which Knot answers SERVFAIL. */
  servfailZones?: string[];
  /** How long Knot's proxy waits on the blackhole before it gives up, ms (default 3000). */
  blackholeTimeoutMs?: number;
  /** Bound for starting and for becoming ready, ms (default 15000). */
  startTimeoutMs?: number;
}

export interface KnotInstance {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** Temp dir holding knot.conf, zones and knotd.log. */
  readonly dir: string;
  /** Stops knotd (SIGTERM, then SIGKILL after a short grace); keeps the temp dir and port for start(). */
  stop(): Promise<void>;
  /** Starts knotd again on the same port with the same zones. */
  start(): Promise<void>;
  /** Stops knotd and removes the temp dir and blackhole; the instance is unusable afterwards. Also done on process exit. */
  close(): Promise<void>;
  /** Queries Knot has processed since (re)start, from mod-stats via knotc. */
  queryCount(): Promise<number>;
  /** All mod-stats counters, e.g. `mod-stats.request-protocol[tcp4]`. */
  stats(): Promise<Record<string, number>>;
  /** knotd's log so far (useful in assertion messages). */
  log(): string;
}

const KNOTD_CANDIDATES = ['/usr/sbin/knotd', '/usr/local/sbin/knotd', '/usr/bin/knotd'];

/** Path of knotd, or undefined when Knot DNS is not installed. */
export function findKnotd(): string | undefined {
  return KNOTD_CANDIDATES.find((p) => existsSync(p));
}

function findKnotc(knotd: string): string {
  const sibling = knotd.replace(/knotd$/, 'knotc');
  return existsSync(sibling) ? sibling : 'knotc';
}

/** Reason to skip Knot-based tests, or undefined when knotd is available. */
export function knotSkipReason(): string | undefined {
  return findKnotd() ? undefined : 'knotd (Debian package "knot") is not installed';
}

const norm = (origin: string): string => origin.replace(/\.$/, '').toLowerCase();

function minimalZone(origin: string): string {
  return `$ORIGIN ${origin}.\n$TTL 60\n@ SOA ns.${origin}. hostmaster.${origin}. 1 3600 600 86400 60\n@ NS ns.${origin}.\n`;
}

/** A UDP socket and a TCP listener on one loopback port that swallow everything. */
interface Blackhole {
  port: number;
  close(): void;
}

async function bindPair(onUdp?: (s: dgram.Socket) => void, tcp?: net.Server): Promise<{ port: number; udp: dgram.Socket; tcp: net.Server }> {
  for (let attempt = 0; ; attempt++) {
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, '127.0.0.1', () => resolve());
    });
    const port = udp.address().port;
    const server = tcp ?? net.createServer();
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => resolve());
      });
      onUdp?.(udp);
      return { port, udp, tcp: server };
    } catch (e) {
      udp.close();
      if (attempt >= 20) throw e;
    }
  }
}

async function startBlackhole(): Promise<Blackhole> {
  const conns = new Set<net.Socket>();
  const server = net.createServer((c) => {
    conns.add(c);
    c.on('error', () => {});
    c.on('close', () => conns.delete(c));
  });
  const pair = await bindPair((udp) => udp.on('message', () => {}), server);
  pair.udp.unref();
  server.unref();
  return {
    port: pair.port,
    close: () => {
      pair.udp.close();
      for (const c of conns) c.destroy();
      server.close();
    },
  };
}

/** A port free for both UDP and TCP right now (released before knotd binds it). */
async function freePort(): Promise<number> {
  const pair = await bindPair();
  pair.udp.close();
  await new Promise<void>((resolve) => pair.tcp.close(() => resolve()));
  return pair.port;
}

function collectZones(options: KnotOptions): Map<string, string> {
  const zones = new Map<string, string>();
  if (options.zonesDir) {
    for (const file of readdirSync(options.zonesDir).sort()) {
      if (file.endsWith('.zone')) zones.set(norm(file.slice(0, -'.zone'.length)), readFileSync(join(options.zonesDir, file), 'utf8'));
    }
  }
  for (const [origin, text] of Object.entries(options.zones ?? {})) zones.set(norm(origin), text);
  return zones;
}

function writeConfig(dir: string, port: number, blackholePort: number, options: KnotOptions, zones: Map<string, string>): void {
  const zoneLines: string[] = [];
  let i = 0;
  const add = (origin: string, text: string, module?: string): void => {
    const file = `zone-${i++}.zone`;
    writeFileSync(join(dir, 'zones', file), text);
    zoneLines.push(`  - domain: "${origin}."`, `    file: "${file}"`);
    if (module) zoneLines.push(`    module: ${module}`);
  };
  for (const [origin, text] of zones) add(origin, text);
  for (const origin of options.servfailZones ?? []) add(norm(origin), 'this is not a valid zone file\n');
  for (const name of options.timeoutNames ?? []) add(norm(name), minimalZone(norm(name)), 'mod-dnsproxy/blackhole');
  const conf = [
    'server:',
    `  rundir: "${dir}"`,
    `  listen: 127.0.0.1@${port}`,
    '  udp-workers: 128',
    '  tcp-workers: 16',
    '  background-workers: 1',
    'database:',
    `  storage: "${join(dir, 'db')}"`,
    'log:',
    '  - target: stderr',
    '    any: info',
    'remote:',
    '  - id: blackhole',
    `    address: 127.0.0.1@${blackholePort}`,
    'mod-dnsproxy:',
    '  - id: blackhole',
    '    remote: blackhole',
    `    timeout: ${options.blackholeTimeoutMs ?? 3000}`,
    '    fallback: off',
    'template:',
    '  - id: default',
    `    storage: "${join(dir, 'zones')}"`,
    '    global-module: mod-stats',
    '    zonefile-sync: -1',
    '    zonefile-load: whole',
    '    journal-content: none',
    'zone:',
    ...zoneLines,
    '',
  ].join('\n');
  writeFileSync(join(dir, 'knot.conf'), conf);
}

const running = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let exitHookInstalled = false;
function cleanUpOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const cleanUp = (): void => {
    for (const child of running) child.kill('SIGKILL');
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', cleanUp);
  // The test runner ends a timed-out file with SIGTERM, which skips 'exit' handlers: clean
  // up, then let the signal do what it would have done.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      cleanUp();
      process.kill(process.pid, signal);
    });
  }
}

export async function startKnot(options: KnotOptions): Promise<KnotInstance> {
  const knotd = findKnotd();
  if (!knotd) throw new Error(knotSkipReason());
  const knotc = findKnotc(knotd);
  const zones = collectZones(options);
  const startTimeoutMs = options.startTimeoutMs ?? 15000;
  const dir = mkdtempSync(join(tmpdir(), 'sos-knot-'));
  mkdirSync(join(dir, 'zones'));
  mkdirSync(join(dir, 'db'));
  tempDirs.add(dir);
  cleanUpOnExit();
  const blackhole = await startBlackhole();

  let child: ChildProcess | undefined;
  let logText = '';
  let port = 0;

  // Every ordinary zone must answer (not SERVFAIL) before the instance counts as ready.
  const ready = async (deadline: number): Promise<void> => {
    const probe = new StubResolver({ servers: [{ host: '127.0.0.1', port }], timeoutMs: 300, retries: 0 });
    for (const origin of zones.keys()) {
      for (;;) {
        if (child === undefined || child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`knotd exited during startup:\n${logText}`);
        }
        try {
          await probe.lookup(origin, 'TXT');
          break;
        } catch (e) {
          if (!(e instanceof DnsError)) throw e;
          if (Date.now() > deadline) {
            throw new Error(`knotd not ready within ${startTimeoutMs} ms (${e.message}):\n${logText}`, { cause: e });
          }
          await sleep(50);
        }
      }
    }
  };

  const launch = async (): Promise<void> => {
    writeConfig(dir, port, blackhole.port, options, zones);
    logText = '';
    const proc = spawn(knotd, ['-c', join(dir, 'knot.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    running.add(proc);
    proc.stdout?.setEncoding('utf8').on('data', (d: string) => (logText += d));
    proc.stderr?.setEncoding('utf8').on('data', (d: string) => (logText += d));
    proc.on('exit', () => running.delete(proc));
    await ready(Date.now() + startTimeoutMs);
  };

  const halt = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGTERM');
    // knotd waits for workers stuck in a proxied query; do not wait for them.
    const timer = setTimeout(() => proc.kill('SIGKILL'), 1000);
    await exited;
    clearTimeout(timer);
  };

  // Pick a port; retry on a fresh one if another process grabbed it before knotd bound it.
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (e) {
      await halt();
      if (attempt >= 4 || !/cannot bind|address already in use/i.test(logText)) {
        blackhole.close();
        rmSync(dir, { recursive: true, force: true });
        tempDirs.delete(dir);
        throw e;
      }
    }
  }

  const stats = async (): Promise<Record<string, number>> => {
    const text = await new Promise<string>((resolve, reject) => {
      execFile(knotc, ['-c', join(dir, 'knot.conf'), 'stats'], (err, stdout) => (err ? reject(err) : resolve(stdout)));
    });
    const out: Record<string, number> = {};
    for (const line of text.split('\n')) {
      const m = /^(\S+) = (\d+)$/.exec(line.trim());
      if (m) out[m[1]] = Number(m[2]);
    }
    return out;
  };

  let closed = false;
  return {
    host: '127.0.0.1',
    port,
    dir,
    stop: halt,
    start: async () => {
      if (closed) throw new Error('knot instance was closed');
      await halt();
      await launch();
    },
    close: async () => {
      await halt();
      if (!closed) {
        closed = true;
        blackhole.close();
        rmSync(dir, { recursive: true, force: true });
        tempDirs.delete(dir);
      }
    },
    queryCount: async () => (await stats())['mod-stats.server-operation[query]'] ?? 0,
    stats,
    log: () => logText,
  };
}

/** `knot.queryCount()`, retried (bounded) while knotc finds no control socket yet just after a start. */
export async function queryCountWhenReady(knot: KnotInstance, attempts = 50): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await knot.queryCount();
    } catch (e) {
      if (attempt >= attempts) throw e;
      await sleep(100);
    }
  }
}
