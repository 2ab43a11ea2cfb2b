// The srsdecode socketmap's bounds through the daemon process (a decode-only instance: test
// mode with SRS_SOCKETMAP_LISTEN): an oversized request, a malformed one, a slow client, one
// connection over SRS_SOCKETMAP_MAX_CONNECTIONS: each gets a clear answer or close and a log
// line, and the daemon goes on decoding, with its RSS bounded.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { Srs, readNetstring, writeNetstring } from '../../src/srs/index.js';
import { startDaemonProcess, type DaemonProcess } from '../support/daemon-process.js';
import { freePort } from '../support/ports.js';

const SECRET = 'daemon-socketmap-secret-0123';
const srs = new Srs({ secrets: [SECRET], domain: 'bounce.daemon.test', maxAgeDays: 21 });
let daemon: DaemonProcess;
let port = 0;

before(async () => {
  port = await freePort();
  daemon = await startDaemonProcess({
    MILTER_SOCKET: 'inet:0@127.0.0.1',
    SRS_DOMAIN: 'bounce.daemon.test',
    SRS_SECRETS: SECRET,
    SRS_SOCKETMAP_LISTEN: `127.0.0.1:${port}`,
    SRS_SOCKETMAP_MAX_CONNECTIONS: '3',
    SRS_SOCKETMAP_TIMEOUT_MS: '500',
    LOG_LEVEL: 'debug',
  });
});

after(async () => {
  await daemon?.kill();
});

/** Sends `data`, returns the netstring replies received until the server closes (or `untilReplies`). */
async function exchange(data: Buffer | string, untilReplies = Infinity): Promise<{ replies: string[]; closed: boolean }> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(data);
  let buffer = Buffer.alloc(0);
  const replies: string[] = [];
  let closed = false;
  socket.on('error', () => {});
  await new Promise<void>((resolve) => {
    socket.on('data', (d: Buffer) => {
      buffer = Buffer.concat([buffer, d]);
      for (let r = readNetstring(buffer, 100_000); r.kind === 'frame'; r = readNetstring(buffer, 100_000)) {
        replies.push(r.payload.toString('utf8'));
        buffer = buffer.subarray(r.consumed);
      }
      if (replies.length >= untilReplies) resolve();
    });
    socket.on('close', () => {
      closed = true;
      resolve();
    });
  });
  socket.destroy();
  return { replies, closed };
}

test('decodes a valid address; refuses forged and malformed with NOTFOUND', async () => {
  const made = srs.forward('someone@customer.test');
  assert.ok(made.ok);
  const { replies } = await exchange(Buffer.concat([writeNetstring(`srsdecode ${made.address}`), writeNetstring(`srsdecode ${made.address.replace(/^SRS0=..../, 'SRS0=AAAA')}`), writeNetstring('srsdecode SRS0=x@bounce.daemon.test')]), 3);
  assert.deepEqual(replies, ['OK someone@customer.test', 'NOTFOUND ', 'NOTFOUND ']);
});

test('an oversized request and a malformed one: PERM, closed, logged; the daemon goes on', async () => {
  const big = await exchange(`5000000:${'x'.repeat(100_000)}`);
  const long = await exchange(`2000:${'x'.repeat(2000)},`);
  assert.deepEqual(long, { replies: ['PERM request too long: at most 1024 bytes'], closed: true });
  assert.deepEqual(big, { replies: ['PERM request too long: at most 1024 bytes'], closed: true });
  const bad = await exchange('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.deepEqual(bad, { replies: ['PERM malformed netstring'], closed: true });
  await daemon.waitFor((l) => typeof l.msg === 'string' && l.msg.includes('over 1024; closing the connection'), 2000, 'the oversized line');
  await daemon.waitFor((l) => typeof l.msg === 'string' && l.msg.includes('malformed netstring'), 2000, 'the malformed line');
});

test('a slow client is closed at SRS_SOCKETMAP_TIMEOUT_MS, one over the cap at once', async () => {
  const slow = await exchange('20:srsdecode a');
  assert.deepEqual(slow, { replies: [], closed: true });
  await daemon.waitFor((l) => typeof l.msg === 'string' && l.msg.includes('no complete request within 500 ms'), 2000, 'the timeout line');
  const held = await Promise.all([0, 1, 2].map(async () => {
    const s = net.connect(port, '127.0.0.1');
    await once(s, 'connect');
    return s;
  }));
  const over = await exchange(writeNetstring('srsdecode x@y'));
  assert.deepEqual(over, { replies: [], closed: true });
  await daemon.waitFor((l) => typeof l.msg === 'string' && l.msg.includes('refused: 3 open (SRS_SOCKETMAP_MAX_CONNECTIONS)'), 2000, 'the cap line');
  for (const s of held) s.destroy();
  const made = srs.forward('after@customer.test');
  assert.ok(made.ok);
  // The held connections time out or close; then the daemon answers again.
  let answered: string[] = [];
  for (let i = 0; i < 20 && answered[0] !== 'OK after@customer.test'; i++) {
    answered = (await exchange(writeNetstring(`srsdecode ${made.address}`), 1)).replies;
    if (answered[0] !== 'OK after@customer.test') await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(answered, ['OK after@customer.test']);
  assert.ok(daemon.rssKiB() < 200 * 1024, `RSS ${daemon.rssKiB()} KiB`);
});
