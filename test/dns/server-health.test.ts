import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ServerHealth, type ServerHealthChange } from '../../src/dns/server-health.js';

const SERVERS = [
  { host: '192.0.2.1', port: 53 },
  { host: '192.0.2.2', port: 53 },
  { host: '192.0.2.3', port: 53 },
];

/** A tracker on a hand-moved clock, with the changes it reported. */
function tracker(options: { downAfter?: number; reprobeMs?: number; servers?: typeof SERVERS } = {}) {
  const clock = { now: 1000 };
  const changes: ServerHealthChange[] = [];
  const health = new ServerHealth(options.servers ?? SERVERS, {
    downAfter: options.downAfter ?? 3,
    reprobeMs: options.reprobeMs ?? 10_000,
    now: () => clock.now,
    onChange: (c) => changes.push(c),
  });
  return { health, clock, changes };
}

test('a server is marked down after N unanswered queries in a row, not before', () => {
  const { health, changes } = tracker();
  health.unanswered(0);
  health.unanswered(0);
  assert.equal(health.isDown(0), false);
  assert.deepEqual(health.plan(), { order: [0, 1, 2], probe: undefined });
  health.unanswered(0);
  assert.equal(health.isDown(0), true);
  assert.equal(health.downCount, 1);
  assert.deepEqual(changes, [{ server: SERVERS[0], index: 0, up: false, unanswered: 3 }]);
});

test('an answer in between starts the count again', () => {
  const { health, changes } = tracker();
  health.unanswered(1);
  health.unanswered(1);
  health.answered(1);
  health.unanswered(1);
  health.unanswered(1);
  assert.equal(health.isDown(1), false);
  assert.equal(changes.length, 0, 'answers of a live server report nothing');
});

test('a down server is skipped: new lookups go to the live servers in their order', () => {
  const { health } = tracker();
  for (let i = 0; i < 3; i++) health.unanswered(0);
  assert.deepEqual(health.plan(), { order: [1, 2], probe: undefined });
  for (let i = 0; i < 3; i++) health.unanswered(2);
  assert.deepEqual(health.plan(), { order: [1], probe: undefined });
});

test('a down server is probed once per interval, and stays down while the probes go unanswered', () => {
  const { health, clock, changes } = tracker({ reprobeMs: 10_000 });
  for (let i = 0; i < 3; i++) health.unanswered(0);
  clock.now += 9_999;
  assert.equal(health.plan().probe, undefined, 'not before the interval');
  clock.now += 1;
  assert.deepEqual(health.plan(), { order: [1, 2], probe: 0 });
  assert.equal(health.plan().probe, undefined, 'one probe per interval, however many lookups start');
  health.unanswered(0); // the probe
  assert.equal(health.isDown(0), true);
  clock.now += 5_000;
  assert.equal(health.plan().probe, undefined);
  clock.now += 5_000;
  assert.equal(health.plan().probe, 0, 'the next interval brings the next probe');
  assert.equal(changes.length, 1, 'one report for the whole outage so far');
});

test('two down servers take turns as probes', () => {
  const { health, clock } = tracker({ reprobeMs: 1_000 });
  for (let i = 0; i < 3; i++) health.unanswered(0);
  for (let i = 0; i < 3; i++) health.unanswered(1);
  clock.now += 1_000;
  assert.equal(health.plan().probe, 0);
  assert.equal(health.plan().probe, 1);
  assert.equal(health.plan().probe, undefined);
});

test('an answer marks a down server up again, once, with how long it was down', () => {
  const { health, clock, changes } = tracker({ reprobeMs: 10_000 });
  for (let i = 0; i < 3; i++) health.unanswered(0);
  clock.now += 10_000;
  assert.equal(health.plan().probe, 0);
  clock.now += 20;
  health.answered(0);
  health.answered(0);
  assert.equal(health.isDown(0), false);
  assert.equal(health.downCount, 0);
  assert.deepEqual(health.plan(), { order: [0, 1, 2], probe: undefined });
  assert.deepEqual(changes[1], { server: SERVERS[0], index: 0, up: true, unanswered: 0, downForMs: 10_020 });
  assert.equal(changes.length, 2);
  // Back up, it needs N unanswered in a row again before it is skipped.
  health.unanswered(0);
  health.unanswered(0);
  assert.equal(health.isDown(0), false);
});

test('when every server is down, lookups still try all of them', () => {
  const { health, clock, changes } = tracker({ downAfter: 1 });
  for (const i of [0, 1, 2]) health.unanswered(i);
  assert.equal(health.downCount, 3);
  assert.deepEqual(health.plan(), { order: [0, 1, 2], probe: undefined });
  clock.now += 60_000;
  assert.deepEqual(health.plan(), { order: [0, 1, 2], probe: undefined });
  health.answered(1);
  // One live again: the others are skipped, and probed as their intervals come round.
  assert.deepEqual(health.plan(), { order: [1], probe: 0 });
  assert.deepEqual(health.plan(), { order: [1], probe: 2 });
  assert.deepEqual(
    changes.map((c) => [c.index, c.up]),
    [
      [0, false],
      [1, false],
      [2, false],
      [1, true],
    ],
  );
});

test('a single server is always tried', () => {
  const { health } = tracker({ servers: [SERVERS[0]] });
  for (let i = 0; i < 10; i++) health.unanswered(0);
  assert.deepEqual(health.plan(), { order: [0], probe: undefined });
});

test('bad options are refused', () => {
  assert.throws(() => new ServerHealth(SERVERS, { downAfter: 0 }), RangeError);
  assert.throws(() => new ServerHealth(SERVERS, { downAfter: 1.5 }), RangeError);
  assert.throws(() => new ServerHealth(SERVERS, { reprobeMs: 0 }), RangeError);
});
