// SMFIR_PROGRESS while the reply to end of message is pending: sent every interval until the
// reply, never after it or after the connection ended, skipped while the peer has not read
// what was sent, and never at other stages (Sendmail reads progress only after end of message).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MilterSession, type SessionCounters, type SessionIO } from '../../src/milter/session.js';
import { SILENT_LOGGER, Verdict, type MilterApplication } from '../../src/milter/index.js';
import { encodeCommand, decodeResponse, type MtaCommand } from '../support/milter-codec.js';
import { ManualClock } from '../support/manual-clock.js';
import { MilterTestClient, POSTFIX_OFFER } from '../support/milter-client.js';
import { withServer } from '../support/milter-server.js';
import { sleep } from '../support/wait.js';

const INTERVAL = 5000;

/** An answer the test gives when it likes. */
function deferred(): { promise: Promise<Verdict>; resolve: (v: Verdict) => void } {
  let resolve!: (v: Verdict) => void;
  const promise = new Promise<Verdict>((r) => (resolve = r));
  return { promise, resolve };
}

/** Lets the promise callbacks of a settled callback run. */
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

interface Harness {
  session: MilterSession;
  clock: ManualClock;
  counters: SessionCounters;
  /** Response types written, in order ('O' for the negotiation reply). */
  written: string[];
  backlogged: { now: boolean };
  ended: { now: boolean };
  feed(...cmds: MtaCommand[]): void;
}

function harness(app: MilterApplication, progressIntervalMs: number | undefined = INTERVAL): Harness {
  const clock = new ManualClock();
  const written: string[] = [];
  const backlogged = { now: false };
  const ended = { now: false };
  const record = (p: Buffer): void => {
    assert.equal(ended.now, false, 'nothing is written after the transport was told to end');
    const r = decodeResponse(p[4]!, p.subarray(5));
    written.push(r.type);
  };
  const io: SessionIO = {
    write: record,
    writeMany: (ps) => ps.forEach(record),
    end: () => (ended.now = true),
    backlogged: () => backlogged.now,
  };
  const counters: SessionCounters = { protocolErrors: 0, messages: 0, callbackErrors: 0, queueOverflows: 0, progressPackets: 0 };
  const session = new MilterSession(io, {
    id: 'p1',
    app,
    logger: SILENT_LOGGER,
    maxPayload: 65535,
    symbolLists: [],
    counters,
    clock,
    ...(progressIntervalMs === undefined ? {} : { progressIntervalMs }),
  });
  return {
    session,
    clock,
    counters,
    written,
    backlogged,
    ended,
    feed: (...cmds) => session.feed(Buffer.concat(cmds.map((c) => encodeCommand(c)))),
  };
}

const OPTNEG: MtaCommand = { type: 'optneg', ...POSTFIX_OFFER };
const MAIL: MtaCommand = { type: 'mail', args: ['<a@example.org>'] };
const EOB: MtaCommand = { type: 'eob', data: Buffer.alloc(0) };

test('progress: sent every interval while the EOM reply is pending, and not after the reply', async () => {
  const answer = deferred();
  const h = harness({ noReply: ['envfrom'], envfrom() {}, eom: () => answer.promise });
  h.feed(OPTNEG, MAIL, EOB);
  assert.deepEqual(h.written, ['optneg']);
  assert.equal(h.clock.pending, 1, 'one timer while the reply is pending');
  h.clock.advance(INTERVAL - 1);
  assert.deepEqual(h.written, ['optneg'], 'nothing before the first interval has passed');
  h.clock.advance(1);
  assert.deepEqual(h.written, ['optneg', 'progress']);
  h.clock.advance(2 * INTERVAL);
  assert.deepEqual(h.written, ['optneg', 'progress', 'progress', 'progress']);
  answer.resolve(Verdict.reply(550, '5.7.1', 'judged'));
  await turn();
  assert.deepEqual(h.written, ['optneg', 'progress', 'progress', 'progress', 'replyCode']);
  assert.equal(h.clock.pending, 0, 'the timer is gone with the reply');
  h.clock.advance(10 * INTERVAL);
  assert.equal(h.written.length, 5, 'nothing after the reply');
  assert.equal(h.counters.progressPackets, 3);
});

test('progress: an EOM answered at once arms no timer; other pending stages get no progress', async () => {
  const mailAnswer = deferred();
  const h = harness({ envfrom: () => mailAnswer.promise, eom: () => Verdict.accept() });
  h.feed(OPTNEG, MAIL);
  // MAIL waits for its answer: Sendmail would take a progress here for a bogus reply.
  h.clock.advance(3 * INTERVAL);
  assert.equal(h.clock.pending, 0);
  mailAnswer.resolve(Verdict.continue());
  await turn();
  h.feed(EOB);
  assert.deepEqual(h.written, ['optneg', 'continue', 'accept']);
  assert.equal(h.clock.pending, 0);
  assert.equal(h.counters.progressPackets, 0);
});

test('progress: skipped while earlier packets are unread, resumed when they are', () => {
  const answer = deferred();
  const h = harness({ noReply: ['envfrom'], envfrom() {}, eom: () => answer.promise });
  h.feed(OPTNEG, MAIL, EOB);
  h.backlogged.now = true;
  h.clock.advance(4 * INTERVAL);
  assert.deepEqual(h.written, ['optneg'], 'a peer that does not read is not sent more');
  assert.equal(h.clock.pending, 1, 'still armed');
  h.backlogged.now = false;
  h.clock.advance(INTERVAL);
  assert.deepEqual(h.written, ['optneg', 'progress']);
});

test('progress: stops when the connection ends under a pending EOM; nothing is written after the end', async () => {
  const answer = deferred();
  const h = harness({ noReply: ['envfrom'], envfrom() {}, eom: () => answer.promise });
  h.feed(OPTNEG, MAIL, EOB);
  h.clock.advance(INTERVAL);
  assert.deepEqual(h.written, ['optneg', 'progress']);
  h.session.end('eof');
  assert.equal(h.clock.pending, 0);
  h.clock.advance(10 * INTERVAL);
  assert.deepEqual(h.written.filter((t) => t === 'progress'), ['progress']);
  // The owed reply still goes out before the transport is told to end (the server drops it for a closed socket).
  answer.resolve(Verdict.accept());
  await turn();
  assert.equal(h.ended.now, true);
  assert.equal(h.clock.pending, 0);
});

test('progress: interval 0 turns it off; the library default is 5 s', () => {
  const off = harness({ noReply: ['envfrom'], envfrom() {}, eom: () => deferred().promise }, 0);
  off.feed(OPTNEG, MAIL, EOB);
  off.clock.advance(60_000);
  assert.deepEqual(off.written, ['optneg']);
  const dflt = harness({ noReply: ['envfrom'], envfrom() {}, eom: () => deferred().promise }, undefined);
  dflt.feed(OPTNEG, MAIL, EOB);
  dflt.clock.advance(4999);
  assert.deepEqual(dflt.written, ['optneg']);
  dflt.clock.advance(1);
  assert.deepEqual(dflt.written, ['optneg', 'progress']);
});

test('progress through the server: a slow EOM is preceded by progress packets on the wire', async () => {
  const app: MilterApplication = {
    noReply: ['envfrom'],
    envfrom() {},
    async eom() {
      await sleep(300);
      return Verdict.reply(550, '5.7.1', 'slow but judged');
    },
  };
  // Real timers: the 40 ms progress timer is armed after the 300 ms one and due long before it,
  // so at least one progress precedes the reply however loaded the machine is.
  await withServer(app, { progressIntervalMs: 40 }, async (server) => {
    const c = await MilterTestClient.connect(server.address()!);
    await c.negotiate();
    await c.mail('<a@example.org>');
    const r = await c.eom();
    assert.equal(r.final?.type, 'replyCode');
    assert.ok(r.modifications.length >= 1, 'at least one progress packet');
    assert.ok(r.modifications.every((m) => m.type === 'progress'), JSON.stringify(r.modifications));
    assert.equal(server.stats().progressPackets, r.modifications.length);
    await c.expectSilence(150);
    assert.equal(server.stats().progressPackets, r.modifications.length, 'none after the reply');
    c.quit();
    await c.waitClosed();
  });
});
