import { test } from 'node:test';
import assert from 'node:assert/strict';
import { boundTxtAnswer, MAX_EXPLANATION_OCTETS, MAX_SPF_RECORD_OCTETS, startsSpfRecord, txtRecordCount } from '../../src/dns/txt-bound.js';
import type { LookupResult, TxtRecord } from '../../src/dns/types.js';

const answer = (...records: TxtRecord[]): LookupResult<TxtRecord> => ({ records, nxdomain: false, ttl: 300 });
const spf = (octets: number): TxtRecord => {
  const text = `v=spf1 ${'ip4:10.0.0.0/8 '.repeat(Math.ceil(octets / 15))}`.slice(0, octets);
  return text.match(/.{1,255}/g) as string[];
};

test('SPF record detection follows RFC 7208 §4.5, across string boundaries', () => {
  assert.ok(startsSpfRecord(['v=spf1']));
  assert.ok(startsSpfRecord(['V=SPF1 -all']));
  assert.ok(startsSpfRecord(['v=s', 'pf1', ' -all']));
  assert.ok(!startsSpfRecord(['v=spf10 -all']));
  assert.ok(!startsSpfRecord(['v=spf1-all']));
  assert.ok(!startsSpfRecord(['spf2.0/pra -all']));
  assert.ok(!startsSpfRecord([]));
});

test('answers SPF can use whole are kept as they are (same object)', () => {
  for (const a of [
    answer(),
    answer(['v=spf1 -all']),
    answer(spf(MAX_SPF_RECORD_OCTETS)),
    answer(['x'.repeat(MAX_EXPLANATION_OCTETS)]),
  ]) {
    assert.equal(boundTxtAnswer(a), a);
  }
});

test('an SPF record over the bound is counted, not kept', () => {
  const a = boundTxtAnswer(answer(spf(MAX_SPF_RECORD_OCTETS + 1)));
  assert.deepEqual([a.records, a.omitted, txtRecordCount(a)], [[], { spf: 1, other: 0 }, 1]);
});

test('a lone explanation over one reply line is counted, not kept', () => {
  const a = boundTxtAnswer(answer(['x'.repeat(255), 'y'.repeat(MAX_EXPLANATION_OCTETS - 254)]));
  assert.deepEqual([a.records, a.omitted], [[], { spf: 0, other: 1 }]);
});

test('beside other records, only a single usable SPF record is kept', () => {
  const a = boundTxtAnswer(answer(['google-site-verification=abc'], ['v=spf1 -all'], ['x'.repeat(255)]));
  assert.deepEqual([a.records, a.omitted, txtRecordCount(a)], [[['v=spf1 -all']], { spf: 0, other: 2 }, 3]);
  const two = boundTxtAnswer(answer(['v=spf1 -all'], ['v=spf1 +all'], ['junk']));
  assert.deepEqual([two.records, two.omitted], [[], { spf: 2, other: 1 }], 'two SPF records: only their number matters');
  const none = boundTxtAnswer(answer(['a'], ['b']));
  assert.deepEqual([none.records, none.omitted], [[], { spf: 0, other: 2 }], 'no SPF record and no single explanation');
});

test('a 50 KB wildcard answer shrinks to a handful of octets', () => {
  const junk = Array.from({ length: 200 }, () => 'z'.repeat(255));
  const a = boundTxtAnswer({ records: [junk, ['v=spf1 mx -all']], nxdomain: false, ttl: 3600 });
  assert.deepEqual(a, { records: [['v=spf1 mx -all']], nxdomain: false, ttl: 3600, omitted: { spf: 0, other: 1 } });
});
