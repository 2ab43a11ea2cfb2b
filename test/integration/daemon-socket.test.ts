// The daemon's start-up against a socket file another process holds: a live daemon whose backlog
// is full answers EAGAIN; the second daemon must stop (exit 1, naming MILTER_SOCKET and the path)
// and leave the live one's socket file alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemonProcess } from '../support/daemon-process.js';
import { freePort } from '../support/ports.js';
import { stuckListener } from '../support/stuck-listener.js';

test('a second daemon stops at start-up when the socket answers EAGAIN (live listener, full backlog), and leaves the file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sos-socket-'));
  const path = join(dir, 'busy.sock');
  const { child, held } = await stuckListener(path);
  try {
    const ino = (await stat(path)).ino;
    const daemon = await startDaemonProcess({ MILTER_SOCKET: `unix:${path}`, DNS_SERVERS: `127.0.0.1:${await freePort()}` }, 15_000, { awaitStartup: false });
    try {
      assert.equal(await daemon.waitExit(15_000), 1, daemon.tail());
      const stderr = daemon.other.join('');
      assert.match(stderr, /cannot start: cannot listen on MILTER_SOCKET=unix:/);
      assert.ok(stderr.includes(path), stderr);
      assert.match(stderr, /EAGAIN/);
      assert.match(stderr, /refusing to remove it/);
      const after = await stat(path);
      assert.equal(after.isSocket(), true, 'the live socket file is still there');
      assert.equal(after.ino, ino);
    } finally {
      await daemon.kill();
    }
  } finally {
    for (const c of held) c.destroy();
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
});
