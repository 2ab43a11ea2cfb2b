// Interoperation with postsrsd (the Debian package, 1.x: Postfix tcp_table ports for forward and
// reverse), the same secret on both sides: what postsrsd writes decodes in ours (the scheme and
// the srsdecode socketmap), what we write decodes in postsrsd; forged addresses fail in both.
// postsrsd runs as a private instance on loopback ports; the test is skipped when it is missing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Srs, SocketmapServer, srsDecodeLookup, readNetstring, writeNetstring } from '../../src/srs/index.js';
import { silentLogger } from '../../src/log/index.js';
import { freePort } from '../support/ports.js';
import { sleep } from '../support/wait.js';

const POSTSRSD = '/usr/sbin/postsrsd';
const skip = existsSync(POSTSRSD) ? false : `${POSTSRSD} not installed (apt-get install --no-install-recommends postsrsd)`;
const DOMAIN = 'srs.interop.test';
const SECRET = 'interop-shared-secret-0123456789';

/** One Postfix tcp_table request (`get KEY`), answered `200 VALUE` or `500 reason`. */
async function tcpTable(port: number, key: string): Promise<{ code: number; value: string }> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(`get ${key.replace(/[%\s]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}\n`);
  let text = '';
  socket.setEncoding('utf8');
  for await (const chunk of socket) {
    text += chunk as string;
    if (text.includes('\n')) break;
  }
  socket.destroy();
  const m = /^(\d{3}) (.*)\n/.exec(text);
  assert.ok(m, `tcp_table reply ${JSON.stringify(text)}`);
  return { code: Number(m[1]), value: decodeURIComponent(m[2]!) };
}

async function socketmapAsk(port: number, request: string): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(writeNetstring(request));
  let buffer = Buffer.alloc(0);
  for await (const chunk of socket) {
    buffer = Buffer.concat([buffer, chunk as Buffer]);
    const read = readNetstring(buffer, 10_000);
    if (read.kind === 'frame') {
      socket.destroy();
      return read.payload.toString('utf8');
    }
  }
  throw new Error('socketmap closed without a reply');
}

describe('SRS interoperation with postsrsd', { skip, timeout: 60_000 }, () => {
  let dir = '';
  let proc: ChildProcess | undefined;
  let forwardPort = 0;
  let reversePort = 0;
  let socketmap: SocketmapServer;
  let socketmapPort = 0;
  const srs = new Srs({ secrets: [SECRET], domain: DOMAIN, maxAgeDays: 21 });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sos-postsrsd-'));
    const secrets = join(dir, 'secrets');
    writeFileSync(secrets, `${SECRET}\n`, { mode: 0o600 });
    forwardPort = await freePort();
    reversePort = await freePort();
    proc = spawn(POSTSRSD, [`-s${secrets}`, `-d${DOMAIN}`, '-l127.0.0.1', `-f${forwardPort}`, `-r${reversePort}`, '-t10'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    proc.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    for (let i = 0; ; i++) {
      try {
        await tcpTable(forwardPort, 'probe@example.org');
        break;
      } catch (err) {
        if (i >= 50 || proc.exitCode !== null) throw new Error(`postsrsd did not start: ${output}`, { cause: err });
        await sleep(100);
      }
    }
    socketmap = new SocketmapServer({ lookup: srsDecodeLookup(srs, silentLogger()), logger: silentLogger() });
    socketmapPort = (await socketmap.listen('127.0.0.1', 0)).port;
  });

  after(async () => {
    await socketmap?.close();
    if (proc && proc.exitCode === null) {
      proc.kill('SIGTERM');
      await once(proc, 'exit');
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const senders = ['user@example.org', 'First.Last+tag=x@Example.ORG', 'SRS0=abcd=TT=orig.example=bob@fwd.example', 'SRS1=wxyz=fwd1.example==abcd=TT=orig.example=bob@fwd2.example'];

  test('postsrsd -> sos-milter: what postsrsd writes we write too, and decode (scheme and socketmap)', async () => {
    for (const sender of senders) {
      const theirs = await tcpTable(forwardPort, sender);
      assert.equal(theirs.code, 200, `${sender}: ${theirs.value}`);
      const ours = srs.forward(sender);
      assert.ok(ours.ok);
      assert.equal(ours.address, theirs.value, `same address for ${sender}`);
      const decoded = srs.reverse(theirs.value);
      assert.ok(decoded.ok, `${theirs.value}: ${decoded.ok ? '' : decoded.detail}`);
      if (!sender.startsWith('SRS')) {
        assert.equal(decoded.address, sender);
        assert.equal(await socketmapAsk(socketmapPort, `srsdecode ${theirs.value}`), `OK ${sender}`);
      }
    }
  });

  test('sos-milter -> postsrsd: what we write postsrsd decodes, also case-folded', async () => {
    for (const sender of senders) {
      const ours = srs.forward(sender);
      assert.ok(ours.ok);
      const back = await tcpTable(reversePort, ours.address);
      assert.equal(back.code, 200, `${ours.address}: ${back.value}`);
      const expected = srs.reverse(ours.address);
      assert.ok(expected.ok);
      assert.equal(back.value, expected.address);
      if (!sender.startsWith('SRS')) assert.equal(back.value, sender);
    }
    const lower = srs.forward('user@example.org');
    assert.ok(lower.ok);
    assert.equal((await tcpTable(reversePort, lower.address.toLowerCase())).value, 'user@example.org');
  });

  test('a forged address fails in both; another secret fails in both', async () => {
    const made = srs.forward('user@example.org');
    assert.ok(made.ok);
    const forged = made.address.replace(/^SRS0=(....)/, (_all, h: string) => `SRS0=${h === 'AAAA' ? 'BBBB' : 'AAAA'}`);
    assert.equal((await tcpTable(reversePort, forged)).code, 500);
    assert.equal(await socketmapAsk(socketmapPort, `srsdecode ${forged}`), 'NOTFOUND ');
    const stranger = new Srs({ secrets: ['some-other-secret-abcdefgh'], domain: DOMAIN, maxAgeDays: 21 }).forward('user@example.org');
    assert.ok(stranger.ok);
    assert.equal((await tcpTable(reversePort, stranger.address)).code, 500);
    assert.equal(srs.reverse(stranger.address).ok, false);
  });
});
