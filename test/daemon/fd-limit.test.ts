import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectionCapForFdLimit, FD_BUDGET, fdExhaustionCode, readOpenFileLimit } from '../../src/daemon/fd-limit.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max processes             62987                62987                processes
Max open files            256                  4096                 files
Max locked memory         8388608              8388608              bytes
`;

test('the soft open-files limit is read from /proc/self/limits; unlimited or unreadable is undefined', () => {
  assert.equal(readOpenFileLimit(() => LIMITS), 256);
  assert.equal(readOpenFileLimit(() => LIMITS.replace('256                  4096', 'unlimited            unlimited')), undefined);
  assert.equal(readOpenFileLimit(() => 'nothing here'), undefined);
  assert.equal(
    readOpenFileLimit(() => {
      throw new Error('ENOENT: no /proc');
    }),
    undefined,
  );
  // On Linux the real file is there and gives a number.
  assert.equal(typeof readOpenFileLimit(), 'number');
});

test('the connection cap is lowered only when the limit cannot hold MILTER_MAX_CONNECTIONS', () => {
  const reserve = FD_BUDGET.base + FD_BUDGET.headroom;
  assert.deepEqual(connectionCapForFdLimit(1_048_576, 1000, false), { limit: 1_048_576, needed: reserve + 2000, reserve, cap: 1000, lowered: false });
  assert.deepEqual(connectionCapForFdLimit(undefined, 1000, false), { limit: undefined, needed: reserve + 2000, reserve, cap: 1000, lowered: false });
  // ulimit -n 256, the case: (256 - 48) / 2.
  assert.deepEqual(connectionCapForFdLimit(256, 1000, false), { limit: 256, needed: reserve + 2000, reserve, cap: 104, lowered: true });
  assert.equal(connectionCapForFdLimit(256, 1000, true).cap, 103);
  // Debian's default soft limit 1024 (Node raises it to the hard limit when that is higher).
  assert.equal(connectionCapForFdLimit(1024, 1000, false).cap, 488);
  // Never below one connection.
  assert.equal(connectionCapForFdLimit(20, 1000, false).cap, 1);
});

test('EMFILE and ENFILE are found in error texts', () => {
  assert.equal(fdExhaustionCode('connect EMFILE 127.0.0.1:389 - Local (undefined:undefined)'), 'EMFILE');
  assert.equal(fdExhaustionCode('too many open files (ENFILE): no socket'), 'ENFILE');
  assert.equal(fdExhaustionCode('connect ECONNREFUSED 127.0.0.1:389'), undefined);
  assert.equal(fdExhaustionCode(undefined), undefined);
});
