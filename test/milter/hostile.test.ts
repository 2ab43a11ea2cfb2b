import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MilterServer, Verdict, type MilterApplication, type MilterLogger } from '../../src/milter/index.js';
import { encodeCommand } from '../support/milter-codec.js';
import { MilterTestClient } from '../support/milter-client.js';

const warnings: string[] = [];
const logger: MilterLogger = {
  debug() {},
  info() {},
  warn(obj: object | string, msg?: string) {
    warnings.push(`${msg ?? ''} ${JSON.stringify(obj)}`);
  },
  error() {},
};

const app: MilterApplication = {
  actions: ['ADDHDRS'],
  async envfrom(ctx, sender) {
    ctx.state['s'] = sender;
  },
  async header() {},
  async eom(ctx) {
    ctx.addHeader('X-Ok', 'yes');
    return Verdict.continue();
  },
};

async function withServer(fn: (s: MilterServer) => Promise<void>): Promise<void> {
  const server = new MilterServer(app, { socket: 'inet:0@127.0.0.1', logger, maxPayload: 4096, idleTimeoutMs: 300 });
  await server.listen();
  try {
    await fn(server);
  } finally {
    await server.close({ deadlineMs: 500 });
  }
}

/** A healthy connection still gets a complete, correct transaction. */
async function healthy(server: MilterServer): Promise<void> {
  const c = await MilterTestClient.connect(server.address()!);
  await c.negotiate();
  await c.mail('<ok@example.org>');
  const eom = await c.eom();
  assert.deepEqual(eom.final, { type: 'continue' });
  assert.deepEqual(eom.modifications, [{ type: 'addHeader', name: 'X-Ok', value: 'yes' }]);
  c.quit();
  await c.waitClosed();
}

async function expectClosed(server: MilterServer, bytes: Buffer, negotiateFirst = true): Promise<void> {
  const errorsBefore = server.stats().protocolErrors;
  const c = await MilterTestClient.connect(server.address()!);
  if (negotiateFirst) await c.negotiate();
  c.sendRaw(bytes);
  await c.waitClosed();
  assert.equal(server.stats().protocolErrors, errorsBefore + 1, bytes.toString('hex').slice(0, 40));
}

test('malformed packets close only the offending connection, with a log line', async () => {
  await withServer(async (server) => {
    const cases: Buffer[] = [
      Buffer.from([0, 0, 0, 0]), // length 0
      Buffer.from([0, 0, 0x10, 0x02, 0x4c]), // payload beyond the 4096 limit
      Buffer.from([0xff, 0xff, 0xff, 0xff]), // absurd length
      Buffer.from([0, 0, 0, 1, 0x5a]), // unknown command byte
      Buffer.from([0, 0, 0, 4, 0x48, 0x61, 0x62, 0x63]), // HELO without NUL
      Buffer.from([0, 0, 0, 9, 0x4c, 0x53, 0x75, 0x62, 0, 0x76, 0x61, 0x6c, 0x75]), // header value truncated
      Buffer.from([0, 0, 0, 5, 0x43, 0x68, 0x00, 0x34, 0x00]), // connect without port
      Buffer.from([0, 0, 0, 5, 0x4f, 0, 0, 0, 6]), // short OPTNEG
      Buffer.from([0, 0, 0, 13, 0x4f, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]), // version 1 OPTNEG (re-negotiation)
    ];
    for (const bytes of cases) {
      await expectClosed(server, bytes);
      await healthy(server);
    }
    assert.ok(warnings.some((w) => /protocol error/.test(w) && /ZERO_LENGTH/.test(w)));
    assert.ok(warnings.some((w) => /PACKET_TOO_LARGE/.test(w)));
  });
});

test('commands before negotiation close the connection', async () => {
  await withServer(async (server) => {
    await expectClosed(server, encodeCommand({ type: 'helo', name: 'early' }), false);
    await expectClosed(server, encodeCommand({ type: 'mail', args: ['<a@b>'] }), false);
    await healthy(server);
  });
});

test('out-of-order commands are answered, never left hanging', async () => {
  await withServer(async (server) => {
    const c = await MilterTestClient.connect(server.address()!);
    await c.negotiate();
    // RCPT/HEADER/EOM without MAIL, BODY before DATA, repeated ABORTs, CONNECT mid-message.
    assert.deepEqual((await c.rcpt('<r@x>')).final, { type: 'continue' });
    assert.deepEqual((await c.header('Subject', 'x')).final, { type: 'continue' });
    assert.deepEqual((await c.body('x')).final, { type: 'continue' });
    assert.deepEqual((await c.eom()).final, { type: 'continue' });
    c.abort();
    c.abort();
    await c.mail('<a@x>');
    assert.deepEqual((await c.connectCmd('again', '127.0.0.1', 9)).final, { type: 'continue' });
    assert.deepEqual((await c.mail('<b@x>')).final, { type: 'continue' });
    assert.deepEqual((await c.mail('<c@x>')).final, { type: 'continue' });
    c.quit();
    await c.waitClosed();
    await healthy(server);
  });
});

test('garbage after QUIT is ignored and the connection closes', async () => {
  await withServer(async (server) => {
    const errors = server.stats().protocolErrors;
    const c = await MilterTestClient.connect(server.address()!);
    await c.negotiate();
    c.sendRaw(Buffer.concat([encodeCommand({ type: 'quit' }), Buffer.from('GET / HTTP/1.0\r\n\r\n'), Buffer.from([0, 0, 0, 0])]));
    await c.waitClosed();
    assert.equal(c.pending, 0);
    assert.equal(server.stats().protocolErrors, errors);
    await healthy(server);
  });
});

test('a peer that stalls mid-packet is closed by the idle timeout', async () => {
  await withServer(async (server) => {
    const c = await MilterTestClient.connect(server.address()!);
    await c.negotiate();
    const pkt = encodeCommand({ type: 'helo', name: 'stalling' });
    c.sendRaw(pkt.subarray(0, 7));
    await c.waitClosed(3000);
    assert.equal(server.stats().idleTimeouts >= 1, true);
    assert.ok(warnings.some((w) => /idle too long/.test(w)));
    await healthy(server);
  });
});

/** Deterministic PRNG (mulberry32) so failures reproduce. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CMDS = [0x41, 0x42, 0x43, 0x44, 0x45, 0x48, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f, 0x51, 0x52, 0x54, 0x55];

function validPackets(): Buffer[] {
  return [
    encodeCommand({ type: 'macro', stage: 0x43, pairs: [{ name: 'j', value: 'mx' }] }),
    encodeCommand({ type: 'connect', hostname: 'h', family: 'inet', port: 25, address: '192.0.2.1' }),
    encodeCommand({ type: 'helo', name: 'x' }),
    encodeCommand({ type: 'mail', args: ['<a@b>', 'SIZE=1'] }),
    encodeCommand({ type: 'rcpt', args: ['<c@d>'] }),
    encodeCommand({ type: 'data' }),
    encodeCommand({ type: 'header', name: 'Subject', value: 'x' }),
    encodeCommand({ type: 'eoh' }),
    encodeCommand({ type: 'body', chunk: Buffer.from('body\r\n') }),
    encodeCommand({ type: 'eob', data: Buffer.alloc(0) }),
    encodeCommand({ type: 'abort' }),
    encodeCommand({ type: 'unknown', line: 'FOO' }),
  ];
}

function randomPacket(rnd: () => number, valid: Buffer[]): Buffer {
  const kind = rnd();
  if (kind < 0.4) {
    // Mutate a valid packet: flip bytes, truncate, or extend.
    const p = Buffer.from(valid[Math.floor(rnd() * valid.length)]!);
    const flips = 1 + Math.floor(rnd() * 3);
    for (let i = 0; i < flips; i++) p[4 + Math.floor(rnd() * (p.length - 4))] = Math.floor(rnd() * 256);
    const payload = p.subarray(5, 5 + Math.floor(rnd() * (p.length - 4)));
    const out = Buffer.alloc(5 + payload.length);
    out.writeUInt32BE(1 + payload.length, 0);
    out[4] = p[4]!;
    payload.copy(out, 5);
    return out;
  }
  if (kind < 0.8) {
    // Random payload under a known command byte, length field consistent.
    const len = Math.floor(rnd() * 40);
    const out = Buffer.alloc(5 + len);
    out.writeUInt32BE(1 + len, 0);
    out[4] = CMDS[Math.floor(rnd() * CMDS.length)]!;
    for (let i = 0; i < len; i++) out[5 + i] = rnd() < 0.2 ? 0 : Math.floor(rnd() * 256);
    return out;
  }
  // Entirely random bytes (random lengths included).
  const out = Buffer.alloc(1 + Math.floor(rnd() * 12));
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(rnd() * 256);
  return out;
}

test('thousands of random and mutated packets never break the server', async () => {
  const rnd = prng(0x5eed);
  const valid = validPackets();
  await withServer(async (server) => {
    const keeper = await MilterTestClient.connect(server.address()!);
    await keeper.negotiate();
    let closedByServer = 0;
    for (let conn = 0; conn < 40; conn++) {
      const c = await MilterTestClient.connect(server.address()!);
      await c.negotiate();
      const burst: Buffer[] = [];
      for (let i = 0; i < 100; i++) burst.push(rnd() < 0.3 ? valid[Math.floor(rnd() * valid.length)]! : randomPacket(rnd, valid));
      c.sendRaw(Buffer.concat(burst));
      // Either the server drops the connection (protocol error) or it answers everything.
      const settled = await Promise.race([
        c.waitClosed(2000).then(() => 'closed'),
        new Promise((r) => setTimeout(() => r('open'), 150)),
      ]);
      if (settled === 'open') {
        c.quit();
        await c.waitClosed(2000);
      } else {
        closedByServer++;
      }
      // The long-lived healthy connection keeps working throughout.
      assert.deepEqual((await keeper.helo(`still-${conn}`)).final, { type: 'continue' });
    }
    // The server accepted every connection and closed each burst's connection: on a protocol
    // error it counted, or on a QUIT among the valid packets. Only the keeper is left open.
    const stats = server.stats();
    assert.equal(stats.connectionsTotal, 41);
    assert.equal(closedByServer, 40, 'every burst ended its connection');
    assert.equal(stats.connectionsOpen, 1, JSON.stringify(stats));
    assert.ok(stats.protocolErrors > 0 && stats.protocolErrors <= 40, JSON.stringify(stats));
    keeper.quit();
    await keeper.waitClosed();
    await healthy(server);
  });
});
