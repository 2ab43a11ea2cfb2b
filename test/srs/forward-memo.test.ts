import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ForwardMemo } from '../../src/srs/forward-memo.js';
import { Srs } from '../../src/srs/scheme.js';

const DAY = 86_400_000;
/** 2026-12-05, stamp "JZ". */
const NOW = 1796525222_000;
const srs = new Srs({ secrets: ['sos-test-secret-0123456789'], domain: 'srs.esp.example', maxAgeDays: 21 });

test('the memo gives what the scheme gives, for addresses and refusals alike', () => {
  const memo = new ForwardMemo(srs);
  const senders = ['user@example.com', 'first.last+tag=x@Example.COM', 'SRS0=abcd=TT=orig.example=bob@fwd.example', '', 'no-domain', '"quoted"@example.com', 'x@srs.esp.example'];
  for (let round = 0; round < 2; round++) {
    for (const sender of senders) assert.deepEqual(memo.forward(sender, NOW), srs.forward(sender, NOW), sender);
  }
});

test('a new day signs again: the stamp follows the clock, not the memo', () => {
  const memo = new ForwardMemo(srs);
  const today = memo.forward('user@example.com', NOW);
  const tomorrow = memo.forward('user@example.com', NOW + DAY);
  assert.ok(today.ok && tomorrow.ok);
  assert.match(today.address, /^SRS0=[^=]{4}=JZ=/);
  assert.match(tomorrow.address, /^SRS0=[^=]{4}=J2=/);
  assert.deepEqual(tomorrow, srs.forward('user@example.com', NOW + DAY));
  assert.equal(memo.size, 1, 'yesterday’s entries are dropped');
});

test('bounded in entries, oldest out first; senders longer than an SMTP path are not kept', () => {
  const memo = new ForwardMemo(srs, 3);
  for (const name of ['a', 'b', 'c', 'd']) memo.forward(`${name}@example.com`, NOW);
  assert.equal(memo.size, 3);
  memo.forward(`${'x'.repeat(300)}@example.com`, NOW);
  assert.equal(memo.size, 3);
  const none = new ForwardMemo(srs, 0);
  assert.deepEqual(none.forward('a@example.com', NOW), srs.forward('a@example.com', NOW));
  assert.equal(none.size, 0);
  assert.throws(() => new ForwardMemo(srs, -1), RangeError);
});
