import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { Srs } from '../../src/srs/scheme.js';
import { SocketmapServer, type SocketmapEvent, type SocketmapServerOptions } from '../../src/srs/socketmap-server.js';
import { srsDecodeLookup, type DecodeOutcome } from '../../src/srs/decode-map.js';
import { readNetstring, writeNetstring } from '../../src/srs/netstring.js';
import { captureLog } from '../support/log-capture.js';

const srs = new Srs({ secrets: ['sos-test-secret-0123456789'], domain: 'srs.esp.example', maxAgeDays: 21 });

async function start(options: Partial<SocketmapServerOptions> = {}) {
  const { logger, lines } = captureLog('text');
  const events: SocketmapEvent[] = [];
  const outcomes: DecodeOutcome[] = [];
  const server = new SocketmapServer({
    lookup: srsDecodeLookup(srs, logger, (o) => outcomes.push(o)),
    logger,
    onEvent: (e) => events.push(e),
    ...options,
  });
  const { port } = await server.listen('127.0.0.1', 0);
  return { server, port, events, outcomes, lines };
}

/** A client that reads netstring replies one at a time. */
class Client {
  readonly socket: net.Socket;
  #buffer = Buffer.alloc(0);
  closed: Promise<void>;
  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.on('data', (d: Buffer) => (this.#buffer = Buffer.concat([this.#buffer, d])));
    this.socket.on('error', () => {});
    // Not events.once: it rejects on 'error', and a server that closes on a client with unread
    // data resets the connection (ECONNRESET): closed is closed, however it came.
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()));
  }
  async reply(): Promise<string> {
    for (;;) {
      const read = readNetstring(this.#buffer, 100_000);
      if (read.kind === 'frame') {
        this.#buffer = this.#buffer.subarray(read.consumed);
        return read.payload.toString('utf8');
      }
      if (this.socket.destroyed && this.#buffer.length === 0) throw new Error('closed without a reply');
      await Promise.race([once(this.socket, 'data'), this.closed]);
    }
  }
  async ask(request: string): Promise<string> {
    this.socket.write(writeNetstring(request));
    return this.reply();
  }
}

test('netstrings: framing, partial input, bounds', () => {
  assert.deepEqual(writeNetstring('OK a@b'), Buffer.from('6:OK a@b,'));
  const frame = readNetstring(Buffer.from('3:abc,4:'), 10);
  assert.equal(frame.kind, 'frame');
  assert.equal(frame.kind === 'frame' && frame.consumed, 6);
  assert.deepEqual(readNetstring(Buffer.from('3:ab'), 10), { kind: 'partial' });
  assert.deepEqual(readNetstring(Buffer.from('11:'), 10), { kind: 'oversized', length: 11 });
  assert.deepEqual(readNetstring(Buffer.from('999'), 10), { kind: 'oversized', length: undefined });
  assert.equal(readNetstring(Buffer.from('3:abc;'), 10).kind, 'malformed');
  assert.equal(readNetstring(Buffer.from('x:'), 10).kind, 'malformed');
  assert.equal(readNetstring(Buffer.from(':'), 10).kind, 'malformed');
});

test('srsdecode: a valid address maps back, the rest is NOTFOUND, on one connection', async () => {
  const { server, port, outcomes } = await start();
  try {
    const made = srs.forward('someone+tag@customer.example');
    assert.ok(made.ok);
    const c = new Client(port);
    assert.equal(await c.ask(`srsdecode ${made.address}`), 'OK someone+tag@customer.example');
    assert.equal(await c.ask(`srsdecode ${made.address.toLowerCase()}`), 'OK someone+tag@customer.example');
    const forged = made.address.replace(/^SRS0=..../, 'SRS0=AAAA');
    assert.equal(await c.ask(`srsdecode ${forged}`), 'NOTFOUND ');
    assert.equal(await c.ask('srsdecode SRS0=qZXd=AA=example.com=user@srs.esp.example'), 'NOTFOUND ');
    assert.equal(await c.ask('srsdecode SRS0=broken@srs.esp.example'), 'NOTFOUND ');
    assert.equal(await c.ask('srsdecode @srs.esp.example'), 'NOTFOUND ');
    assert.equal(await c.ask('srsdecode postmaster'), 'NOTFOUND ');
    assert.equal(await c.ask(`srsdecode ${made.address.replace('srs.esp.example', 'elsewhere.example')}`), 'NOTFOUND ');
    assert.match(await c.ask(`srsencode ${made.address}`), /^PERM unknown map "srsencode"/);
    assert.match(await c.ask('no-space'), /^PERM /);
    assert.deepEqual(outcomes, ['decoded', 'decoded', 'forged', 'forged', 'malformed', 'not-srs', 'not-srs', 'foreign-domain']);
    c.socket.end();
    await c.closed;
  } finally {
    await server.close();
  }
});

test('pipelined requests in one write are answered in order', async () => {
  const { server, port } = await start();
  try {
    const made = srs.forward('a@b.example');
    assert.ok(made.ok);
    const c = new Client(port);
    c.socket.write(Buffer.concat([writeNetstring(`srsdecode ${made.address}`), writeNetstring('srsdecode x@y'), writeNetstring(`srsdecode ${made.address}`)]));
    assert.deepEqual([await c.reply(), await c.reply(), await c.reply()], ['OK a@b.example', 'NOTFOUND ', 'OK a@b.example']);
    c.socket.destroy();
  } finally {
    await server.close();
  }
});

test('an oversized request is refused from its length alone, and the connection closed', async () => {
  const { server, port, events } = await start({ maxRequestBytes: 1024 });
  try {
    const c = new Client(port);
    c.socket.write('1025:');
    assert.equal(await c.reply(), 'PERM request too long: at most 1024 bytes');
    await c.closed;
    const d = new Client(port);
    d.socket.write('99999999999999999999');
    assert.match(await d.reply(), /^PERM request too long/);
    await d.closed;
    // A megabyte without a colon: refused after the length's digits, not buffered.
    const e = new Client(port);
    e.socket.write(Buffer.alloc(1 << 20, 0x31));
    assert.match(await e.reply(), /^PERM request too long/);
    await e.closed;
    assert.deepEqual(events.filter((x) => x === 'oversized').length, 3);
  } finally {
    await server.close();
  }
});

test('a malformed netstring gets PERM and the connection is closed', async () => {
  const { server, port, events } = await start();
  try {
    const c = new Client(port);
    c.socket.write('GET / HTTP/1.0\r\n\r\n');
    assert.equal(await c.reply(), 'PERM malformed netstring');
    await c.closed;
    const d = new Client(port);
    d.socket.write('5:hello!');
    assert.equal(await d.reply(), 'PERM malformed netstring');
    await d.closed;
    assert.equal(events.filter((x) => x === 'malformed').length, 2);
  } finally {
    await server.close();
  }
});

test('a slow client is closed at the timeout: idle, or trickling a request', async () => {
  const { server, port, events } = await start({ timeoutMs: 300 });
  try {
    const idle = new Client(port);
    const trickle = new Client(port);
    // "50:srsdecode xxx…,": one byte every 50 ms, never complete within 300 ms.
    const slow = Buffer.from(`50:srsdecode ${'x'.repeat(40)},`);
    let sent = 0;
    const timer = setInterval(() => trickle.socket.write(slow.subarray(sent, ++sent)), 50);
    try {
      await Promise.all([idle.closed, trickle.closed]);
    } finally {
      clearInterval(timer);
    }
    assert.equal(events.filter((x) => x === 'timeout').length, 2);
    while (server.connections > 0) await new Promise((r) => setTimeout(r, 10));
  } finally {
    await server.close();
  }
});

test('connections over the cap are closed at once, and the cap frees up', async () => {
  const { server, port, events, lines } = await start({ maxConnections: 2 });
  try {
    const a = new Client(port);
    const b = new Client(port);
    assert.equal(await a.ask('srsdecode x@y'), 'NOTFOUND ');
    assert.equal(await b.ask('srsdecode x@y'), 'NOTFOUND ');
    const c = new Client(port);
    await c.closed;
    assert.ok(events.includes('refused-connection'));
    assert.ok(lines.some((l) => l.includes('refused: 2 open (SRS_SOCKETMAP_MAX_CONNECTIONS)')));
    a.socket.destroy();
    await a.closed;
    while (server.connections > 1) await new Promise((r) => setTimeout(r, 10));
    const d = new Client(port);
    assert.equal(await d.ask('srsdecode x@y'), 'NOTFOUND ');
    b.socket.destroy();
    d.socket.destroy();
  } finally {
    await server.close();
  }
});

test('a client that never reads its replies: reading stops (bounded memory), and the timeout closes it', async () => {
  const { server, port, events } = await start({ maxWriteBytes: 4096, timeoutMs: 300 });
  try {
    const c = new Client(port);
    c.socket.pause();
    const request = writeNetstring(`srsdecode ${'x'.repeat(900)}@y`);
    // ~1 MB of requests whose replies are never read.
    c.socket.write(Buffer.concat(Array.from({ length: 1100 }, () => request)));
    // A paused client never sees the close; the server's side shows it.
    while (!events.includes('connection')) await new Promise((r) => setTimeout(r, 10));
    while (server.connections > 0) await new Promise((r) => setTimeout(r, 20));
    assert.ok(events.includes('timeout') || events.includes('write-overflow'), events.join(','));
    c.socket.destroy();
  } finally {
    await server.close();
  }
});
