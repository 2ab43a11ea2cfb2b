// The four connection guards alone, on a hand-driven clock: idle timeout, packet deadline,
// write backpressure and the shared input budget. The server only acts on what they tell.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionGuards, InputBudget, type SessionInput } from '../../src/milter/connection-guards.js';
import { ManualClock } from '../support/manual-clock.js';

const LIMITS = { idleTimeoutMs: 1000, packetTimeoutMs: 300 };

/** What a session would report, set by the test. */
type FakeInput = { -readonly [K in keyof SessionInput]: SessionInput[K] };

function setup(maxBytes = 1 << 20): { input: FakeInput; clock: ManualClock; budget: InputBudget; guards: ConnectionGuards } {
  const input: FakeInput = { partialBytes: 0, bufferedBytes: 0, packetsIn: 0, busyNow: false };
  const clock = new ManualClock();
  const budget = new InputBudget(maxBytes);
  return { input, clock, budget, guards: new ConnectionGuards(input, budget, LIMITS, clock) };
}

test('idle: expires after the idle timeout of quiet, counted from the sweep that last saw activity', () => {
  const { clock, guards } = setup();
  clock.advance(999);
  assert.equal(guards.idleExpired(clock.now()), false);
  guards.stir();
  clock.advance(500);
  assert.equal(guards.idleExpired(clock.now()), false, 'activity restarts the count at this sweep');
  clock.advance(999);
  assert.equal(guards.idleExpired(clock.now()), false);
  clock.advance(1);
  assert.equal(guards.idleExpired(clock.now()), true);
});

test('idle: a callback at work is not the peer being idle', () => {
  const { input, clock, guards } = setup();
  input.busyNow = true;
  clock.advance(5000);
  assert.equal(guards.idleExpired(clock.now()), false);
  input.busyNow = false;
  clock.advance(999);
  assert.equal(guards.idleExpired(clock.now()), false);
  clock.advance(1);
  assert.equal(guards.idleExpired(clock.now()), true);
});

test('packet deadline: an incomplete packet times out; completed packets restart the deadline', () => {
  const { input, clock, guards } = setup();
  input.partialBytes = input.bufferedBytes = 10;
  guards.afterRead();
  assert.equal(guards.watched, true);
  clock.advance(300);
  assert.equal(guards.check(clock.now()), 'watching', 'at the deadline, not past it');
  // Packets completed and a new one began: the peer makes progress.
  input.packetsIn = 3;
  guards.afterRead();
  clock.advance(300);
  assert.equal(guards.check(clock.now()), 'watching');
  // More bytes of the same packet do not restart it: a trickle is cut.
  input.partialBytes = input.bufferedBytes = 11;
  guards.afterRead();
  clock.advance(1);
  assert.equal(guards.check(clock.now()), 'packet-timeout');
  assert.equal(guards.partialBytes, 11);
});

test('packet deadline: a packet completed settles the connection (no longer watched)', () => {
  const { input, clock, guards } = setup();
  input.partialBytes = input.bufferedBytes = 10;
  guards.afterRead();
  input.partialBytes = input.bufferedBytes = 0;
  input.packetsIn = 1;
  clock.advance(1000);
  assert.equal(guards.check(clock.now()), 'settled');
  assert.equal(guards.watched, false);
});

test('write backpressure: paused once, stalled past the packet timeout, resume restarts the packet deadline', () => {
  const { input, clock, guards } = setup();
  input.partialBytes = input.bufferedBytes = 10;
  guards.afterRead();
  assert.equal(guards.pauseReading(), true);
  assert.equal(guards.pauseReading(), false, 'already paused');
  assert.equal(guards.paused, true);
  clock.advance(300);
  assert.equal(guards.check(clock.now()), 'watching');
  assert.equal(guards.stalledMs(clock.now()), 300);
  // Time spent waiting for the peer to read does not count against its packet.
  assert.equal(guards.resumeReading(), true);
  assert.equal(guards.resumeReading(), false, 'not paused any more');
  clock.advance(300);
  assert.equal(guards.check(clock.now()), 'watching');
  clock.advance(1);
  assert.equal(guards.check(clock.now()), 'packet-timeout');

  const stalled = setup();
  stalled.guards.pauseReading();
  assert.equal(stalled.guards.watched, true, 'a paused connection is watched even holding no input');
  stalled.clock.advance(301);
  assert.equal(stalled.guards.check(stalled.clock.now()), 'write-stalled');
});

test('input budget: held input counts into the shared total; release takes it out and ends the pause', () => {
  const budget = new InputBudget(100);
  const clock = new ManualClock();
  const a: FakeInput = { partialBytes: 0, bufferedBytes: 60, packetsIn: 0, busyNow: true };
  const b: FakeInput = { partialBytes: 0, bufferedBytes: 30, packetsIn: 0, busyNow: true };
  const ga = new ConnectionGuards(a, budget, LIMITS, clock);
  const gb = new ConnectionGuards(b, budget, LIMITS, clock);
  ga.afterRead();
  gb.afterRead();
  assert.equal(budget.held, 90);
  assert.equal(budget.exceeded, false);
  b.bufferedBytes = 50;
  gb.recount();
  assert.equal(budget.held, 110);
  assert.equal(budget.exceeded, true);
  gb.pauseReading();
  gb.release();
  assert.equal(budget.held, 60);
  assert.equal(gb.held, 0);
  assert.equal(gb.paused, false);
  assert.equal(gb.resumeReading(), false, 'a drain after release does not resume a closed connection');
  a.bufferedBytes = 0;
  assert.equal(ga.check(clock.now()), 'settled');
  assert.equal(budget.held, 0);
});

test('a session that drops its partial packet is not later cut as a packet timeout', () => {
  const { input, clock, guards } = setup();
  input.partialBytes = input.bufferedBytes = 10;
  guards.afterRead();
  // The session ended (overflow, protocol error) and its decoder dropped the partial packet.
  input.partialBytes = input.bufferedBytes = 0;
  clock.advance(10_000);
  assert.equal(guards.check(clock.now()), 'settled');
});
