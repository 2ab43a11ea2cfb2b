/**
 * The daemon as users run it: a child process `node dist/src/cli/main.js` configured by
 * environment only, with its JSON log lines collected, its memory readable from /proc and its
 * exit observable. For tests that must see the real process (crash, RSS, signals, exit code).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { HEAP_FLAGS } from '../../src/daemon/heap-sizing.js';
import { readFileSync } from 'node:fs';
import { MAIN_JS, repoPath } from './paths.js';


/** Zones of the end-to-end tests (test/data/dns/e2e), served by a private Knot. */
export const E2E_ZONES_DIR = repoPath('test/data/dns/e2e');

/**
 * The verdict e2eRejectEnv's policy owes a sender at end of message: a foreign sender (its
 * record lacks the ESP include) is refused with 550 5.7.1, a passing one goes on.
 */
export function expectVerdict(sender: string, final: unknown, where?: string): void {
  if (sender.includes('foreign')) {
    assert.equal((final as { type?: string } | undefined)?.type, 'replyCode', where);
    assert.match((final as { text: string }).text, /^550 5\.7\.1 /, where);
  } else {
    assert.deepEqual(final, { type: 'continue' }, where);
  }
}

/**
 * The daemon in reject mode judging the e2e zones: `news@foreign.e2e.test` lacks the ESP's
 * include and is refused with 550, `news@pass.e2e.test` has it and goes on.
 */
export function e2eRejectEnv(knotPort: number): Record<string, string> {
  return {
    MILTER_MODE: 'reject',
    DNS_SERVERS: `127.0.0.1:${knotPort}`,
    DNS_TIMEOUT_MS: '1000',
    SPF_REGEX: String.raw`v=spf1 (?P<before>.*)include:_spf\.esp\.e2e\.test(?:\s|$)`,
    LOG_LEVEL: 'info',
  };
}

/** The port of a daemon started on `inet:0@…`, from its "listening" line. */
export async function listeningPort(daemon: DaemonProcess): Promise<number> {
  const l = await daemon.waitFor((x) => x.msg === 'milter server listening', 2000, 'the listening line');
  return (l['address'] as { port: number }).port;
}

export type LogLine = Record<string, unknown> & { msg?: string };

export interface DaemonProcess {
  readonly proc: ChildProcess;
  readonly pid: number;
  /** JSON log lines so far (stdout), in order. */
  readonly lines: LogLine[];
  /** Non-JSON output (stderr, anything unparsable), for failure messages. */
  readonly other: string[];
  /** Resolves with the exit code (or the signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  /** Waits for a log line that satisfies `pred` (also one already logged). */
  waitFor(pred: (l: LogLine) => boolean, timeoutMs: number, what: string): Promise<LogLine>;
  /** The exit code (or signal name), or 'hung' when the process has not exited within `timeoutMs`. */
  waitExit(timeoutMs: number): Promise<number | string>;
  /** Resident set size now, in KiB (VmRSS from /proc/PID/status). */
  rssKiB(): number;
  /** The last lines, for assertion messages. */
  tail(n?: number): string;
  /** Kills the process if it still runs (SIGKILL) and waits for its exit. */
  kill(): Promise<void>;
}

export interface DaemonProcessOptions {
  /** Wait for the Startup line (default true); false for a daemon expected to fail at start-up. */
  awaitStartup?: boolean;
  /**
   * RLIMIT_NOFILE, soft and hard, for the process (through util-linux `prlimit`, as `ulimit -n`
   * in the launching shell would set it): a low file-descriptor limit.
   */
  nofile?: number;
}

/** The daemon runs as every shipped launcher runs it: with the V8 heap limits (src/daemon/heap-sizing.ts). */
export async function startDaemonProcess(env: Record<string, string>, startTimeoutMs = 15_000, options: DaemonProcessOptions = {}): Promise<DaemonProcess> {
  const args = [...HEAP_FLAGS, MAIN_JS];
  const [command, argv] = options.nofile === undefined ? [process.execPath, args] : ['prlimit', [`--nofile=${options.nofile}:${options.nofile}`, '--', process.execPath, ...args]];
  const proc = spawn(command, argv, {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LOG_FORMAT: 'json', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: LogLine[] = [];
  const other: string[] = [];
  const waiters = new Set<() => void>();
  let partial = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    partial += d;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    for (const l of parts) {
      if (l === '') continue;
      try {
        lines.push(JSON.parse(l) as LogLine);
      } catch {
        other.push(l);
      }
    }
    for (const w of waiters) w();
  });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
    other.push(d);
    for (const w of waiters) w();
  });
  const exited = new Promise<number | string>((resolve) => proc.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  let done = false;
  void exited.then(() => {
    done = true;
    for (const w of waiters) w();
  });

  const tail = (n = 20): string => [...lines.slice(-n).map((l) => JSON.stringify(l)), ...other.slice(-5)].join('\n');
  const waitFor = (pred: (l: LogLine) => boolean, timeoutMs: number, what: string): Promise<LogLine> =>
    new Promise((resolve, reject) => {
      let seen = 0;
      const check = (): void => {
        for (; seen < lines.length; seen++) {
          if (pred(lines[seen]!)) {
            finish();
            resolve(lines[seen]!);
            return;
          }
        }
        if (done) {
          finish();
          reject(new Error(`daemon exited while waiting for ${what}\n${tail()}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${tail()}`));
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  const daemon: DaemonProcess = {
    proc,
    pid: proc.pid!,
    lines,
    other,
    exited,
    waitFor,
    tail,
    waitExit(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const hung = new Promise<string>((r) => (timer = setTimeout(() => r('hung'), timeoutMs)));
      return Promise.race([exited, hung]).finally(() => clearTimeout(timer));
    },
    rssKiB() {
      const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'));
      if (!m) throw new Error('no VmRSS in /proc status');
      return Number(m[1]);
    },
    async kill() {
      if (!done) proc.kill('SIGKILL');
      await exited;
    },
  };
  if (options.awaitStartup !== false) await waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('Startup '), startTimeoutMs, 'the Startup line');
  return daemon;
}
