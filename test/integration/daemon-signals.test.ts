// Signals through the real daemon process on a UNIX socket: SIGHUP is logged and ignored (Node's
// default would end the process with 129, silently, leaving the socket file behind); the daemon
// goes on serving, and SIGTERM still stops it with exit 0 and removes the socket file.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemonProcess, type DaemonProcess } from '../support/daemon-process.js';
import { MilterTestClient } from '../support/milter-client.js';
import { freePort } from '../support/ports.js';

let dir: string;
const daemons: DaemonProcess[] = [];

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sos-signals-'));
});

after(async () => {
  for (const d of daemons) await d.kill();
  rmSync(dir, { recursive: true, force: true });
});

test('SIGHUP is logged and ignored: the daemon keeps serving; SIGTERM then exits 0 and removes the socket', async () => {
  const socket = join(dir, 'hup.sock');
  // No message here needs DNS (the null sender is not judged); the port only keeps resolv.conf out of it.
  const daemon = await startDaemonProcess({ MILTER_SOCKET: `unix:${socket}`, DNS_SERVERS: `127.0.0.1:${await freePort()}`, LOG_LEVEL: 'info' });
  daemons.push(daemon);

  // A session open across the signal, and a new one after it: both are served.
  const open = await MilterTestClient.connect({ path: socket });
  await open.openSession();

  daemon.proc.kill('SIGHUP');
  const line = await daemon.waitFor((l) => l.msg?.startsWith('SIGHUP ignored') === true, 5000, 'the SIGHUP line');
  assert.equal(line['level'], 'info', JSON.stringify(line));
  assert.equal(line['signal'], 'SIGHUP');
  assert.equal(await daemon.waitExit(300), 'hung', `the daemon exited on SIGHUP\n${daemon.tail()}`);
  assert.equal(statSync(socket).isSocket(), true, 'the socket file is still there');

  assert.deepEqual(await open.message('<>', 'HUP1'), { type: 'continue' });
  const fresh = await MilterTestClient.connect({ path: socket });
  await fresh.openSession();
  assert.deepEqual(await fresh.message('<>', 'HUP2'), { type: 'continue' });
  open.quit();
  fresh.quit();
  await open.waitClosed();
  await fresh.waitClosed();

  daemon.proc.kill('SIGTERM');
  assert.equal(await daemon.waitExit(10_000), 0, daemon.tail());
  assert.equal(existsSync(socket), false, 'the socket file is removed on SIGTERM');
  assert.ok(daemon.lines.some((l) => l.msg === 'signal received' && l['signal'] === 'SIGTERM'), daemon.tail());
});
