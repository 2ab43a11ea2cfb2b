// A low open-files limit, through the real daemon process (started under `prlimit --nofile`),
// judging the e2e zones at a private Knot in reject mode:
// - at start-up it warns, naming the limit, and lowers the connection cap so that the milter
//   connections leave descriptors for DNS; connections past the cap are closed, logged, counted;
// - when the descriptors run out anyway (the limit lowered under the running process), a
//   violating message on an open session is deferred with 451 4.3.0, never passed: its lookup
//   failing for want of a socket is named ("too many open files (EMFILE)") and counted, not read
//   as the sender's DNS failing (which fails open).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { knotSkipReason, startKnot, type KnotInstance } from '../support/knot.js';
import { E2E_ZONES_DIR, e2eRejectEnv, startDaemonProcess, type DaemonProcess } from '../support/daemon-process.js';
import { MilterTestClient } from '../support/milter-client.js';
import { freePort } from '../support/ports.js';

function scrape(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path: '/metrics', timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('scrape timed out')));
  });
}

function metric(body: string, series: string): number {
  const line = body.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? NaN : Number(line.slice(series.length + 1));
}

/** The lowest descriptor number the process does not use: the next one it would get. */
function lowestFreeFd(pid: number): number {
  const used = new Set(readdirSync(`/proc/${pid}/fd`).map(Number));
  let fd = 0;
  while (used.has(fd)) fd++;
  return fd;
}

/**
 * The daemon's open-files limit. Low enough to lower the connection cap, high enough for Node's
 * module loader, which reads the daemon's modules concurrently at start-up (64 is no longer).
 */
const NOFILE = 128;

/** The soft limit only: raising it back up to the hard one (NOFILE) needs no privilege. */
function setSoftNofile(pid: number, n: number): void {
  execFileSync('prlimit', [`--pid=${pid}`, `--nofile=${n}:${NOFILE}`]);
}

function replyText(final: unknown): string {
  const f = final as { type?: string; text?: string } | undefined;
  return f?.type === 'replyCode' ? (f.text ?? '') : JSON.stringify(final);
}

describe('low open-files limit', { skip: knotSkipReason() ?? false }, () => {
  let knot: KnotInstance;
  let dir: string;
  let daemon: DaemonProcess | undefined;
  const clients: MilterTestClient[] = [];

  before(async () => {
    knot = await startKnot({ zonesDir: E2E_ZONES_DIR });
    dir = mkdtempSync(join(tmpdir(), 'sos-fd-'));
  });

  after(async () => {
    for (const c of clients) c.close();
    await daemon?.kill();
    await knot?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test(`nofile=${NOFILE}: WARN and a lowered cap; past it connections are closed and counted; out of descriptors a violation gets 451, never a pass`, async () => {
    const socket = join(dir, 'fd.sock');
    const metricsPort = await freePort();
    daemon = await startDaemonProcess(
      { MILTER_SOCKET: `unix:${socket}`, METRICS_LISTEN: `127.0.0.1:${metricsPort}`, METRICS_CACHE_MS: '0', ...e2eRejectEnv(knot.port) },
      15_000,
      { nofile: NOFILE },
    );
    const d = daemon;

    // Start-up: the limit is named, the cap lowered from the default 1000 ((NOFILE - 48 reserved) / 2 per connection).
    const warn = await d.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('open files limit'), 1000, 'the open-files warning');
    assert.equal(warn['level'], 'warn');
    assert.equal(warn['openFilesLimit'], NOFILE);
    assert.equal(warn['maxConnections'], 1000);
    const cap = warn['effectiveMaxConnections'] as number;
    assert.equal(cap, (NOFILE - 48) / 2);
    assert.match(warn.msg!, /RLIMIT_NOFILE/);

    // The cap's worth of sessions is served; one more is closed at once, logged and counted.
    for (let i = 0; i < cap; i++) {
      const c = await MilterTestClient.connect({ path: socket });
      clients.push(c);
      await c.openSession(`192.0.2.${i + 1}`);
    }
    const extra = await MilterTestClient.connect({ path: socket });
    clients.push(extra);
    await extra.waitClosed(5000);
    const refused = await d.waitFor((l) => l.msg === 'milter connection refused: too many connections or shutting down', 5000, 'the refusal line');
    assert.equal(refused['max'], cap);
    assert.equal(metric(await scrape(metricsPort), 'sos_milter_milter_connections_refused_total'), 1);

    // Within the cap there are descriptors for DNS: open sessions are judged as usual.
    const [first, second] = clients;
    assert.match(replyText(await first!.message('<news@foreign.e2e.test>', 'FD1')), /^550 5\.7\.1 /);
    assert.deepEqual(await second!.message('<news@pass.e2e.test>', 'FD2'), { type: 'continue' });

    // Now no descriptor is left (the limit lowered under the running process to the next free
    // one): a violating sender not yet cached cannot be looked up.
    setSoftNofile(d.pid, lowestFreeFd(d.pid));
    let final: unknown;
    try {
      final = await first!.message('<news@redirected.e2e.test>', 'FD3');
    } finally {
      setSoftNofile(d.pid, NOFILE);
    }
    assert.match(replyText(final), /^451 4\.3\.0 /, 'deferred, not passed unjudged');
    const named = await d.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('too many open files (EMFILE): a DNS lookup'), 5000, 'the EMFILE line');
    assert.equal(named['where'], 'dns');
    const deferred = await d.waitFor((l) => typeof l.msg === 'string' && l.msg.includes('message deferred with 451 4.3.0'), 5000, 'the deferral line');
    assert.equal(deferred['level'], 'error');
    assert.equal(deferred['domain'], 'redirected.e2e.test');

    const body = await scrape(metricsPort);
    assert.ok(metric(body, 'sos_milter_fd_exhausted_total{where="dns"}') >= 1, body.split('\n').filter((l) => l.includes('fd_exhausted')).join('\n'));
    assert.equal(metric(body, 'sos_milter_messages_total{action="tempfail",check="regex",ownership="not-asked"}'), 1);

    // With descriptors back, the same sender is judged (the local fault was not cached as the name's answer).
    assert.match(replyText(await first!.message('<news@redirected.e2e.test>', 'FD4')), /^550 5\.7\.1 /);

    for (const c of clients) c.quit();
    d.proc.kill('SIGTERM');
    assert.equal(await d.waitExit(15_000), 0, d.tail());
  });
});
