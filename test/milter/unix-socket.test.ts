// The stale-socket probe: only a refused connect (or a file gone meanwhile) proves a socket file
// stale. A live listener whose backlog is full answers EAGAIN and must keep its file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SocketBindError } from '../../src/milter/errors.js';
import { prepareUnixSocketPath, probeUnixSocket } from '../../src/milter/unix-socket.js';
import { stuckListener } from '../support/stuck-listener.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'milter-sock-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('a live listener with a full backlog (EAGAIN) keeps its socket file: start-up stops with a clear error', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'busy.sock');
    const { child, held } = await stuckListener(path);
    try {
      const ino = (await stat(path)).ino;
      assert.ok(held.length >= 1, 'some connects were queued before the backlog filled');
      const probe = await probeUnixSocket(path);
      assert.equal(probe.state === 'unknown' && probe.code, 'EAGAIN', JSON.stringify(probe));
      await assert.rejects(prepareUnixSocketPath(path), (e: unknown) => {
        assert.ok(e instanceof SocketBindError);
        assert.equal(e.code, 'SOCKET_PROBE_FAILED');
        assert.match(e.message, /EAGAIN/);
        assert.match(e.message, /backlog is full/);
        assert.ok(e.message.includes(path), e.message);
        return true;
      });
      const after = await stat(path);
      assert.equal(after.isSocket(), true, 'the live socket file is still there');
      assert.equal(after.ino, ino, 'and it is the same file');
    } finally {
      for (const c of held) c.destroy();
      child.kill('SIGKILL');
    }
  });
});

test('any other probe error (EACCES, ETIMEDOUT, ...) keeps the file too', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'other.sock');
    const server = createServer();
    await new Promise<void>((r) => server.listen(path, r));
    try {
      for (const code of ['EACCES', 'ETIMEDOUT', 'EPERM']) {
        const probe = () => Promise.resolve({ state: 'unknown' as const, code, message: `connect ${code} ${path}` });
        await assert.rejects(prepareUnixSocketPath(path, { probe }), (e: unknown) => e instanceof SocketBindError && e.code === 'SOCKET_PROBE_FAILED' && e.message.includes(code));
        assert.equal((await stat(path)).isSocket(), true);
      }
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

test('a live listener that accepts: SOCKET_IN_USE, file kept', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'live.sock');
    const server = createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(path, r));
    try {
      assert.deepEqual(await probeUnixSocket(path), { state: 'live' });
      await assert.rejects(prepareUnixSocketPath(path), (e: unknown) => e instanceof SocketBindError && e.code === 'SOCKET_IN_USE');
      assert.equal((await stat(path)).isSocket(), true);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

test('a socket file nobody listens on (ECONNREFUSED) is stale and removed', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'stale.sock');
    const r = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    assert.equal(r.signal, 'SIGKILL');
    assert.equal((await stat(path)).isSocket(), true);
    assert.deepEqual(await probeUnixSocket(path), { state: 'stale' });
    await prepareUnixSocketPath(path);
    await assert.rejects(stat(path), /ENOENT/);
  });
});

test('a file that vanishes between the check and the removal is no error (ENOENT counts as stale)', async () => {
  await withDir(async (dir) => {
    const path = join(dir, 'gone.sock');
    const r = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    assert.equal(r.signal, 'SIGKILL');
    const probe = async (p: string) => {
      await rm(p);
      return probeUnixSocket(p);
    };
    await prepareUnixSocketPath(path, { probe });
    await assert.rejects(stat(path), /ENOENT/);
  });
});
