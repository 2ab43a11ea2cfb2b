/**
 * mapBounded, the bounded worker pool behind `sos-milter audit`. Every work item here is a
 * promise the test settles by hand, so nothing depends on timing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { mapBounded } from '../../src/app/bounded-map.js';

/** A work function whose calls wait until the test settles them, by item. */
function heldWork<T>() {
  const held = new Map<T, { resolve: (v: string) => void; reject: (e: unknown) => void }>();
  let inFlight = 0;
  let maxInFlight = 0;
  const started: T[] = [];
  const work = (item: T): Promise<string> => {
    started.push(item);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    return new Promise<string>((resolve, reject) => held.set(item, { resolve, reject })).finally(() => inFlight--);
  };
  return {
    work,
    started,
    get maxInFlight() {
      return maxInFlight;
    },
    resolve: (item: T) => held.get(item)!.resolve(`done ${String(item)}`),
    reject: (item: T, err: unknown) => held.get(item)!.reject(err),
  };
}

/** Lets the settled promises' reactions run (each takes a few microtask turns). */
async function settleReactions(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

test('results keep the input order, whatever order the work finishes in', async () => {
  const h = heldWork<number>();
  const progress: number[] = [];
  const all = mapBounded([0, 1, 2, 3, 4], 2, h.work, { onDone: (n) => progress.push(n) });
  for (const item of [1, 0, 3, 2, 4]) {
    await settleReactions();
    h.resolve(item);
  }
  assert.deepEqual(await all, ['done 0', 'done 1', 'done 2', 'done 3', 'done 4']);
  assert.deepEqual(progress, [1, 2, 3, 4, 5]);
});

test('at most `limit` items are in flight, and the next starts as one finishes', async () => {
  const h = heldWork<number>();
  const items = Array.from({ length: 20 }, (_, i) => i);
  const all = mapBounded(items, 3, h.work);
  await settleReactions();
  assert.deepEqual(h.started, [0, 1, 2], 'three start at once');
  h.resolve(1);
  await settleReactions();
  assert.deepEqual(h.started, [0, 1, 2, 3], 'one finished, one more started');
  for (const item of items) {
    await settleReactions();
    if (item !== 1) h.resolve(item);
  }
  assert.equal((await all).length, 20);
  assert.equal(h.maxInFlight, 3);
});

test('a limit above the number of items starts them all; an empty list gives an empty result', async () => {
  const h = heldWork<string>();
  const all = mapBounded(['a', 'b'], 16, h.work);
  await settleReactions();
  assert.deepEqual(h.started, ['a', 'b']);
  h.resolve('b');
  h.resolve('a');
  assert.deepEqual(await all, ['done a', 'done b']);
  assert.deepEqual(await mapBounded([], 4, h.work), []);
});

test('the first failure rejects the map and starts nothing new', async () => {
  const h = heldWork<number>();
  const all = mapBounded([0, 1, 2, 3, 4], 2, h.work);
  await settleReactions();
  h.reject(0, new Error('item 0 broke'));
  await assert.rejects(all, /item 0 broke/);
  h.resolve(1);
  await settleReactions();
  assert.deepEqual(h.started, [0, 1], 'nothing started after the failure');
});

test('a work function that throws instead of rejecting fails the map the same way', async () => {
  await assert.rejects(
    mapBounded([1, 2], 1, () => {
      throw new Error('thrown synchronously');
    }),
    /thrown synchronously/,
  );
});

test('an abort rejects with the signal\'s reason, starts nothing new and leaves no listener', async () => {
  const h = heldWork<number>();
  const controller = new AbortController();
  const all = mapBounded([0, 1, 2, 3], 1, h.work, { signal: controller.signal });
  await settleReactions();
  controller.abort(new Error('audit interrupted'));
  await assert.rejects(all, /audit interrupted/);
  h.resolve(0);
  await settleReactions();
  assert.deepEqual(h.started, [0]);
  assert.equal(getEventListeners(controller.signal, 'abort').length, 0);

  await assert.rejects(mapBounded([0], 1, h.work, { signal: AbortSignal.abort(new Error('already gone')) }), /already gone/);
  const finished = new AbortController();
  const quick = heldWork<number>();
  const ok = mapBounded([0], 1, quick.work, { signal: finished.signal });
  await settleReactions();
  quick.resolve(0);
  await ok;
  assert.equal(getEventListeners(finished.signal, 'abort').length, 0, 'a map that finished keeps no listener');
});

test('a limit that is not a positive integer is a programming error', () => {
  for (const limit of [0, -1, 1.5, Number.NaN]) assert.throws(() => mapBounded([1], limit, async (x) => x), RangeError);
});
