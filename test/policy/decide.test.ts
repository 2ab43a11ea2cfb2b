import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideOutcome, newMessageId, violationSentence } from '../../src/policy/decide.js';
import { IgnoredNextHops } from '../../src/policy/next-hops.js';
import type { Assessment } from '../../src/policy/types.js';

const violating: Assessment = {
  domain: 'example.com',
  check: 'regex',
  ownership: 'foreign',
  record: 'v=spf1 ip4:192.0.2.0/24 -all',
  result: 'restrictive',
  violation: true,
  failOpen: false,
  detail: '-all',
  reason: 'restrictive record (-all) does not match SPF_REGEX',
};

const base = {
  nextHops: ['example.net'],
  ignoredNextHops: new IgnoredNextHops([]),
  milterName: 'sos-milter',
  messageId: 'abcd1234',
  rejectMessage: 'Security policy violation!',
};

test('reject mode gives the original reject text', () => {
  const outcome = decideOutcome({ ...base, assessment: violating, mode: 'reject' });
  assert.equal(outcome.action, 'reject');
  assert.equal(
    outcome.rejectText,
    'sos-milter: abcd1234 SPF-record (-all) of 5321_from_domain=example.com does not permit us to relay this message! Security policy violation!',
  );
});

test('test mode logs foreign violations and tags own domains', () => {
  assert.equal(decideOutcome({ ...base, assessment: violating, mode: 'test' }).action, 'log');
  const own = decideOutcome({ ...base, assessment: { ...violating, ownership: 'own' }, mode: 'test' });
  assert.equal(own.action, 'tag');
  assert.deepEqual(own.header, { name: 'X-SOS-Milter', value: 'failed SPF-expectation' });
});

test('no violation passes; ignored next hops pass a violation only when all are ignored', () => {
  assert.equal(decideOutcome({ ...base, assessment: { ...violating, violation: false }, mode: 'reject' }).action, 'pass');
  const ignored = new IgnoredNextHops(['relay.example']);
  assert.equal(
    decideOutcome({ ...base, ignoredNextHops: ignored, nextHops: ['relay.example'], assessment: violating, mode: 'reject' }).action,
    'pass-ignored-next-hop',
  );
  assert.equal(
    decideOutcome({ ...base, ignoredNextHops: ignored, nextHops: ['relay.example', 'x.example'], assessment: violating, mode: 'reject' }).action,
    'reject',
  );
});

test('the evaluate sentence names result and address', () => {
  assert.equal(
    violationSentence({ domain: 'd.example', detail: 'fail for 192.0.2.1' }),
    'SPF-record (fail for 192.0.2.1) of 5321_from_domain=d.example does not permit us to relay this message!',
  );
});

test('message ids are 8 characters of [a-z0-9] and differ', () => {
  const ids = new Set(Array.from({ length: 200 }, newMessageId));
  for (const id of ids) assert.match(id, /^[a-z0-9]{8}$/);
  assert.ok(ids.size > 190);
});
