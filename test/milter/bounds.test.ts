// Each bound of the milter library, one at a time, against a real loopback server: what a
// hostile or broken peer can make the server hold, and that the server closes only that peer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { MilterServer, Verdict, type MilterApplication } from '../../src/milter/index.js';
import { RateLimitedLog } from '../../src/milter/rate-limited-log.js';
import { encodeCommand } from '../support/milter-codec.js';
import { MilterTestClient } from '../support/milter-client.js';
import { ManualClock } from '../support/manual-clock.js';
import { recordingLogger, withServer } from '../support/milter-server.js';
import { closed, rawConnect as connectRaw, trickle } from '../support/raw-peer.js';
import { sleep, waitFor } from '../support/wait.js';

/** EOM answers after `eomDelayMs` (a pending callback), everything else at once. */
function app(eomDelayMs = 0): MilterApplication {
  return {
    actions: ['ADDHDRS'],
    macros: { envfrom: ['i', '{mail_addr}'] },
    noReply: ['envfrom'],
    envfrom() {},
    async eom() {
      if (eomDelayMs > 0) await sleep(eomDelayMs);
      return Verdict.accept();
    },
  };
}

async function healthy(server: MilterServer): Promise<void> {
  const c = await MilterTestClient.connect(server.address()!);
  await c.negotiate();
  await c.mail('<ok@example.org>');
  assert.deepEqual((await c.eom()).final, { type: 'accept' });
  c.quit();
  await c.waitClosed();
}

function rawConnect(server: MilterServer): Promise<Socket> {
  const a = server.address();
  assert.ok(a && a.kind === 'inet');
  return connectRaw(a.port);
}

const OPTNEG = encodeCommand({ type: 'optneg', version: 6, actions: 0x1ff, protocol: 0x1fffff });
const EMPTY_D = Buffer.from([0, 0, 0, 1, 0x44]);

test('queue: a pipelined burst behind a pending EOM closes the connection after its verdict, with a log line', async () => {
  await withServer(app(100), { maxQueuedPackets: 1000 }, async (server, log) => {
    const c = await MilterTestClient.connect(server.address()!);
    await c.negotiate();
    const burst = Buffer.concat([
      encodeCommand({ type: 'mail', args: ['<>'] }),
      encodeCommand({ type: 'eob', data: Buffer.alloc(0) }),
      ...Array.from({ length: 10_000 }, () => EMPTY_D),
    ]);
    c.sendRaw(burst);
    // The message in flight still gets its verdict, then the connection closes.
    assert.deepEqual((await c.readReply()).final, { type: 'accept' });
    await c.waitClosed();
    assert.equal(server.stats().queueOverflows, 1);
    const line = log.lines.find((l) => l.level === 'warn' && /pipelined more than allowed/.test(l.msg));
    assert.ok(line);
    assert.equal(line.obj['maxPackets'], 1000);
    await healthy(server);
  });
});

test('queue: tens of thousands of queued packets within the bound are processed without stack growth', async () => {
  await withServer(app(50), { maxQueuedPackets: 60_000, maxPayload: 4096 }, async (server) => {
    const c = await MilterTestClient.connect(server.address()!);
    await c.negotiate();
    c.sendRaw(
      Buffer.concat([
        encodeCommand({ type: 'mail', args: ['<>'] }),
        encodeCommand({ type: 'eob', data: Buffer.alloc(0) }),
        ...Array.from({ length: 50_000 }, () => EMPTY_D),
        encodeCommand({ type: 'mail', args: ['<a@example.org>'] }),
        encodeCommand({ type: 'eob', data: Buffer.alloc(0) }),
      ]),
    );
    assert.deepEqual((await c.readReply()).final, { type: 'accept' });
    assert.deepEqual((await c.readReply()).final, { type: 'accept' });
    assert.equal(server.stats().queueOverflows, 0);
    assert.equal(server.stats().messages, 2);
    c.quit();
    await c.waitClosed();
  });
});

test('packet deadline: a trickling peer is closed when its packet is not complete in time', async () => {
  await withServer(app(), { packetTimeoutMs: 300, idleTimeoutMs: 60_000 }, async (server, log) => {
    const s = await rawConnect(server);
    const started = Date.now();
    const peer = trickle(s, OPTNEG, 40);
    await closed(s);
    peer.stop();
    const took = Date.now() - started;
    assert.ok(peer.sent() < OPTNEG.length, 'closed before the packet was complete');
    assert.ok(took >= 300, `closed after ${took} ms, not before the deadline`);
    assert.equal(server.stats().packetTimeouts, 1);
    assert.ok(log.lines.some((l) => /packet not complete within the packet timeout/.test(l.msg)));
    await healthy(server);
  });
});

test('packet deadline: a slow peer that completes packets is not closed (progress restarts the clock)', async () => {
  await withServer(app(), { packetTimeoutMs: 300, idleTimeoutMs: 60_000 }, async (server) => {
    const c = await MilterTestClient.connect(server.address()!);
    await c.negotiate();
    // Each packet arrives in two halves 150 ms apart, back to back: a partial packet is held
    // for well over 300 ms in total, yet each packet completes within its deadline.
    const packets = Array.from({ length: 6 }, (_, i) => encodeCommand({ type: 'macro', stage: 0x4d, pairs: [{ name: 'i', value: `Q${i}` }] }));
    const stream = Buffer.concat(packets);
    const step = Math.ceil(stream.length / 12);
    for (let off = 0; off < stream.length; off += step) {
      c.sendRaw(stream.subarray(off, off + step));
      await sleep(100);
    }
    await c.mail('<ok@example.org>');
    assert.deepEqual((await c.eom()).final, { type: 'accept' });
    assert.equal(server.stats().packetTimeouts, 0);
    c.quit();
    await c.waitClosed();
  });
});

test('buffered-bytes budget, incomplete packets: the largest holders are closed, the total stays within the budget', async () => {
  await withServer(app(), { maxBufferedBytes: 100_000, maxPayload: 64 * 1024, packetTimeoutMs: 30_000 }, async (server, log) => {
    const peers: Socket[] = [];
    for (let i = 0; i < 6; i++) {
      const s = await rawConnect(server);
      s.on('error', () => undefined);
      s.write(OPTNEG);
      // A header packet announced at 60,000 bytes, of which 30,000 (+ i) are sent.
      const head = Buffer.alloc(5);
      head.writeUInt32BE(60_001, 0);
      head[4] = 0x4c;
      s.write(Buffer.concat([head, Buffer.alloc(30_000 + i, 0x61)]));
      peers.push(s);
      await sleep(30);
    }
    await waitFor(() => server.stats().bufferedBudgetCloses, { timeoutMs: 5000, what: '3 budget closes', until: (n) => n >= 3 });
    assert.equal(server.stats().bufferedBudgetCloses, 3, '6 x 30 KB against a 100 KB budget');
    assert.ok(server.stats().bufferedBytes <= 100_000);
    assert.ok(log.lines.some((l) => /exceeds the budget/.test(l.msg)));
    await healthy(server);
    for (const p of peers) p.destroy();
  });
});

test('buffered-bytes budget, packets queued behind pending callbacks count too', async () => {
  await withServer(app(1500), { maxBufferedBytes: 200_000 }, async (server, log) => {
    const clients: MilterTestClient[] = [];
    // Each connection parks 60 KB of macro packets behind its pending EOM: 5 x 60 KB against 200 KB.
    const d = encodeCommand({ type: 'macro', stage: 0x4d, pairs: [{ name: 'x', value: 'v'.repeat(990) }] });
    for (let i = 0; i < 5; i++) {
      const c = await MilterTestClient.connect(server.address()!);
      await c.negotiate();
      c.sendRaw(Buffer.concat([encodeCommand({ type: 'mail', args: ['<>'] }), encodeCommand({ type: 'eob', data: Buffer.alloc(0) }), ...Array.from({ length: 60 + i }, () => d)]));
      clients.push(c);
      await sleep(20);
    }
    await waitFor(() => server.stats().bufferedBudgetCloses, { timeoutMs: 5000, what: '2 budget closes', until: (n) => n >= 2 });
    assert.equal(server.stats().bufferedBudgetCloses, 2, '5 x 60 KB against 200 KB: the two largest go');
    assert.ok(server.stats().bufferedBytes <= 200_000);
    assert.ok(log.lines.some((l) => /exceeds the budget/.test(l.msg)));
    // The others get their verdicts once their callbacks finish.
    let answered = 0;
    for (const c of clients) {
      try {
        if ((await c.readReply()).final?.type === 'accept') answered++;
      } catch {
        /* one of the closed */
      }
      c.close();
    }
    assert.ok(answered >= 3, `${answered} answered`);
    await sleep(100);
    assert.equal(server.stats().bufferedBytes, 0, 'nothing is counted once the queues have drained');
  });
});

test('backpressure: a peer that never reads is paused, then closed; memory held for it stays bounded', async () => {
  await withServer(app(), { packetTimeoutMs: 500, writeHighWaterMark: 16 * 1024, maxWriteBuffer: 256 * 1024 }, async (server, log) => {
    const s = await rawConnect(server);
    s.on('error', () => undefined);
    s.pause(); // never read
    // Protocol 0 offered: every HELO is answered.
    s.write(encodeCommand({ type: 'optneg', version: 6, actions: 0x1ff, protocol: 0 }));
    const chunk = Buffer.concat(Array.from({ length: 8192 }, () => encodeCommand({ type: 'helo', name: 'x' })));
    let sent = 0;
    let maxPaused = 0;
    // Sampled on a timer too: the client may sit in 'drain' from the pause until the close.
    const sampler = setInterval(() => (maxPaused = Math.max(maxPaused, server.stats().connectionsPaused)), 5);
    try {
      while (!s.destroyed && sent < 200 * 1024 * 1024) {
        if (!s.write(chunk)) await new Promise<void>((r) => { s.once('drain', r); s.once('close', r); });
        sent += chunk.length;
        maxPaused = Math.max(maxPaused, server.stats().connectionsPaused);
      }
      await closed(s);
    } finally {
      clearInterval(sampler);
    }
    assert.ok(sent < 200 * 1024 * 1024, `closed after ${sent} bytes`);
    assert.equal(maxPaused, 1, 'reading stopped while replies waited');
    assert.equal(server.stats().writeOverflows, 1);
    assert.ok(log.lines.some((l) => /does not read its replies|has not read its replies/.test(l.msg)));
    await healthy(server);
  });
});

test('rate limit: per-event warnings are capped per interval, then summarised with a count', async () => {
  const logger = recordingLogger();
  const noise = new RateLimitedLog(logger, { limit: 3, intervalMs: 60_000 });
  for (let i = 0; i < 10; i++) noise.warn('protocol-error', { i }, 'bad packet');
  noise.warn('connection-refused', {}, 'refused');
  assert.equal(logger.lines.filter((l) => l.msg === 'bad packet').length, 3);
  assert.equal(logger.lines.filter((l) => l.msg === 'refused').length, 1, 'kinds are limited separately');
  noise.flush();
  const summary = logger.lines.find((l) => /suppressed/.test(l.msg));
  assert.ok(summary);
  assert.equal(summary.obj['suppressed'], 7);
  assert.equal(summary.obj['kind'], 'protocol-error');
  assert.equal(noise.suppressedTotal, 7);
});

test('rate limit through the server: a flood of protocol errors writes at most the limit, then a count', async () => {
  // The server's clock stands still unless moved: all 25 connects fall in one window however
  // long they take on a loaded machine, and the window ends exactly when the test says.
  const clock = new ManualClock();
  await withServer(app(), { warningRate: { limit: 5, intervalMs: 300 }, clock }, async (server, log) => {
    const badPeer = async (): Promise<void> => {
      const s = await rawConnect(server);
      s.on('error', () => undefined);
      s.write(Buffer.from([0, 0, 0, 0]));
      await closed(s);
    };
    const errorLines = (): number => log.lines.filter((l) => /protocol error/.test(l.msg)).length;
    const summaries = () => log.lines.filter((l) => /suppressed/.test(l.msg));
    for (let i = 0; i < 25; i++) await badPeer();
    assert.equal(server.stats().protocolErrors, 25);
    assert.equal(errorLines(), 5);
    assert.equal(server.stats().warningsSuppressed, 20);
    clock.advance(299);
    assert.equal(summaries().length, 0, 'no summary before the interval ends');
    clock.advance(1);
    const [summary, ...more] = summaries();
    assert.ok(summary, 'a summary line follows the interval');
    assert.deepEqual(more, []);
    assert.equal(summary.obj['kind'], 'protocol-error');
    assert.equal(summary.obj['suppressed'], 20);
    assert.equal(summary.obj['limit'], 5);
    assert.equal(summary.obj['intervalMs'], 300);
    // A new interval: the next error is written again, and nothing is left to summarise.
    await badPeer();
    assert.equal(errorLines(), 6);
    assert.equal(server.stats().warningsSuppressed, 20);
    assert.equal(clock.pending, 0, 'no summary timer armed when nothing was suppressed');
  });
});

test('negotiation is logged at debug level with flag names and macro lists', async () => {
  await withServer(app(), {}, async (server, log) => {
    const c = await MilterTestClient.connect(server.address()!);
    await c.negotiate({ version: 6, actions: 0x1ff, protocol: 0x1fffff });
    c.quit();
    await c.waitClosed();
    const line = log.lines.find((l) => l.level === 'debug' && l.msg === 'milter options negotiated');
    assert.ok(line);
    const offered = line.obj['offered'] as { version: number; actions: string[]; protocol: string[] };
    const agreed = line.obj['agreed'] as { version: number; actions: string[]; protocol: string[] };
    assert.equal(offered.version, 6);
    assert.ok(offered.actions.includes('CHGBODY') && offered.protocol.includes('NR_HDR'));
    assert.deepEqual(agreed.actions, ['ADDHDRS', 'SETSYMLIST']);
    assert.ok(agreed.protocol.includes('NR_MAIL') && agreed.protocol.includes('NOHDRS'));
    assert.ok(!agreed.protocol.includes('NR_HDR'));
    assert.deepEqual(line.obj['macros'], { envfrom: 'i {mail_addr}' });
  });
});
