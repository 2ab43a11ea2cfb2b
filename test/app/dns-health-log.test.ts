import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DnsHealthLog } from '../../src/app/dns-health-log.js';
import type { ServerHealthChange } from '../../src/dns/index.js';
import { captureLog } from '../support/log-capture.js';

const A = { host: '192.0.2.53', port: 53 };
const B = { host: '2001:db8::53', port: 5353 };
const down = (server = A, index = 0): ServerHealthChange => ({ server, index, up: false, unanswered: 3 });
const up = (server = A, index = 0, downForMs = 10_020): ServerHealthChange => ({ server, index, up: true, unanswered: 0, downForMs });

function setup(serversDown = 1) {
  const { logger, lines } = captureLog('json');
  const clock = { now: 0 };
  const log = new DnsHealthLog(logger, { reprobeMs: 10_000, servers: 2, serversDown: () => serversDown }, { limit: 4, intervalMs: 60_000, now: () => clock.now });
  const parsed = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { log, clock, parsed };
}

test('one WARN when a server is marked down, one INFO when it is back', () => {
  const { log, parsed } = setup();
  log.report(down());
  log.report(up());
  const [w, i] = parsed();
  assert.equal(w.level, 'warn');
  assert.equal(w.msg, 'DNS server 192.0.2.53:53 marked down: 3 queries in a row unanswered; skipped, probed again every 10 s');
  assert.equal(w.server, '192.0.2.53:53');
  assert.equal(i.level, 'info');
  assert.equal(i.msg, 'DNS server 192.0.2.53:53 answers again (down for 10020 ms)');
  assert.equal(parsed().length, 2);
});

test('with every server down, the line says they are all still tried', () => {
  const { log, parsed } = setup(2);
  log.report(down(B, 1));
  assert.equal(parsed()[0].msg, 'DNS server [2001:db8::53]:5353 marked down: 3 queries in a row unanswered; every DNS server is down: all are still tried');
});

test('a flapping server writes at most `limit` lines per interval, then one count with the state it is in', () => {
  const { log, clock, parsed } = setup();
  for (let i = 0; i < 50; i++) {
    log.report(down());
    clock.now += 100;
    log.report(up());
    clock.now += 100;
  }
  log.report(down());
  assert.equal(parsed().length, 4, 'the limit');
  log.flush(); // what the interval's timer does
  const summary = parsed()[4];
  assert.equal(summary.level, 'warn', 'down now');
  assert.equal(summary.msg, 'DNS server 192.0.2.53:53 was marked down 49 more times and came back 48 more times (at most 4 lines per 60 s); down now');
  assert.equal(parsed().length, 5);
  log.flush();
  assert.equal(parsed().length, 5, 'nothing more to say');
  // The next interval writes lines again; another server has its own window.
  clock.now += 60_000;
  log.report(up());
  log.report(down(B, 1));
  assert.deepEqual(
    parsed().slice(5).map((l) => l.msg),
    ['DNS server 192.0.2.53:53 answers again (down for 10020 ms)', 'DNS server [2001:db8::53]:5353 marked down: 3 queries in a row unanswered; skipped, probed again every 10 s'],
  );
});

test('counts left at the start of a new interval are written before its first line', () => {
  const { log, clock, parsed } = setup();
  for (let i = 0; i < 3; i++) {
    log.report(down());
    log.report(up());
  }
  clock.now += 60_000;
  log.report(down());
  const msgs = parsed().map((l) => l.msg as string);
  assert.equal(msgs.length, 6);
  assert.match(msgs[4], /was marked down 1 more times and came back 1 more times .*; it answers now$/);
  assert.match(msgs[5], /marked down: 3 queries in a row unanswered/);
  log.flush();
});
