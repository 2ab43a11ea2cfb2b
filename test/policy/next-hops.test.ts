import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IgnoredNextHops, RecipientHops } from '../../src/policy/next-hops.js';

function allIgnored(ignored: IgnoredNextHops, hops: (string | undefined)[]): boolean {
  const recipients = new RecipientHops();
  for (const hop of hops) recipients.add(hop, ignored);
  return recipients.everyIgnored();
}

test('entries are trimmed, case-folded and empty ones dropped', () => {
  const hops = new IgnoredNextHops(' [Relay.Example]:25 , other.example,, '.split(','));
  assert.equal(hops.size, 2);
  assert.equal(hops.isIgnored('[relay.example]:25'), true);
  assert.equal(hops.isIgnored('OTHER.example'), true);
  assert.equal(hops.isIgnored('relay.example'), false, 'brackets and port make a different next hop');
});

test('a message passes only when every recipient next hop is ignored', () => {
  const hops = new IgnoredNextHops(['relay.example', '[smart.example]:587']);
  assert.equal(allIgnored(hops, ['relay.example']), true);
  assert.equal(allIgnored(hops, ['relay.example', '[smart.example]:587']), true);
  assert.equal(allIgnored(hops, ['relay.example', 'elsewhere.example']), false);
  assert.equal(allIgnored(hops, ['elsewhere.example', 'relay.example']), false, 'order does not matter (the original looked at the last only)');
  assert.equal(allIgnored(hops, ['relay.example', undefined]), false, 'a missing {rcpt_host} counts as not ignored');
  assert.equal(allIgnored(hops, []), false);
  assert.equal(allIgnored(new IgnoredNextHops([]), ['relay.example']), false);
});
