import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, waitFor } from './wait.js';

test('sleep resolves after about the time asked', async () => {
  const started = performance.now();
  await sleep(50);
  assert.ok(performance.now() - started >= 45);
});

test('waitFor returns the first value that satisfies the wait, sync or async probe', async () => {
  let n = 0;
  const three: number = await waitFor(() => ++n >= 3 && n, { timeoutMs: 1000, intervalMs: 1, what: 'three probes' });
  assert.equal(three, 3);
  let m = 0;
  assert.equal(await waitFor(async () => ++m, { timeoutMs: 1000, intervalMs: 1, what: 'four', until: (v) => v === 4 }), 4);
  // A value satisfied at once is returned without a pause.
  const started = performance.now();
  assert.equal(await waitFor(() => 'ready', { timeoutMs: 1000, intervalMs: 500, what: 'ready' }), 'ready');
  assert.ok(performance.now() - started < 400);
});

test('waitFor times out with an error naming what it waited for and the last observed value', async () => {
  const started = Date.now();
  await assert.rejects(
    waitFor(() => ({ closes: 2 }), { timeoutMs: 100, intervalMs: 10, what: '3 budget closes', until: (s) => s.closes >= 3 }),
    (e: unknown) => e instanceof Error && e.message === 'timed out after 100 ms waiting for 3 budget closes; last observed: {"closes":2}',
  );
  assert.ok(Date.now() - started >= 100, 'not before the timeout');
  await assert.rejects(waitFor(() => false, { timeoutMs: 0, what: 'nothing' }), /waiting for nothing; last observed: false$/);
  await assert.rejects(
    waitFor(() => 503, { timeoutMs: 0, what: '/readyz', until: (s) => s === 200, describe: (s) => `status ${s}, daemon still running` }),
    /waiting for \/readyz; last observed: status 503, daemon still running$/,
  );
});

test('waitFor probes once per interval and passes on an error thrown by the probe', async () => {
  let probes = 0;
  await assert.rejects(waitFor(() => ++probes > 1000, { timeoutMs: 300, intervalMs: 100, what: 'never' }), /timed out/);
  // At 0, 100, 200 and 300 ms, give or take a slow timer: not one probe per event-loop turn.
  assert.ok(probes >= 3 && probes <= 5, `${probes} probes`);
  await assert.rejects(
    waitFor(() => {
      throw new Error('daemon exited');
    }, { timeoutMs: 1000, what: 'ready' }),
    /^Error: daemon exited$/,
  );
});
