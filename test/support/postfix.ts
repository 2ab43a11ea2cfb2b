// Throwaway Postfix instance for integration tests: its own config, queue and data
// directories in a temp dir, smtpd on a free loopback port, relaying everything to a test
// sink. It never touches /etc/postfix: as root, `postfix -c DIR` accepts an unregistered
// config directory (the alternate_config_directories check applies to non-root callers only).
import { execFileSync, execFile } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from './wait.js';

/**
 * Runs a test body; when it fails, the tail of each named log (Postfix's maillog, the daemons'
 * lines) is appended to the error, in the order given, so the failure shows what each side saw.
 */
export async function withLogTails(body: () => Promise<void>, tails: ReadonlyArray<readonly [title: string, tail: () => string]>): Promise<void> {
  try {
    await body();
  } catch (err) {
    if (err instanceof Error) for (const [title, tail] of tails) err.message += `\n--- ${title} (tail) ---\n${tail()}`;
    throw err;
  }
}

/** The last `n` JSON log lines, one per line. */
export function jsonTail(lines: readonly unknown[], n: number): string {
  return lines
    .slice(-n)
    .map((l) => JSON.stringify(l))
    .join('\n');
}

export type MilterDefaultAction = 'accept' | 'reject' | 'tempfail' | 'quarantine' | 'shutdown';

/** Postfix `milter_<stage>_macros` parameters, by the part between `milter_` and `_macros`. */
export type MilterMacroStage =
  | 'connect'
  | 'helo'
  | 'mail'
  | 'rcpt'
  | 'data'
  | 'end_of_header'
  | 'end_of_data'
  | 'unknown_command';

export interface PostfixOptions {
  /** Postfix milter spec: `inet:127.0.0.1:PORT` or `unix:/absolute/path`. */
  milter: string;
  /** Port of the SMTP sink on 127.0.0.1 that receives all relayed mail. */
  relayPort: number;
  /** Extra main.cf lines (`name = value`), appended last so they override the defaults here. */
  mainCfExtra?: Record<string, string> | string;
  milterDefaultAction?: MilterDefaultAction;
  /** Only set when a test needs non-default macro lists; by default Postfix's own defaults apply. */
  milterMacros?: Partial<Record<MilterMacroStage, string>>;
  /**
   * Per-client milters (`smtpd_milter_maps`, Postfix >= 3.2): client CIDR -> milter spec. Lets
   * one instance use a second milter for clients connecting from another loopback address.
   */
  milterMaps?: Record<string, string>;
  /** Bound for starting (default 20 s). */
  startTimeoutMs?: number;
}

export interface PostfixInstance {
  readonly smtpHost: string;
  readonly smtpPort: number;
  /** Root of the temp dir (config in `etc/`, queue in `spool/`, log in `maillog`). */
  readonly dir: string;
  readonly configDir: string;
  readonly myhostname: string;
  readonly version: string;
  /** Last `lines` lines of the instance's maillog, for failure diagnostics. */
  logTail(lines?: number): string;
  /** Stops the instance and removes its temp dir. Idempotent. */
  stop(): Promise<void>;
}

export class PostfixStartError extends Error {
  override readonly name = 'PostfixStartError';
}

const POSTFIX = '/usr/sbin/postfix';
const POSTCONF = '/usr/sbin/postconf';
const MAIL_OWNER = 'postfix';
const MYHOSTNAME = 'mx.test.invalid';

/** Returns null when a private Postfix can be started here, else the reason to skip. */
export function postfixUnavailableReason(): string | null {
  if (!existsSync(POSTFIX) || !existsSync(POSTCONF)) return 'postfix is not installed (Debian package postfix)';
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'a private Postfix instance must be started as root';
  try {
    execFileSync('getent', ['passwd', MAIL_OWNER], { stdio: 'ignore' });
  } catch {
    return `mail_owner user "${MAIL_OWNER}" does not exist (created by the Debian postfix package)`;
  }
  return null;
}

function postfixVersion(): string {
  return execFileSync(POSTCONF, ['-dh', 'mail_version'], { encoding: 'utf8' }).trim();
}

import { freePort } from './ports.js';

export { freePort };

/** True when something listens on host:port; probes by binding so no SMTP session (and no milter session) is started. */
function isListening(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'EADDRINUSE'));
    s.listen({ port, host, exclusive: true }, () => s.close(() => resolve(false)));
  });
}

function mainCf(dir: string, o: PostfixOptions): string {
  const settings: [string, string][] = [
    ['compatibility_level', '3.6'],
    ['queue_directory', join(dir, 'spool')],
    ['data_directory', join(dir, 'data')],
    ['mail_owner', MAIL_OWNER],
    ['myhostname', MYHOSTNAME],
    ['mydomain', 'test.invalid'],
    ['myorigin', '$myhostname'],
    ['inet_interfaces', 'loopback-only'],
    ['inet_protocols', 'ipv4'],
    // No local delivery at all: nothing is "local", everything is relayed to the sink.
    ['mydestination', ''],
    ['local_recipient_maps', ''],
    ['alias_maps', ''],
    ['alias_database', ''],
    ['relay_domains', 'static:ALL'],
    ['mynetworks', '127.0.0.0/8'],
    ['smtpd_relay_restrictions', 'permit_mynetworks, reject'],
    ['smtpd_recipient_restrictions', ''],
    ['relayhost', `[127.0.0.1]:${o.relayPort}`],
    // Never ask DNS: the client's PTR, the relay host, or address verification.
    ['disable_dns_lookups', 'yes'],
    ['smtp_dns_support_level', 'disabled'],
    ['smtp_host_lookup', 'native'],
    ['lmtp_host_lookup', 'native'],
    ['smtpd_peername_lookup', 'no'],
    ['smtp_tls_security_level', 'none'],
    ['smtpd_tls_security_level', 'none'],
    ['smtp_address_preference', 'ipv4'],
    // Fast retries so a test never waits minutes for a deferred message.
    ['queue_run_delay', '1s'],
    ['minimal_backoff_time', '1s'],
    ['maximal_backoff_time', '2s'],
    ['maximal_queue_lifetime', '1m'],
    ['bounce_queue_lifetime', '1m'],
    ['smtp_connect_timeout', '5s'],
    ['in_flow_delay', '0'],
    ['smtpd_error_sleep_time', '0'],
    ['smtpd_soft_error_limit', '1000'],
    ['smtpd_hard_error_limit', '1000'],
    ['smtpd_client_connection_rate_limit', '0'],
    ['anvil_rate_time_unit', '60s'],
    ['biff', 'no'],
    ['maillog_file', join(dir, 'maillog')],
    ['maillog_file_prefixes', dir],
    ['smtpd_milters', o.milter],
    ['milter_connect_timeout', '5s'],
    ['milter_command_timeout', '10s'],
    ['milter_content_timeout', '20s'],
  ];
  if (o.milterMaps) settings.push(['smtpd_milter_maps', `cidr:${join(dir, 'etc', 'milter_maps.cidr')}`]);
  if (o.milterDefaultAction) settings.push(['milter_default_action', o.milterDefaultAction]);
  for (const [stage, list] of Object.entries(o.milterMacros ?? {})) settings.push([`milter_${stage}_macros`, list]);
  let text = settings.map(([k, v]) => `${k} = ${v}`).join('\n') + '\n';
  if (typeof o.mainCfExtra === 'string') text += o.mainCfExtra.trimEnd() + '\n';
  else if (o.mainCfExtra) text += Object.entries(o.mainCfExtra).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n';
  return text;
}

function masterCf(smtpPort: number): string {
  // Columns: service type private unpriv chroot wakeup maxproc command. chroot is always "n":
  // the instance lives in a temp dir, not in a prepared chroot tree.
  return [
    `127.0.0.1:${smtpPort} inet n - n - - smtpd`,
    'postlog   unix-dgram n - n - 1 postlogd',
    'pickup    unix n - n 60 1 pickup',
    'cleanup   unix n - n - 0 cleanup',
    'qmgr      unix n - n 300 1 qmgr',
    'rewrite   unix - - n - - trivial-rewrite',
    'bounce    unix - - n - 0 bounce',
    'defer     unix - - n - 0 bounce',
    'trace     unix - - n - 0 bounce',
    'verify    unix - - n - 1 verify',
    'flush     unix n - n 1000? 0 flush',
    'proxymap  unix - - n - - proxymap',
    'smtp      unix - - n - - smtp',
    'relay     unix - - n - - smtp',
    'showq     unix n - n - - showq',
    'error     unix - - n - - error',
    'retry     unix - - n - - error',
    'discard   unix - - n - - discard',
    'anvil     unix - - n - 1 anvil',
    'scache    unix - - n - 1 scache',
    '',
  ].join('\n');
}

// Instances still running when the process exits (a failed test that never reached stop()).
const live = new Set<{ configDir: string; dir: string }>();
let exitHooked = false;

function stopSync(inst: { configDir: string; dir: string }): void {
  try {
    execFileSync(POSTFIX, ['-c', inst.configDir, 'abort'], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    // Already stopped or never started.
  }
  rmSync(inst.dir, { recursive: true, force: true });
  live.delete(inst);
}

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.on('exit', () => {
    for (const inst of [...live]) stopSync(inst);
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const inst of [...live]) stopSync(inst);
      // Re-raise with the default handler so the exit status still says "killed by signal".
      process.kill(process.pid, signal);
    });
  }
}

function run(args: string[], timeoutMs: number): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    execFile(POSTFIX, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ ok: !err, output: `${stdout}${stderr}${err ? `\n${err.message}` : ''}` });
    });
  });
}

function masterRunning(configDir: string): boolean {
  try {
    // `master -t` exits 0 when no master holds the pid lock, i.e. when it is NOT running.
    execFileSync('/usr/lib/postfix/sbin/master', ['-t', '-c', configDir], { stdio: 'ignore', timeout: 5000 });
    return false;
  } catch {
    return true;
  }
}

/** Starts a private Postfix; retries with a new port if the chosen one was taken meanwhile. */
export async function startPostfix(options: PostfixOptions): Promise<PostfixInstance> {
  const reason = postfixUnavailableReason();
  if (reason) throw new PostfixStartError(reason);
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(options, await freePort());
    } catch (err) {
      lastError = err as Error;
    }
  }
  throw lastError ?? new PostfixStartError('postfix did not start');
}

async function startOnce(options: PostfixOptions, smtpPort: number): Promise<PostfixInstance> {
  const timeoutMs = options.startTimeoutMs ?? 20_000;
  const dir = mkdtempSync(join(tmpdir(), 'sos-postfix-'));
  // Postfix daemons run as mail_owner and must reach a unix milter socket or the log below.
  chmodSync(dir, 0o755);
  const configDir = join(dir, 'etc');
  const inst = { configDir, dir };
  mkdirSync(configDir);
  mkdirSync(join(dir, 'spool'));
  mkdirSync(join(dir, 'data'));
  const owner = execFileSync('getent', ['passwd', MAIL_OWNER], { encoding: 'utf8' }).split(':');
  chownSync(join(dir, 'data'), Number(owner[2]), Number(owner[3]));
  writeFileSync(join(configDir, 'main.cf'), mainCf(dir, options));
  writeFileSync(join(configDir, 'master.cf'), masterCf(smtpPort));
  if (options.milterMaps) {
    const lines = Object.entries(options.milterMaps).map(([cidr, milter]) => `${cidr} ${milter}`);
    writeFileSync(join(configDir, 'milter_maps.cidr'), lines.join('\n') + '\n');
  }
  hookExit();
  live.add(inst);

  const logPath = join(dir, 'maillog');
  const logTail = (lines = 40): string => {
    try {
      return readFileSync(logPath, 'utf8').split('\n').slice(-lines - 1).join('\n');
    } catch {
      return '(no maillog)';
    }
  };

  // `postfix start` creates the missing queue directories (post-install create-missing),
  // and master -w returns only after the master has bound its listeners.
  const started = await run(['-c', configDir, 'start'], timeoutMs);
  if (!started.ok) {
    const log = logTail();
    stopSync(inst);
    throw new PostfixStartError(`postfix -c ${configDir} start failed: ${started.output.trim()}\n${log}`);
  }
  const deadline = Date.now() + timeoutMs;
  while (!(await isListening(smtpPort, '127.0.0.1'))) {
    if (Date.now() > deadline) {
      const log = logTail();
      stopSync(inst);
      throw new PostfixStartError(`postfix smtpd did not listen on 127.0.0.1:${smtpPort} within ${timeoutMs} ms\n${log}`);
    }
    await sleep(50);
  }

  let stopped = false;
  return {
    smtpHost: '127.0.0.1',
    smtpPort,
    dir,
    configDir,
    myhostname: MYHOSTNAME,
    version: postfixVersion(),
    logTail,
    async stop() {
      if (stopped) return;
      stopped = true;
      await run(['-c', configDir, 'stop'], 15_000);
      const until = Date.now() + 10_000;
      while (masterRunning(configDir) && Date.now() < until) await sleep(100);
      if (masterRunning(configDir)) await run(['-c', configDir, 'abort'], 10_000);
      // Children notice the master's exit on their own; give them a moment before the
      // queue directory disappears under them.
      await sleep(200);
      rmSync(dir, { recursive: true, force: true });
      live.delete(inst);
    },
  };
}
