// `sos-milter health`: which address it asks, what it answers and its exit status, against
// small stand-in servers (test/deploy runs it against the real daemon).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAIN_JS } from '../support/paths.js';

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `sos-milter health ARGS` with only `env` (and PATH); asynchronous, so servers in this process can answer. */
function health(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const started = Date.now();
  const child = spawn(process.execPath, [MAIN_JS, 'health', ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve) => child.once('close', (status) => resolve({ status, stdout, stderr, ms: Date.now() - started })));
}

async function listen(server: Server, ...args: unknown[]): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    (server.listen as (...a: unknown[]) => void)(...args, () => resolve());
  });
  const a = server.address();
  return a && typeof a !== 'string' ? a.port : 0;
}

const close = (server: Server): Promise<void> => new Promise((resolve) => server.close(() => resolve()));

/** An HTTP server that records the paths asked and answers with `status`. */
async function opsStandIn(status: (path: string) => number, host = '127.0.0.1') {
  const paths: string[] = [];
  const server = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    paths.push(req.url ?? '');
    const s = status(req.url ?? '');
    res.writeHead(s, { 'content-type': 'text/plain' }).end(s === 200 ? 'ok\n' : 'not ready\n');
  });
  const port = await listen(server, 0, host);
  return { server, port, paths };
}

test('asks /healthz on METRICS_LISTEN, /readyz with --ready; exit 0 on 200 and 1 on 503, with one line', async () => {
  const ops = await opsStandIn((p) => (p === '/healthz' ? 200 : 503));
  try {
    const env = { METRICS_LISTEN: `:${ops.port}`, MILTER_SOCKET: 'inet:1@127.0.0.1' };
    const live = await health([], env);
    assert.equal(live.status, 0, live.stderr);
    assert.equal(live.stdout, `sos-milter health: healthy: GET http://127.0.0.1:${ops.port}/healthz answered 200 ok (METRICS_LISTEN=:${ops.port})\n`);
    assert.equal(live.stderr, '');
    const ready = await health(['--ready'], env);
    assert.equal(ready.status, 1);
    assert.equal(ready.stdout, '');
    assert.match(ready.stderr, /^sos-milter health: not ready: GET http:\/\/127\.0\.0\.1:\d+\/readyz answered 503 not ready \(METRICS_LISTEN=:\d+\)\n$/);
    assert.deepEqual(ops.paths, ['/healthz', '/readyz']);
  } finally {
    await close(ops.server);
  }
});

test('HEALTH_LISTEN wins over METRICS_LISTEN; an explicit host is asked as written', async () => {
  const ops = await opsStandIn(() => 200);
  try {
    const r = await health([], { HEALTH_LISTEN: `127.0.0.1:${ops.port}`, METRICS_LISTEN: '127.0.0.1:1' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`HEALTH_LISTEN=127\\.0\\.0\\.1:${ops.port}\\)\\n$`));
  } finally {
    await close(ops.server);
  }
});

test('a wildcard listen address (0.0.0.0, ::, [::1]) is asked on loopback', async () => {
  const v4 = await opsStandIn(() => 200, '0.0.0.0');
  const v6 = await opsStandIn(() => 200, '::').catch(() => undefined);
  try {
    assert.equal((await health([], { METRICS_LISTEN: `0.0.0.0:${v4.port}` })).status, 0);
    if (v6) {
      assert.equal((await health([], { METRICS_LISTEN: `[::]:${v6.port}` })).status, 0);
      const loop6 = await health([], { METRICS_LISTEN: `[::1]:${v6.port}` });
      assert.match(loop6.stdout + loop6.stderr, new RegExp(`GET http://\\[::1\\]:${v6.port}/healthz`));
    }
  } finally {
    await close(v4.server);
    if (v6) await close(v6.server);
  }
});

test('a closed port, or a server that never answers: exit 1 within the timeout', async () => {
  const held = new Set<Socket>();
  const mute = createNetServer((s) => held.add(s)); // accepts, never answers
  const port = await listen(mute, 0, '127.0.0.1');
  try {
    const closed = await health([], { METRICS_LISTEN: '127.0.0.1:1' });
    assert.equal(closed.status, 1);
    assert.match(closed.stderr, /^sos-milter health: not healthy: GET http:\/\/127\.0\.0\.1:1\/healthz failed: connect ECONNREFUSED .*\(METRICS_LISTEN=127\.0\.0\.1:1\)\n$/);
    const silent = await health(['--timeout', '300'], { METRICS_LISTEN: `127.0.0.1:${port}` });
    assert.equal(silent.status, 1);
    assert.match(silent.stderr, /no answer within 300 ms/);
    assert.ok(silent.ms < 5000, `${silent.ms} ms`);
  } finally {
    for (const s of held) s.destroy();
    await close(mute);
  }
});

test('without HEALTH_LISTEN and METRICS_LISTEN it connects to MILTER_SOCKET and says so', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sos-health-'));
  const accepted: number[] = [];
  const milter = createNetServer((s) => {
    accepted.push(1);
    s.destroy();
  });
  try {
    const path = join(dir, 'milter.sock');
    await listen(milter, path);
    const up = await health([], { MILTER_SOCKET: path });
    assert.equal(up.status, 0, up.stderr);
    assert.equal(up.stdout, `sos-milter health: healthy: MILTER_SOCKET unix:${path} accepts connections (HEALTH_LISTEN and METRICS_LISTEN unset: no /healthz or /readyz to ask)\n`);
    assert.equal(accepted.length, 1);
    const tcp = createNetServer((s) => s.destroy());
    const port = await listen(tcp, 0, '127.0.0.1');
    try {
      assert.equal((await health(['--ready'], { MILTER_SOCKET: `inet:${port}` })).status, 0, 'inet:PORT is asked on 127.0.0.1');
    } finally {
      await close(tcp);
    }
    const gone = await health([], { MILTER_SOCKET: join(dir, 'absent.sock') });
    assert.equal(gone.status, 1);
    assert.match(gone.stderr, /^sos-milter health: not healthy: MILTER_SOCKET unix:\S+absent\.sock: connect ENOENT/);
    // The default socket follows MILTER_NAME, as the daemon's does.
    const byName = await health([], { MILTER_NAME: 'other-milter' });
    assert.match(byName.stderr, /MILTER_SOCKET unix:\/socket\/other-milter:/);
  } finally {
    await close(milter);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('usage errors exit 64, a bad environment 78 (the daemon\'s own checks), --help 0', async () => {
  for (const args of [['--bogus'], ['extra'], ['--timeout', '0'], ['--timeout', '2s']]) {
    const r = await health(args);
    assert.equal(r.status, 64, args.join(' '));
    assert.match(r.stderr, /usage: sos-milter health/);
  }
  for (const [env, variable] of [
    [{ METRICS_LISTEN: '9100' }, /METRICS_LISTEN/],
    [{ HEALTH_LISTEN: 'localhost' }, /HEALTH_LISTEN/],
    [{ MILTER_SOCKET: 'tcp:8020' }, /MILTER_SOCKET/],
    [{ MILTER_MODE: 'enforce' }, /MILTER_MODE/],
  ] as const) {
    const r = await health([], env);
    assert.equal(r.status, 78, JSON.stringify(env));
    assert.match(r.stderr, /^sos-milter health: configuration error: /);
    assert.match(r.stderr, variable);
  }
  const help = await health(['--help']);
  assert.equal(help.status, 0);
  for (const v of ['HEALTH_LISTEN', 'METRICS_LISTEN', 'MILTER_SOCKET', '/healthz', '/readyz', 'Exit status: 0']) assert.ok(help.stdout.includes(v), v);
});
