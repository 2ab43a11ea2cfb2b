import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IgnoredNextHops } from '../../src/policy/next-hops.js';

test('entries are trimmed, case-folded and empty ones dropped', () => {
  const hops = new IgnoredNextHops(' [Relay.Example]:25 , other.example,, '.split(','));
  assert.equal(hops.size, 2);
  assert.equal(hops.isIgnored('[relay.example]:25'), true);
  assert.equal(hops.isIgnored('OTHER.example'), true);
  assert.equal(hops.isIgnored('relay.example'), false, 'brackets and port make a different next hop');
});

test('a message passes only when every recipient next hop is ignored', () => {
  const hops = new IgnoredNextHops(['relay.example', '[smart.example]:587']);
  assert.equal(hops.allIgnored(['relay.example']), true);
  assert.equal(hops.allIgnored(['relay.example', '[smart.example]:587']), true);
  assert.equal(hops.allIgnored(['relay.example', 'elsewhere.example']), false);
  assert.equal(hops.allIgnored(['elsewhere.example', 'relay.example']), false, 'order does not matter (the original looked at the last only)');
  assert.equal(hops.allIgnored(['relay.example', undefined]), false, 'a missing {rcpt_host} counts as not ignored');
  assert.equal(hops.allIgnored([]), false);
  assert.equal(new IgnoredNextHops([]).allIgnored(['relay.example']), false);
});
