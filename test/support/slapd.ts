/**
 * A throwaway OpenLDAP server for integration tests: slapd.conf with the mdb backend in a
 * temp dir, data loaded from LDIF with slapadd, listening on ldap://127.0.0.1:<free port>.
 * stop()/start() restart it on the same port for fault tests; pause()/resume() freeze it
 * (SIGSTOP) so that connections hang instead of being refused. Everything is removed on
 * close() and, as a safety net, at process exit.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from './wait.js';

export interface SlapdOptions {
  /** LDIF text, or a path to an LDIF file. Loaded with slapadd before the first start. */
  ldif?: string;
  suffix?: string;
  rootDn?: string;
  rootPw?: string;
  /** When false, only bound users may read; anonymous may still authenticate. */
  anonymousRead?: boolean;
  /**
   * Server-side size limit for everyone but the rootdn (slapd's `sizelimit`): an unpaged
   * search gets at most this many entries; paged searches (RFC 2696) may return them all.
   */
  sizeLimit?: number;
  /** Serve TLS: StartTLS on the ldap:// port, and an ldaps:// port besides. PEM file paths. */
  tls?: { certFile: string; keyFile: string };
}

export interface SlapdInstance {
  url: string;
  port: number;
  /** ldaps://127.0.0.1:<port>, when started with `tls`. */
  ldapsUrl: string | undefined;
  ldapsPort: number | undefined;
  suffix: string;
  rootDn: string;
  rootPw: string;
  dir: string;
  /** Stops slapd (the port then refuses connections). */
  stop(): Promise<void>;
  /** Starts slapd again on the same port with the same data. */
  start(): Promise<void>;
  /** Freezes slapd: connections are accepted by the kernel but never answered. */
  pause(): void;
  resume(): void;
  /** Stops slapd and removes its directory. */
  close(): Promise<void>;
}

const SLAPD = '/usr/sbin/slapd';
const SLAPADD = '/usr/sbin/slapadd';
const MODULE_PATH = '/usr/lib/ldap';
const SCHEMA_DIR = '/etc/ldap/schema';
const SCHEMAS = ['core', 'cosine', 'inetorgperson', 'nis'];
const READY_TIMEOUT_MS = 10_000;

/** Null when a private slapd can run here, else the reason to skip. */
export function slapdUnavailableReason(): string | null {
  for (const bin of [SLAPD, SLAPADD]) if (!existsSync(bin)) return `${bin} not found (install the Debian package slapd)`;
  if (!existsSync(join(MODULE_PATH, 'back_mdb.so'))) return `${MODULE_PATH}/back_mdb.so not found`;
  for (const s of SCHEMAS) if (!existsSync(join(SCHEMA_DIR, `${s}.schema`))) return `${SCHEMA_DIR}/${s}.schema not found`;
  return null;
}

import { freePort } from './ports.js';

export { freePort };

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.setTimeout(500);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

const live = new Set<{ child: ChildProcess | undefined; dir: string }>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const cleanup = () => {
    for (const entry of live) {
      try {
        entry.child?.kill('SIGKILL');
      } catch {
        // already gone
      }
      rmSync(entry.dir, { recursive: true, force: true });
    }
    live.clear();
  };
  process.on('exit', cleanup);
  // 'exit' does not run when a signal ends the test process: clean up, then die of it.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      cleanup();
      process.kill(process.pid, signal);
    });
  }
}

function ldifText(options: SlapdOptions): string | undefined {
  if (options.ldif === undefined) return undefined;
  return !options.ldif.includes('\n') && existsSync(options.ldif) ? readFileSync(options.ldif, 'utf8') : options.ldif;
}

function ldifBytes(options: SlapdOptions): number {
  return Buffer.byteLength(ldifText(options) ?? '');
}

function slapdConf(dir: string, suffix: string, rootDn: string, rootPw: string, anonymousRead: boolean, options: SlapdOptions): string {
  const reader = anonymousRead ? 'by * read' : 'by users read by anonymous auth';
  const tls = options.tls ? [`TLSCertificateFile ${options.tls.certFile}`, `TLSCertificateKeyFile ${options.tls.keyFile}`] : [];
  // prtotal=unlimited: paged searches may return more than the hard limit in total (slapd.conf(5)).
  const limits = options.sizeLimit !== undefined ? [`sizelimit size.soft=${options.sizeLimit} size.hard=${options.sizeLimit} size.prtotal=unlimited`] : [];
  return [
    ...SCHEMAS.map((s) => `include ${join(SCHEMA_DIR, `${s}.schema`)}`),
    ...tls,
    `pidfile ${join(dir, 'slapd.pid')}`,
    `modulepath ${MODULE_PATH}`,
    'moduleload back_mdb',
    'database mdb',
    // mdb's map must hold the data with its indexes: 16 MiB, or more for large trees (about 20x the LDIF).
    `maxsize ${Math.max(16 * 1024 * 1024, Math.ceil(ldifBytes(options) * 20 / 4096) * 4096)}`,
    `suffix "${suffix}"`,
    `rootdn "${rootDn}"`,
    `rootpw "${rootPw}"`,
    `directory ${join(dir, 'db')}`,
    ...limits,
    'access to attrs=userPassword by anonymous auth by self read by * none',
    `access to * ${reader}`,
    '',
  ].join('\n');
}

export async function startSlapd(options: SlapdOptions = {}): Promise<SlapdInstance> {
  const reason = slapdUnavailableReason();
  if (reason) throw new Error(`slapd unavailable: ${reason}`);
  installExitHook();
  const suffix = options.suffix ?? 'dc=example,dc=test';
  const rootDn = options.rootDn ?? `cn=admin,${suffix}`;
  const rootPw = options.rootPw ?? 'admin-secret';
  const dir = mkdtempSync(join(tmpdir(), 'sos-slapd-'));
  const entry: { child: ChildProcess | undefined; dir: string } = { child: undefined, dir };
  live.add(entry);
  mkdirSync(join(dir, 'db'));
  const conf = join(dir, 'slapd.conf');
  writeFileSync(conf, slapdConf(dir, suffix, rootDn, rootPw, options.anonymousRead ?? true, options));

  if (options.ldif !== undefined) {
    const text = ldifText(options) ?? '';
    const ldifPath = join(dir, 'data.ldif');
    writeFileSync(ldifPath, text);
    const added = spawnSync(SLAPADD, ['-q', '-f', conf, '-l', ldifPath], { encoding: 'utf8', timeout: 30_000 });
    if (added.status !== 0) {
      live.delete(entry);
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`slapadd failed (${added.status ?? added.signal}): ${added.stderr}`);
    }
  }

  const port = await freePort();
  const url = `ldap://127.0.0.1:${port}`;
  const ldapsPort = options.tls ? await freePort() : undefined;
  const listen = [url, ...(ldapsPort !== undefined ? [`ldaps://127.0.0.1:${ldapsPort}`] : [])].join(' ');
  let stderr = '';

  async function start(): Promise<void> {
    if (entry.child) return;
    // -d 0: stay in the foreground (so we own the process) without debug output.
    const child = spawn(SLAPD, ['-d', '0', '-h', listen, '-f', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    entry.child = child;
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    child.once('exit', () => {
      if (entry.child === child) entry.child = undefined;
    });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (entry.child !== child) throw new Error(`slapd exited at start: ${stderr}`);
      if ((await canConnect(port)) && (ldapsPort === undefined || (await canConnect(ldapsPort)))) return;
      await sleep(50);
    }
    child.kill('SIGKILL');
    throw new Error(`slapd did not answer on ${url} within ${READY_TIMEOUT_MS} ms: ${stderr}`);
  }

  async function stop(): Promise<void> {
    const child = entry.child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    // A frozen slapd keeps SIGTERM pending; wake it first.
    child.kill('SIGCONT');
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(killer);
    // slapd releases its mdb lock on exit; the port is free again once it is gone.
  }

  try {
    await start();
  } catch (err) {
    live.delete(entry);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    url,
    port,
    ldapsUrl: ldapsPort === undefined ? undefined : `ldaps://127.0.0.1:${ldapsPort}`,
    ldapsPort,
    suffix,
    rootDn,
    rootPw,
    dir,
    start,
    stop,
    pause: () => {
      const pid = entry.child?.pid;
      entry.child?.kill('SIGSTOP');
      if (pid !== undefined) waitForStopped(pid);
    },
    resume: () => void entry.child?.kill('SIGCONT'),
    close: async () => {
      await stop();
      live.delete(entry);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * kill() only queues SIGSTOP; on a busy machine slapd can still answer a request that
 * arrives a moment later. Wait (bounded) until the kernel reports it stopped.
 */
function waitForStopped(pid: number): void {
  const until = Date.now() + 2000;
  while (Date.now() < until) {
    let state: string;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    } catch {
      return;
    }
    if (state === 'T' || state === 't') return;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
  }
}
