// The healthchecks as shipped, run for real: the image's HEALTHCHECK and compose's healthcheck
// command lines (with the image's /app mapped onto this checkout's build) against a real daemon
// on ports other than 9100, and against the same address once the daemon is gone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { startDaemonProcess, type DaemonProcess } from '../support/daemon-process.js';
import { freePort } from '../support/ports.js';
import { repoPath } from '../support/paths.js';
import { sleep } from '../support/wait.js';

const dockerfile = readFileSync(repoPath('Dockerfile'), 'utf8').replace(/\\\n\s*/g, ' ');

/** The image's HEALTHCHECK command (exec form). */
const imageCheck = JSON.parse(/^HEALTHCHECK .*\bCMD (\[.*\])$/m.exec(dockerfile)![1]!) as string[];
/** compose.yaml's healthcheck of the milter, without the leading "CMD". */
const composeCheck = ((parseYaml(readFileSync(repoPath('compose.yaml'), 'utf8')) as { services: Record<string, { healthcheck: { test: string[] } }> })
  .services['sos-milter']!.healthcheck.test).slice(1);

/** The image's ENV (NODE_OPTIONS and the defaults), which the HEALTHCHECK process inherits too. */
const imageEnv: Record<string, string> = Object.fromEntries(
  [...(/^ENV (.*)$/m.exec(dockerfile)?.[1] ?? '').matchAll(/([A-Z_]+)=("[^"]*"|\S+)/g)].map((m) => [m[1]!, m[2]!.replace(/^"(.*)"$/, '$1')]),
);

interface Run {
  status: number | null;
  out: string;
  ms: number;
}

/** Runs a healthcheck argv as Docker would in the container: /app is this checkout (after `npm run build`). */
function runCheck(argv: string[], env: Record<string, string>): Promise<Run> {
  const [program, ...args] = argv;
  assert.equal(program, 'node');
  const mapped = args.map((a) => (a.startsWith('/app/') ? repoPath(a.slice('/app/'.length)) : a));
  const started = Date.now();
  const child = spawn(process.execPath, mapped, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...imageEnv, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => child.once('close', (status) => resolve({ status, out, ms: Date.now() - started })));
}

/** Docker's --timeout of the image's HEALTHCHECK, in ms. */
const dockerTimeoutMs = Number(/--timeout=(\d+)s/.exec(dockerfile)![1]) * 1000;

async function stopped(daemon: DaemonProcess): Promise<void> {
  daemon.proc.kill('SIGTERM');
  assert.equal(await daemon.waitExit(15_000), 0);
}

test('image and compose healthchecks pass on a daemon with METRICS_LISTEN on another port, and fail once it is gone', async () => {
  const metricsPort = await freePort();
  assert.notEqual(metricsPort, 9100);
  const env = { MILTER_SOCKET: `inet:${await freePort()}@127.0.0.1`, METRICS_LISTEN: `:${metricsPort}`, DNS_SERVERS: '127.0.0.1:9' };
  const daemon = await startDaemonProcess(env);
  try {
    const linesBefore = daemon.lines.length;
    for (const argv of [imageCheck, composeCheck]) {
      const r = await runCheck(argv, env);
      assert.equal(r.status, 0, `${argv.join(' ')}: ${r.out}`);
      assert.match(r.out, new RegExp(`^sos-milter health: (healthy|ready): GET http://127\\.0\\.0\\.1:${metricsPort}/(healthz|readyz) answered 200 ok \\(METRICS_LISTEN=:${metricsPort}\\)\\n$`));
      assert.ok(r.ms < dockerTimeoutMs, `${r.ms} ms, within Docker's --timeout`);
    }
    assert.match((await runCheck(composeCheck, env)).out, /\/readyz/, 'compose waits for readiness');
    assert.equal(daemon.lines.length, linesBefore, 'a probe writes no log line');
  } finally {
    await stopped(daemon).finally(() => daemon.kill());
  }
  for (const argv of [imageCheck, composeCheck]) {
    const r = await runCheck(argv, env);
    assert.equal(r.status, 1, `${argv.join(' ')} with the daemon gone: ${r.out}`);
    assert.match(r.out, new RegExp(`^sos-milter health: not (healthy|ready): GET http://127\\.0\\.0\\.1:${metricsPort}/\\w+ failed: connect ECONNREFUSED`));
  }
});

test('HEALTH_LISTEN beside METRICS_LISTEN: the check asks HEALTH_LISTEN', async () => {
  const healthPort = await freePort();
  const env = { MILTER_SOCKET: `inet:${await freePort()}@127.0.0.1`, METRICS_LISTEN: `127.0.0.1:${await freePort()}`, HEALTH_LISTEN: `127.0.0.1:${healthPort}`, DNS_SERVERS: '127.0.0.1:9' };
  const daemon = await startDaemonProcess(env);
  try {
    const r = await runCheck(imageCheck, env);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, new RegExp(`GET http://127\\.0\\.0\\.1:${healthPort}/healthz answered 200 ok \\(HEALTH_LISTEN=127\\.0\\.0\\.1:${healthPort}\\)`));
  } finally {
    await stopped(daemon).finally(() => daemon.kill());
  }
});

test('with no HTTP endpoint the image check connects to the milter socket, says so, and logs nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sos-health-socket-'));
  const env = { MILTER_SOCKET: join(dir, 'sos-milter.sock'), METRICS_LISTEN: '', DNS_SERVERS: '127.0.0.1:9', LOG_LEVEL: 'debug' };
  const daemon = await startDaemonProcess(env);
  try {
    const linesBefore = daemon.lines.length;
    const r = await runCheck(imageCheck, env);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /MILTER_SOCKET unix:\S+sos-milter\.sock accepts connections \(HEALTH_LISTEN and METRICS_LISTEN unset/);
    await sleep(300);
    assert.deepEqual(daemon.lines.slice(linesBefore).filter((l) => (l['level'] as string | undefined) !== 'debug'), [], 'no line above debug per probe');
  } finally {
    await stopped(daemon).finally(() => daemon.kill());
  }
  const r = await runCheck(imageCheck, env);
  assert.equal(r.status, 1, r.out);
  rmSync(dir, { recursive: true, force: true });
});
