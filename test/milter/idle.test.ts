// The idle timeout through a real loopback server: silence closes a connection, and only
// silence: a peer that keeps sending, or one waiting for a slow callback, stays connected.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MilterServer, Verdict, type MilterApplication } from '../../src/milter/index.js';
import { MilterTestClient } from '../support/milter-client.js';
import { recordingLogger, withServer } from '../support/milter-server.js';
import { sleep } from '../support/wait.js';

const IDLE_LINE = 'milter connection idle too long, closing';

const quickApp: MilterApplication = {
  async eom() {
    return Verdict.accept();
  },
};

test('a silent connection is closed once the idle timeout has passed, not before', async () => {
  await withServer(quickApp, { idleTimeoutMs: 300 }, async (server, log) => {
    const c = await MilterTestClient.connect(server.address()!);
    // Taken before the server's last read and write on this connection: its silence starts later.
    const start = performance.now();
    await c.negotiate();
    await sleep(250 - (performance.now() - start));
    assert.equal(c.closed, false, 'open 250 ms into a 300 ms idle timeout');
    await c.waitClosed(1500);
    const silentMs = performance.now() - start;
    assert.ok(silentMs >= 300, `closed after ${silentMs} ms of silence`);
    assert.equal(server.stats().idleTimeouts, 1);
    assert.equal(server.stats().connectionsOpen, 0);
    const lines = log.lines.filter((l) => l.msg === IDLE_LINE);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.level, 'warn');
    assert.deepEqual(lines[0]!.obj, { conn: 'm1', idleMs: 300 });
  });
});

test('a connection that keeps sending is not idle; a silent one beside it is closed', async () => {
  await withServer(quickApp, { idleTimeoutMs: 400 }, async (server, log) => {
    const chatty = await MilterTestClient.connect(server.address()!);
    const silent = await MilterTestClient.connect(server.address()!);
    await chatty.negotiate();
    await silent.negotiate();
    // A macro packet gets no reply: only our reads keep this connection alive, three timeouts long.
    const started = performance.now();
    while (performance.now() - started < 1200) {
      chatty.sendMacros('helo', { j: 'mx.example' });
      await sleep(100);
    }
    await silent.waitClosed(1500);
    assert.equal(chatty.closed, false);
    assert.deepEqual((await chatty.mail('<a@example.org>')).final, { type: 'continue' });
    assert.deepEqual((await chatty.eom()).final, { type: 'accept' });
    assert.equal(server.stats().idleTimeouts, 1);
    assert.deepEqual(log.lines.filter((l) => l.msg === IDLE_LINE).map((l) => l.obj['conn']), ['m2']);
    chatty.quit();
    await chatty.waitClosed();
  });
});

test('a connection waiting for a callback longer than the idle timeout is not idle, and gets its reply', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const app: MilterApplication = {
    async envfrom() {
      await gate;
      return Verdict.continue();
    },
  };
  await withServer(app, { idleTimeoutMs: 300 }, async (server) => {
    const c = await MilterTestClient.connect(server.address()!);
    await c.negotiate();
    const reply = c.mail('<slow@example.org>');
    await sleep(800);
    assert.equal(c.closed, false, 'not closed while the application works');
    release();
    assert.deepEqual((await reply).final, { type: 'continue' });
    // Our reply starts the peer's turn: it has the whole idle timeout to answer.
    await sleep(150);
    assert.deepEqual((await c.rcpt('<r@example.org>')).final, { type: 'continue' });
    assert.equal(server.stats().idleTimeouts, 0);
    c.quit();
    await c.waitClosed();
  });
});

test('during a drain an idle connection is still closed by the idle timeout, not held to the deadline', async () => {
  const logger = recordingLogger();
  const server = new MilterServer(quickApp, { socket: 'inet:0@127.0.0.1', logger, idleTimeoutMs: 300 });
  await server.listen();
  const c = await MilterTestClient.connect(server.address()!);
  await c.negotiate();
  const closing = server.close({ deadlineMs: 10_000 });
  await c.waitClosed(2000);
  await closing;
  assert.equal(server.stats().idleTimeouts, 1);
  assert.equal(server.stats().shutdownCloses, 0);
});
