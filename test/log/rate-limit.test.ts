/**
 * Per-event warnings are rate-limited per kind (level and message): N lines per interval, then
 * one line with the count suppressed when the interval ends. A hand-driven clock makes the
 * windows exact; one test uses the real timers with a generous bound.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, rateLimitedLogger, type Clock } from '../../src/log/index.js';

class ManualClock implements Clock {
  time = 1_000_000;
  private timers: { at: number; fn: () => void; cancelled: boolean }[] = [];

  now(): number {
    return this.time;
  }

  setTimer(fn: () => void, ms: number): { cancel(): void } {
    const timer = { at: this.time + ms, fn, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => void (timer.cancelled = true) };
  }

  /** Moves the time forward, running the timers that come due, in order. */
  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      const due = this.timers.filter((t) => !t.cancelled && t.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.time = due.at;
      due.cancelled = true;
      due.fn();
    }
    this.time = until;
  }

  get pending(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }
}

function setup(lines = 3, intervalMs = 10_000) {
  const out: string[] = [];
  const logger = createLogger({ name: 'sos-milter', level: 'info', format: 'text', destination: { write: (l: string) => out.push(l) } });
  const clock = new ManualClock();
  const limited = rateLimitedLogger(logger, { lines, intervalMs }, clock);
  return { out, clock, limited };
}

test('N lines of a kind pass per interval; the rest are counted and reported once when it ends', () => {
  const { out, clock, limited } = setup(3, 10_000);
  for (let i = 0; i < 50; i++) limited.warn({ conn: i }, 'milter connection idle too long, closing');
  assert.equal(out.length, 3);
  assert.match(out[2]!, / WARN sos-milter: 2: milter connection idle too long, closing\n$/);
  clock.advance(9_999);
  assert.equal(out.length, 3, 'nothing before the interval ends');
  clock.advance(1);
  assert.equal(out.length, 4);
  assert.match(out[3]!, / WARN sos-milter: milter connection idle too long, closing \(47 more suppressed in 10 s\) suppressed=47\n$/);
  // A new interval starts with the next line.
  limited.warn({ conn: 99 }, 'milter connection idle too long, closing');
  assert.equal(out.length, 5);
  assert.equal(clock.pending, 0);
});

test('kinds are counted apart: by message and by level', () => {
  const { out, clock, limited } = setup(2);
  for (let i = 0; i < 5; i++) {
    limited.warn('protocol error');
    limited.warn('connection refused: too many connections');
    limited.error('protocol error');
  }
  assert.equal(out.length, 6);
  clock.advance(10_000);
  const summaries = out.slice(6);
  assert.equal(summaries.length, 3);
  assert.ok(summaries.some((l) => / WARN sos-milter: protocol error \(3 more suppressed in 10 s\)/.test(l)));
  assert.ok(summaries.some((l) => / ERROR sos-milter: protocol error \(3 more suppressed in 10 s\)/.test(l)));
  assert.ok(summaries.some((l) => /connection refused: too many connections \(3 more suppressed/.test(l)));
});

test('an interval with nothing suppressed ends silently and leaves no timer', () => {
  const { out, clock, limited } = setup(3);
  limited.warn('a');
  limited.warn('a');
  clock.advance(60_000);
  limited.warn('a');
  assert.equal(out.length, 3);
  assert.equal(clock.pending, 0);
});

test('children share the counts; the summary is written without their bindings', () => {
  const { out, clock, limited } = setup(1);
  limited.child({ conn: 1 }).warn('refused');
  limited.child({ conn: 2 }).warn('refused');
  limited.child({ conn: 3 }).warn('refused');
  clock.advance(10_000);
  assert.equal(out.length, 2);
  assert.match(out[0]!, /sos-milter: 1: refused\n$/);
  assert.match(out[1]!, /sos-milter: refused \(2 more suppressed in 10 s\) suppressed=2\n$/);
});

test('flush writes pending counts at once (shutdown); disabled levels are neither written nor counted', () => {
  const { out, clock, limited } = setup(1);
  limited.warn('x');
  limited.warn('x');
  limited.debug('not enabled');
  limited.debug('not enabled');
  limited.flush();
  assert.equal(out.length, 2);
  assert.match(out[1]!, /x \(1 more suppressed in 10 s\)/);
  assert.equal(clock.pending, 0);
  assert.equal(limited.isLevelEnabled('debug'), false);
});

test('messages built from input cannot grow the table: past 256 kinds they share one count', () => {
  const { out, clock, limited } = setup(1);
  for (let i = 0; i < 1000; i++) limited.warn(`bad sender ${i}`);
  assert.equal(out.length, 257, '256 kinds, then one line of the shared kind');
  clock.advance(10_000);
  assert.match(out.at(-1)!, /log lines of further kinds \(743 more suppressed in 10 s\) suppressed=743\n$/);
});

test('bad limits are refused', () => {
  const logger = createLogger({ name: 'x', level: 'info', format: 'text', destination: { write: () => undefined } });
  assert.throws(() => rateLimitedLogger(logger, { lines: 0, intervalMs: 1000 }), RangeError);
  assert.throws(() => rateLimitedLogger(logger, { lines: 1, intervalMs: 0 }), RangeError);
});

test('with the real clock, the summary comes when the interval ends', async () => {
  const out: string[] = [];
  const logger = createLogger({ name: 'sos-milter', level: 'info', format: 'json', destination: { write: (l: string) => out.push(l) } });
  const limited = rateLimitedLogger(logger, { lines: 1, intervalMs: 50 });
  limited.warn({ n: 1 }, 'noisy');
  limited.warn({ n: 2 }, 'noisy');
  const deadline = Date.now() + 10_000;
  while (out.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(out.length, 2);
  const summary = JSON.parse(out[1]!) as { level: string; msg: string; suppressed: number };
  assert.deepEqual([summary.level, summary.msg, summary.suppressed], ['warn', 'noisy (1 more suppressed in 50 ms)', 1]);
});

test('a rate-limited logger serves where the milter server takes its logger', async () => {
  const { MilterServer } = await import('../../src/milter/index.js');
  const { out, limited } = setup(1);
  const logger: import('../../src/milter/index.js').MilterLogger = limited;
  const server = new MilterServer({}, { socket: 'inet:0@127.0.0.1', logger });
  await server.listen();
  await server.close({ deadlineMs: 100 });
  assert.ok(out.some((l) => l.includes('milter server listening')));
});
