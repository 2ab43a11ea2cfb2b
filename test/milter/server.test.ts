import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  MilterServer,
  ProtoFlag,
  SocketBindError,
  Verdict,
  type MilterApplication,
  type MilterContext,
} from '../../src/milter/index.js';
import { MilterTestClient } from '../support/milter-client.js';
import { recordingLogger } from '../support/milter-server.js';
import { sleep } from '../support/wait.js';

async function withServer(app: MilterApplication, fn: (s: MilterServer) => Promise<void>, opts: Partial<ConstructorParameters<typeof MilterServer>[1]> = {}): Promise<void> {
  const server = new MilterServer(app, { socket: 'inet:0@127.0.0.1', ...opts });
  await server.listen();
  try {
    await fn(server);
  } finally {
    await server.close({ deadlineMs: 500 });
  }
}

test('full transaction: callbacks, macros per stage, edits at end of message', async () => {
  const events: string[] = [];
  const app: MilterApplication = {
    actions: ['ADDHDRS', 'CHGHDRS', 'ADDRCPT', 'DELRCPT', 'CHGFROM', 'CHGBODY', 'QUARANTINE', 'ADDRCPT_PAR'],
    macros: { connect: ['{client_addr}'], envrcpt: ['{rcpt_host}', 'i'], eom: ['i'] },
    async connect(ctx, info) {
      events.push(`connect ${info.hostname} ${info.family} ${info.address} ${info.port} ${ctx.macro('client_addr')}`);
    },
    async helo(ctx, name) {
      events.push(`helo ${name} ${ctx.helo}`);
    },
    async envfrom(ctx, sender, args) {
      ctx.state['from'] = sender;
      events.push(`from ${sender} ${args.join(',')} ${ctx.macro('{mail_addr}')}`);
    },
    async envrcpt(ctx, rcpt) {
      events.push(`rcpt ${rcpt} ${ctx.macro('rcpt_host')} ${ctx.macro('i') ?? '-'}`);
      if (rcpt === '<no@example.net>') return Verdict.reply(550, '5.1.1', 'no such user');
    },
    async data() {
      events.push('data');
    },
    async header(_ctx, name, value) {
      events.push(`header ${name}=${value}`);
    },
    async eoh() {
      events.push('eoh');
    },
    async body(_ctx, chunk) {
      events.push(`body ${chunk.length}`);
    },
    async eom(ctx) {
      events.push(`eom ${ctx.macro('i')} ${ctx.state['from']}`);
      ctx.progress();
      ctx.addHeader('X-Checked', 'yes');
      ctx.insertHeader(0, 'X-Top', 'first');
      ctx.changeHeader('Subject', 1, 'changed');
      ctx.addRecipient('<add@example.org>');
      ctx.addRecipient('<dsn@example.org>', 'NOTIFY=NEVER');
      ctx.deleteRecipient('<bcc@example.org>');
      ctx.changeSender('<bounce@example.org>');
      ctx.quarantine('held for review');
      ctx.replaceBody('new body\r\n');
      return Verdict.continue();
    },
    async close() {
      events.push('close');
    },
  };
  await withServer(app, async (server) => {
    const c = await MilterTestClient.connect(server.address()!);
    const opt = await c.negotiate();
    assert.equal(opt.version, 6);
    assert.equal(opt.actions, 0x1ff);
    assert.deepEqual(opt.symbolLists.map((l) => l.stage), [0, 3, 5]);
    assert.deepEqual((await c.connectCmd('[192.0.2.7]', '192.0.2.7', 4000, { j: 'mx', '{client_addr}': '192.0.2.7' })).final, { type: 'continue' });
    assert.deepEqual((await c.helo('client.example', {})).final, { type: 'continue' });
    assert.deepEqual((await c.mail('<a@example.org>', ['SIZE=100'], { '{mail_addr}': 'a@example.org' })).final, { type: 'continue' });
    assert.deepEqual((await c.rcpt('<b@example.net>', [], { '{rcpt_host}': 'example.net' })).final, { type: 'continue' });
    const rej = await c.rcpt('<no@example.net>', [], { i: 'Q1', '{rcpt_host}': 'example.net' });
    assert.deepEqual(rej.final, { type: 'replyCode', text: '550 5.1.1 no such user' });
    assert.deepEqual((await c.data({ i: 'Q1' })).final, { type: 'continue' });
    await c.header('Subject', 'hello', { i: 'Q1' });
    await c.header('X-Empty', '', { i: 'Q1' });
    await c.eoh({ i: 'Q1' });
    await c.body('hello\r\n', { i: 'Q1' });
    const eom = await c.eom({ i: 'Q1' });
    assert.deepEqual(eom.final, { type: 'continue' });
    assert.deepEqual(
      eom.modifications.map((m) => m.type),
      ['progress', 'replBody', 'addHeader', 'insHeader', 'chgHeader', 'addRcpt', 'addRcptPar', 'delRcpt', 'chgFrom', 'quarantine'],
    );
    assert.deepEqual(eom.modifications[6], { type: 'addRcptPar', rcpt: '<dsn@example.org>', args: 'NOTIFY=NEVER' });
    c.abort();
    c.quit();
    await c.waitClosed();
  });
  assert.deepEqual(events, [
    'connect [192.0.2.7] inet 192.0.2.7 4000 192.0.2.7',
    'helo client.example client.example',
    'from <a@example.org> SIZE=100 a@example.org',
    'rcpt <b@example.net> example.net -',
    'rcpt <no@example.net> example.net Q1',
    'data',
    'header Subject=hello',
    'header X-Empty=',
    'eoh',
    'body 7',
    'eom Q1 <a@example.org>',
    'close',
  ]);
});

test('several messages per connection, ABORT handling and per-message state', async () => {
  const seen: string[] = [];
  const app: MilterApplication = {
    async envfrom(ctx, sender) {
      seen.push(`from ${sender} state=${JSON.stringify(ctx.state)}`);
      ctx.state['n'] = sender;
    },
    async eom(ctx) {
      seen.push(`eom ${String(ctx.state['n'])}`);
    },
    async abort(ctx) {
      seen.push(`abort ${String(ctx.state['n'])}`);
    },
    async close() {
      seen.push('close');
    },
  };
  await withServer(app, async (server) => {
    const c = await MilterTestClient.connect(server.address()!);
    await c.negotiate();
    await c.connectCmd('h', '127.0.0.1', 1);
    for (let i = 1; i <= 3; i++) {
      await c.mail(`<m${i}@x>`);
      await c.rcpt('<r@y>');
      await c.eom();
      c.abort(); // Postfix sends ABORT after every message: must be a silent no-op
      c.abort();
      await c.expectSilence(20);
    }
    await c.mail('<dropped@x>');
    c.abort();
    await c.mail('<m4@x>');
    await c.eom();
    c.quit();
    await c.waitClosed();
    assert.equal(server.stats().messages, 4);
  });
  assert.deepEqual(seen, [
    'from <m1@x> state={}',
    'eom <m1@x>',
    'from <m2@x> state={}',
    'eom <m2@x>',
    'from <m3@x> state={}',
    'eom <m3@x>',
    'from <dropped@x> state={}',
    'abort <dropped@x>',
    'from <m4@x> state={}',
    'eom <m4@x>',
    'close',
  ]);
});

test('QUIT_NC ends the SMTP session but keeps the socket for a new CONNECT', async () => {
  const seen: string[] = [];
  const app: MilterApplication = {
    async connect(ctx, info) {
      seen.push(`connect ${info.hostname} helo=${ctx.helo}`);
    },
    async helo(_ctx, name) {
      seen.push(`helo ${name}`);
    },
    async abort() {
      seen.push('abort');
    },
    async close(ctx) {
      seen.push(`close ${ctx.connection?.hostname}`);
    },
  };
  await withServer(app, async (server) => {
    const c = await MilterTestClient.connect(server.address()!);
    await c.negotiate();
    await c.connectCmd('first', '127.0.0.1', 1);
    await c.helo('one');
    await c.mail('<a@x>');
    c.quitNc();
    await c.expectSilence(20);
    assert.equal(c.closed, false);
    assert.deepEqual((await c.connectCmd('second', '127.0.0.2', 2)).final, { type: 'continue' });
    c.quit();
    await c.waitClosed();
  });
  assert.deepEqual(seen, ['connect first helo=undefined', 'helo one', 'abort', 'close first', 'connect second helo=undefined', 'close second']);
});

test('verdicts, thrown callbacks, bad return values and misuse of the context', async () => {
  const log = recordingLogger();
  const app: MilterApplication = {
    actions: ['ADDHDRS'],
    async helo(_ctx, name) {
      if (name === 'discard') return Verdict.discard();
      if (name === 'throw') throw new Error('boom');
      if (name === 'junk') return 'junk' as unknown as Verdict;
      if (name === 'early-edit') (_ctx as MilterContext).addHeader('X', 'y');
      return Verdict.accept();
    },
    async envfrom(_ctx, sender) {
      return sender === '<t@x>' ? Verdict.tempfail() : Verdict.reject();
    },
    async eom(ctx) {
      ctx.addHeader('X-Dropped', 'because rejected');
      return Verdict.reply(451, '4.7.1', 'later');
    },
  };
  await withServer(
    app,
    async (server) => {
      const c = await MilterTestClient.connect(server.address()!);
      await c.negotiate();
      assert.deepEqual((await c.helo('discard')).final, { type: 'continue' });
      assert.deepEqual((await c.helo('throw')).final, { type: 'tempfail' });
      assert.deepEqual((await c.helo('junk')).final, { type: 'tempfail' });
      assert.deepEqual((await c.helo('early-edit')).final, { type: 'tempfail' });
      assert.deepEqual((await c.helo('fine')).final, { type: 'accept' });
      assert.deepEqual((await c.mail('<t@x>')).final, { type: 'tempfail' });
      assert.deepEqual((await c.mail('<r@x>')).final, { type: 'reject' });
      const eom = await c.eom();
      assert.deepEqual(eom, { modifications: [], final: { type: 'replyCode', text: '451 4.7.1 later' } });
      c.quit();
      await c.waitClosed();
      assert.equal(server.stats().callbackErrors, 3);
    },
    { logger: log },
  );
  assert.ok(log.lines.some((l) => l.level === 'error' && /tempfail/.test(l.msg)));
  assert.ok(log.lines.some((l) => l.level === 'warn' && /discard is not valid/.test(l.msg)));
});

test('edits need a negotiated action', async () => {
  let err: unknown;
  const app: MilterApplication = {
    actions: ['ADDHDRS'],
    async eom(ctx) {
      try {
        ctx.replaceBody('x');
      } catch (e) {
        err = e;
      }
    },
  };
  await withServer(app, async (server) => {
    const c = await MilterTestClient.connect(server.address()!);
    await c.negotiate();
    assert.deepEqual((await c.eom()).final, { type: 'continue' });
    c.close();
  });
  assert.equal((err as { code?: string }).code, 'ACTION_NOT_NEGOTIATED');
});

test('no-reply callbacks are not answered; commands the app skips are answered c', async () => {
  const headers: string[] = [];
  const app: MilterApplication = {
    noReply: ['header'],
    async header(_ctx, name) {
      headers.push(name);
      return name === 'X-Reject' ? Verdict.reject() : undefined;
    },
  };
  await withServer(app, async (server) => {
    const c = await MilterTestClient.connect(server.address()!);
    const opt = await c.negotiate();
    assert.equal(opt.protocol & ProtoFlag.NR_HDR, ProtoFlag.NR_HDR);
    c.send({ type: 'header', name: 'A', value: '1' });
    c.send({ type: 'header', name: 'X-Reject', value: '1' });
    await c.expectSilence(50);
    // An MTA that ignores the NO* request still gets answers.
    assert.deepEqual((await c.helo('x')).final, { type: 'continue' });
    // No unknown callback and NR_UNKN offered: the server asked not to be waited for.
    assert.equal(opt.protocol & ProtoFlag.NR_UNKN, 0, 'NOUNKNOWN is preferred to NR_UNKN');
    assert.deepEqual((await c.unknown('FOO')).final, { type: 'continue' });
    c.close();
  });
  assert.deepEqual(headers, ['A', 'X-Reject']);
});

test('callbacks are serialised per connection and connections do not block each other', async () => {
  const order: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const app: MilterApplication = {
    async helo(_ctx, name) {
      order.push(`start ${name}`);
      if (name === 'slow') await gate;
      order.push(`end ${name}`);
    },
  };
  await withServer(app, async (server) => {
    const a = await MilterTestClient.connect(server.address()!);
    const b = await MilterTestClient.connect(server.address()!);
    await a.negotiate();
    await b.negotiate();
    // Pipelined on connection a: the second must not start before the first ends.
    a.send({ type: 'helo', name: 'slow' });
    a.send({ type: 'helo', name: 'after' });
    assert.deepEqual((await b.helo('other')).final, { type: 'continue' });
    release();
    assert.deepEqual((await a.readReply()).final, { type: 'continue' });
    assert.deepEqual((await a.readReply()).final, { type: 'continue' });
    a.close();
    b.close();
  });
  assert.deepEqual(order, ['start slow', 'start other', 'end other', 'end slow', 'start after', 'end after']);
});

test('UNIX socket lifecycle: parent folder, stale file, mode, removal on close', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'milter-test-'));
  try {
    const path = join(dir, 'sub', 'milter.sock');
    const server = new MilterServer({}, { socket: `unix:${path}`, socketMode: 0o660 });
    await server.listen();
    assert.equal((await stat(path)).mode & 0o777, 0o660);
    const c = await MilterTestClient.connect({ path });
    await c.negotiate();
    assert.deepEqual((await c.helo('x')).final, { type: 'continue' });
    c.close();
    // A second server on the same live path is refused.
    await assert.rejects(new MilterServer({}, { socket: `unix:${path}` }).listen(), (e: unknown) => e instanceof SocketBindError && e.code === 'SOCKET_IN_USE');
    await server.close({ deadlineMs: 200 });
    await assert.rejects(stat(path), /ENOENT/);

    // A regular file at the path is never removed.
    const file = join(dir, 'not-a-socket');
    await writeFile(file, 'data');
    await assert.rejects(new MilterServer({}, { socket: file }).listen(), (e: unknown) => e instanceof SocketBindError && e.code === 'NOT_A_SOCKET');
    assert.equal((await stat(file)).isFile(), true);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a stale socket file left by a dead process is removed before binding', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'milter-test-'));
  try {
    const path = join(dir, 'stale.sock');
    // A child process binds the socket and is killed, leaving the file behind.
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    assert.equal(r.signal, 'SIGKILL');
    assert.equal((await stat(path)).isSocket(), true);
    const server = new MilterServer({}, { socket: `local:${path}` });
    await server.listen();
    assert.equal((await stat(path)).mode & 0o777, 0o666);
    const c = await MilterTestClient.connect({ path });
    await c.negotiate();
    c.close();
    await server.close({ deadlineMs: 200 });
    await assert.rejects(stat(path), /ENOENT/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('maximum concurrent connections: excess connections are closed and logged', async () => {
  const log = recordingLogger();
  await withServer(
    {},
    async (server) => {
      const a = await MilterTestClient.connect(server.address()!);
      const b = await MilterTestClient.connect(server.address()!);
      await a.negotiate();
      await b.negotiate();
      const c = await MilterTestClient.connect(server.address()!);
      await c.waitClosed();
      assert.equal(server.stats().connectionsRefused, 1);
      assert.deepEqual((await a.helo('still fine')).final, { type: 'continue' });
      a.close();
      b.close();
    },
    { maxConnections: 2, logger: log },
  );
  assert.ok(log.lines.some((l) => l.level === 'warn' && /too many connections/.test(l.msg)));
});

test('drain: open connections are served message after message until the MTA quits; none is closed early', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const app: MilterApplication = {
    async eom() {
      await gate;
      return Verdict.accept();
    },
  };
  const server = new MilterServer(app, { socket: 'inet:0@127.0.0.1' });
  await server.listen();
  const busy = await MilterTestClient.connect(server.address()!);
  const idle = await MilterTestClient.connect(server.address()!);
  await busy.negotiate();
  await idle.negotiate();
  await busy.mail('<a@x>');
  busy.send({ type: 'eob', data: Buffer.alloc(0) });
  await sleep(20);
  let closed = false;
  const closing = server.close({ deadlineMs: 5000 }).then(() => (closed = true));
  // Between messages is no reason to close: Postfix would apply milter_default_action to the rest of the session.
  await idle.expectSilence(200);
  assert.equal(idle.closed, false);
  assert.equal(busy.closed, false);
  release();
  assert.deepEqual((await busy.readReply()).final, { type: 'accept' });
  // Both go on with further messages while the server drains.
  await idle.mail('<b@x>');
  assert.deepEqual((await idle.eom()).final, { type: 'accept' });
  await busy.mail('<c@x>');
  assert.deepEqual((await busy.eom()).final, { type: 'accept' });
  assert.equal(closed, false);
  busy.quit();
  idle.quit();
  await busy.waitClosed();
  await idle.waitClosed();
  await closing;
  assert.equal(server.stats().connectionsOpen, 0);
  assert.equal(server.stats().shutdownCloses, 0);
});

test('graceful shutdown cuts connections at the deadline', async () => {
  const app: MilterApplication = { async eom() { await sleep(2000); } };
  const logger = recordingLogger();
  const server = new MilterServer(app, { socket: 'inet:0@127.0.0.1', logger });
  await server.listen();
  const c = await MilterTestClient.connect(server.address()!);
  const idle = await MilterTestClient.connect(server.address()!);
  await c.negotiate();
  await idle.negotiate();
  await c.mail('<a@x>');
  c.send({ type: 'eob', data: Buffer.alloc(0) });
  await sleep(20);
  await server.close({ deadlineMs: 100 });
  await c.waitClosed();
  await idle.waitClosed();
  assert.equal(server.stats().shutdownCloses, 2);
  const line = logger.lines.find((l) => /shutdown deadline reached/.test(l.msg));
  assert.ok(line, 'the deadline is logged');
  assert.deepEqual({ ...(line.obj as object) }, { closed: 2, inMessage: 1, idle: 1, deadlineMs: 100 });
});

test('IPv6 loopback listener works', async (t) => {
  const server = new MilterServer({}, { socket: 'inet6:0@[::1]' });
  try {
    await server.listen();
  } catch (err) {
    t.skip(`no IPv6 loopback: ${(err as Error).message}`);
    return;
  }
  const a = server.address()!;
  assert.equal(a.kind === 'inet' && a.family, 6);
  const c = await MilterTestClient.connect(a);
  await c.negotiate();
  c.close();
  await server.close({ deadlineMs: 200 });
});
