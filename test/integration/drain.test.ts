// Drain on SIGTERM through the real daemon process on a UNIX socket: open milter connections
// are served, message after message, until the MTA quits; none is closed by the milter before
// that or before SHUTDOWN_TIMEOUT_MS; /readyz turns unready at once; exit 0; socket file gone.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { knotSkipReason, startKnot, type KnotInstance } from '../support/knot.js';
import { E2E_ZONES_DIR, e2eRejectEnv, expectVerdict, listeningPort, startDaemonProcess, type DaemonProcess } from '../support/daemon-process.js';
import { MilterTestClient } from '../support/milter-client.js';
import { freePort } from '../support/ports.js';
import { sleep, waitFor } from '../support/wait.js';

function readyz(port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, path: '/readyz', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
  });
}

describe('drain on SIGTERM', { skip: knotSkipReason() ?? false }, () => {
  let knot: KnotInstance;
  let dir: string;
  const daemons: DaemonProcess[] = [];

  before(async () => {
    knot = await startKnot({ zonesDir: E2E_ZONES_DIR });
    dir = mkdtempSync(join(tmpdir(), 'sos-drain-'));
  });

  after(async () => {
    for (const d of daemons) await d.kill();
    await knot?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function start(name: string, extra: Record<string, string>): Promise<{ daemon: DaemonProcess; socket: string }> {
    const socket = join(dir, `${name}.sock`);
    const daemon = await startDaemonProcess({
      MILTER_SOCKET: `unix:${socket}`,
      ...e2eRejectEnv(knot.port),
      ...extra,
    });
    daemons.push(daemon);
    return { daemon, socket };
  }

  test('SIGTERM while 10 sessions each send hundreds of messages: every message judged, no session closed before its QUIT, exit 0', async () => {
    const healthPort = await freePort();
    const { daemon, socket } = await start('busy', { SHUTDOWN_TIMEOUT_MS: '120000', HEALTH_LISTEN: `127.0.0.1:${healthPort}` });
    assert.equal(await readyz(healthPort), 200);

    const SESSIONS = 10;
    const MESSAGES = 200;
    let signalled = false;
    let judgedAfterSignal = 0;
    const quitAt: number[] = [];
    const sessions = Array.from({ length: SESSIONS }, async (_, s) => {
      const c = await MilterTestClient.connect({ path: socket }, 20_000);
      await c.openSession(`192.0.2.${s + 1}`);
      for (let m = 0; m < MESSAGES; m++) {
        const sender = (s + m) % 3 === 0 ? '<news@foreign.e2e.test>' : '<news@pass.e2e.test>';
        assert.equal(c.closed, false, `session ${s} closed by the milter before message ${m}`);
        const final = await c.message(sender, `S${s}M${m}`);
        expectVerdict(sender, final, `session ${s} message ${m}${signalled ? ' (after SIGTERM)' : ''}`);
        if (signalled) judgedAfterSignal++;
        // Pauses between messages, as an SMTP client takes its time: idle sessions must survive the drain.
        await sleep(m % 10 === 0 ? 60 : 5);
      }
      assert.equal(c.closed, false, `session ${s} closed before QUIT`);
      c.quit();
      quitAt.push(Date.now());
      await c.waitClosed();
    });

    // SIGTERM once every session is well into its messages.
    await sleep(1500);
    signalled = true;
    const signalledAt = Date.now();
    daemon.proc.kill('SIGTERM');
    // Unready from the first moment, the socket file removed: new sessions go elsewhere.
    await waitFor(async () => (await readyz(healthPort)) !== 200, { timeoutMs: 1000, intervalMs: 10, what: 'readyz unready' });
    const unreadyAfterMs = Date.now() - signalledAt;
    assert.ok(unreadyAfterMs >= 0 && unreadyAfterMs < 1000, `readyz unready after ${unreadyAfterMs} ms`);
    await daemon.waitFor((l) => /draining milter connections/.test(l.msg ?? ''), 5000, 'the draining line');
    assert.equal(existsSync(socket), false, 'the socket file is removed when the listener closes');
    await assert.rejects(MilterTestClient.connect({ path: socket }, 2000), 'no new connections during the drain');

    await Promise.all(sessions);
    const code = await daemon.waitExit(20_000);
    assert.equal(code, 0, daemon.tail());
    assert.ok(judgedAfterSignal >= SESSIONS * 20, `only ${judgedAfterSignal} messages were judged after SIGTERM`);
    assert.ok(Math.min(...quitAt) > signalledAt, 'the sessions were still running when SIGTERM came');
    assert.equal(existsSync(socket), false);
    const stopped = daemon.lines.find((l) => l.msg === 'milter server stopped');
    assert.ok(stopped, daemon.tail());
    assert.equal(stopped['shutdownCloses'], 0);
    assert.equal(stopped['messages'], SESSIONS * MESSAGES);
    assert.equal(daemon.lines.filter((l) => /shutdown deadline reached/.test(l.msg ?? '')).length, 0);
    console.log(`# drain: ${judgedAfterSignal} of ${SESSIONS * MESSAGES} messages judged after SIGTERM; readyz unready after ${unreadyAfterMs} ms`);
  });

  test('a session that outlives SHUTDOWN_TIMEOUT_MS is closed at the deadline, counted in the log; exit 0', async () => {
    const DEADLINE_MS = 1500;
    const { daemon, socket } = await start('deadline', { SHUTDOWN_TIMEOUT_MS: String(DEADLINE_MS) });
    const idle = await MilterTestClient.connect({ path: socket }, 20_000);
    await idle.openSession();
    expectVerdict('<news@pass.e2e.test>', await idle.message('<news@pass.e2e.test>', 'I1'), 'idle session, before');
    const busy = await MilterTestClient.connect({ path: socket }, 20_000);
    await busy.openSession();

    daemon.proc.kill('SIGTERM');
    const signalledAt = Date.now();
    let sent = 0;
    // One session keeps sending, the other sits between messages: neither is closed before the deadline.
    const busyLoop = (async () => {
      for (;;) {
        const sender = sent % 2 === 0 ? '<news@foreign.e2e.test>' : '<news@pass.e2e.test>';
        try {
          const final = await busy.message(sender, `B${sent}`);
          expectVerdict(sender, final, `busy message ${sent}`);
        } catch (err) {
          if (busy.closed) return Date.now();
          throw err;
        }
        sent++;
        await sleep(20);
      }
    })();
    await idle.waitClosed(DEADLINE_MS + 10_000);
    const idleClosedAfter = Date.now() - signalledAt;
    const busyClosedAfter = (await busyLoop) - signalledAt;
    assert.ok(idleClosedAfter >= DEADLINE_MS - 50, `idle session closed ${idleClosedAfter} ms after SIGTERM`);
    assert.ok(busyClosedAfter >= DEADLINE_MS - 50, `busy session closed ${busyClosedAfter} ms after SIGTERM`);
    assert.ok(sent > 5, `busy session judged ${sent} messages during the drain`);

    const code = await daemon.waitExit(20_000);
    assert.equal(code, 0, daemon.tail());
    const line = daemon.lines.find((l) => /shutdown deadline reached/.test(l.msg ?? ''));
    assert.ok(line, daemon.tail());
    assert.equal(line['closed'], 2);
    assert.equal(daemon.lines.find((l) => l.msg === 'milter server stopped')?.['shutdownCloses'], 2);
    assert.equal(existsSync(socket), false);
  });

  test('a second signal ends the drain at once: the remaining sessions are closed and counted; exit 0', async () => {
    const { daemon, socket } = await start('second', { SHUTDOWN_TIMEOUT_MS: '60000' });
    const c = await MilterTestClient.connect({ path: socket }, 20_000);
    await c.openSession();
    daemon.proc.kill('SIGTERM');
    await daemon.waitFor((l) => /draining milter connections/.test(l.msg ?? ''), 5000, 'the draining line');
    expectVerdict('<news@pass.e2e.test>', await c.message('<news@pass.e2e.test>', 'X1'), 'served during the drain');
    assert.equal(c.closed, false);
    const secondAt = Date.now();
    daemon.proc.kill('SIGINT');
    await c.waitClosed(10_000);
    assert.ok(Date.now() - secondAt < 5000);
    assert.equal(await daemon.waitExit(20_000), 0, daemon.tail());
    assert.ok(daemon.lines.some((l) => /second signal/.test(l.msg ?? '')));
    assert.equal(daemon.lines.find((l) => /shutdown deadline reached/.test(l.msg ?? ''))?.['closed'], 1);
  });
});

describe('a message pending at the drain deadline', () => {
  test('is logged as closed by the milter at the shutdown drain deadline, not as abandoned by the MTA; exit 0', async () => {
    // A DNS server that takes every query and never answers: end of message waits for it.
    const dns = createSocket('udp4');
    let queries = 0;
    dns.on('message', () => queries++);
    await new Promise<void>((resolve) => dns.bind(0, '127.0.0.1', () => resolve()));
    const daemon = await startDaemonProcess({
      MILTER_SOCKET: 'inet:0@127.0.0.1',
      DNS_SERVERS: `127.0.0.1:${dns.address().port}`,
      // The assessment's own deadline (four lookups' worth) lies far beyond the drain deadline.
      DNS_TIMEOUT_MS: '20000',
      SHUTDOWN_TIMEOUT_MS: '1000',
      LOG_LEVEL: 'info',
    });
    try {
      const c = await MilterTestClient.connect({ port: await listeningPort(daemon), host: '127.0.0.1' }, 20_000);
      await c.openSession();
      await c.mail('<news@pending.example>', [], { i: 'QP1', '{mail_addr}': 'news@pending.example' });
      await c.rcpt('<rcpt@example.net>', [], { i: 'QP1', '{rcpt_host}': 'mx.example.net', '{rcpt_addr}': 'rcpt@example.net' });
      c.sendMacros('eob', { i: 'QP1' });
      c.send({ type: 'eob', data: Buffer.alloc(0) });
      await waitFor(() => queries, { timeoutMs: 5000, what: 'the SPF lookup at the silent DNS server', until: (n) => n > 0 });
      assert.ok(queries > 0, 'the SPF lookup reached the silent DNS server');
      daemon.proc.kill('SIGTERM');
      const line = await daemon.waitFor((l) => /no verdict given/.test(l.msg ?? ''), 15_000, 'the line of the message cut at the deadline');
      assert.equal(line.msg, 'connection closed by the milter at the shutdown drain deadline (SHUTDOWN_TIMEOUT_MS): no verdict given');
      assert.equal(line['domain'], 'pending.example');
      assert.equal(await daemon.waitExit(15_000), 0, daemon.tail());
      assert.ok(!daemon.lines.some((l) => /abandoned by the MTA/.test(l.msg ?? '')), daemon.tail());
      await c.waitClosed(5000);
    } finally {
      await daemon.kill();
      dns.close();
    }
  });
});
