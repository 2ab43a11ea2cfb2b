// The command queue alone: one step at a time in order, synchronous steps run at once, bounds
// refuse (and queue nothing), the last item ignores them, and a failing step does not stop it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommandQueue } from '../../src/milter/command-queue.js';
import { invoke } from '../../src/milter/invoke.js';

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}
const failOnError = (err: unknown): void => assert.fail(String(err));
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

test('synchronous steps run at once; a pending step makes the next ones wait, then they run in order', async () => {
  const ran: string[] = [];
  const gate = deferred();
  const q = new CommandQueue<string>((s) => {
    ran.push(s);
    return s === 'slow' ? gate.promise : undefined;
  }, failOnError, { maxItems: 10, maxBytes: 100 });
  assert.equal(q.submit('a', 1), true);
  assert.deepEqual(ran, ['a'], 'run synchronously');
  assert.equal(q.busy, false);
  q.submit('slow', 1);
  q.submit('b', 7);
  q.submit('c', 3);
  assert.deepEqual(ran, ['a', 'slow']);
  assert.equal(q.busy, true);
  assert.equal(q.length, 2);
  assert.equal(q.bytes, 10);
  gate.resolve();
  await turn();
  assert.deepEqual(ran, ['a', 'slow', 'b', 'c']);
  assert.equal(q.busy, false);
  assert.equal(q.bytes, 0);
});

test('past either bound nothing is queued; the last item is queued whatever the bounds', async () => {
  const gate = deferred();
  const ran: string[] = [];
  const q = new CommandQueue<string>((s) => {
    ran.push(s);
    return s === 'slow' ? gate.promise : undefined;
  }, failOnError, { maxItems: 2, maxBytes: 10 });
  q.submit('slow', 1);
  assert.equal(q.submit('x', 11), false, 'over the byte bound');
  assert.equal(q.submit('a', 5), true);
  assert.equal(q.submit('b', 5), true);
  assert.equal(q.submit('c', 1), false, 'over the count bound');
  q.submitLast('end');
  assert.equal(q.length, 3);
  q.clear();
  q.submitLast('end');
  gate.resolve();
  await turn();
  assert.deepEqual(ran, ['slow', 'end']);
});

test('a step that throws or rejects goes to onError, and the next one runs', async () => {
  const errors: string[] = [];
  const ran: string[] = [];
  const q = new CommandQueue<string>(
    (s) => {
      ran.push(s);
      if (s === 'throws') throw new Error('thrown');
      if (s === 'rejects') return Promise.reject(new Error('rejected'));
      return undefined;
    },
    (err) => errors.push((err as Error).message),
    { maxItems: 10, maxBytes: 100 },
  );
  q.submit('throws', 1);
  q.submit('rejects', 1);
  q.submit('after', 1);
  await turn();
  assert.deepEqual(ran, ['throws', 'rejects', 'after']);
  assert.deepEqual(errors, ['thrown', 'rejected']);
});

test('invoke: a value is handed on synchronously, a promise once settled, a throw or rejection as an error', async () => {
  const seen: string[] = [];
  const onValue = (v: unknown): void => void seen.push(`value:${String(v)}`);
  const onError = (e: unknown): void => void seen.push(`error:${(e as Error).message}`);
  assert.equal(invoke(() => 1, onValue, onError), undefined);
  assert.equal(
    invoke(() => { throw new Error('t'); }, onValue, onError),
    undefined,
  );
  assert.deepEqual(seen, ['value:1', 'error:t'], 'both at once');
  const p = invoke(() => Promise.resolve(2), onValue, onError);
  const r = invoke(() => Promise.reject(new Error('r')), onValue, onError);
  assert.ok(p instanceof Promise && r instanceof Promise);
  await Promise.all([p, r]);
  assert.deepEqual(seen, ['value:1', 'error:t', 'value:2', 'error:r']);
});
