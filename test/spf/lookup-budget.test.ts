import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeSpending, lookupBudget, termCost } from '../../src/spf/index.js';
import { ZoneResolver } from '../support/spf/zone-resolver.js';
import { CachingResolver } from '../../src/dns/cache.js';

const zone = new ZoneResolver({
  'big.example': [{ TXT: 'v=spf1 a mx include:_a.example include:_b.example ptr exists:%{i}.x.example ip4:192.0.2.0/24 -all' }],
  'big.example.': [{ A: '192.0.2.1' }, { MX: [10, 'mx.big.example'] }],
  'mx.big.example': [{ A: '192.0.2.2' }],
  '_a.example': [{ TXT: 'v=spf1 include:_c.example ~all' }],
  '_b.example': [{ TXT: 'v=spf1 ip4:198.51.100.0/24 -all' }],
  '_c.example': [{ TXT: 'v=spf1 a:gone.example mx:gone2.example ?all' }],
  'redir.example': [{ TXT: 'v=spf1 redirect=_b.example' }],
  'allredir.example': [{ TXT: 'v=spf1 -all redirect=_a.example' }],
  'loop.example': [{ TXT: 'v=spf1 include:loop.example -all' }],
  'broken.example': [{ TXT: 'v=spf1 include:nothing.example -all' }],
});

test('counts every DNS-querying term the worst case walks, nested includes included', async () => {
  const b = (await lookupBudget(zone, 'big.example'))!;
  // a, mx, include:_a (1 + include:_c (1 + a + mx) = 4), include:_b (1), ptr, exists = 9
  assert.equal(b.used, 9);
  assert.equal(b.limit, 10);
  // a:gone.example and mx:gone2.example are void
  assert.equal(b.voidLookups, 2);
  assert.equal(b.incomplete, true, 'exists: with a macro is a lower bound');
  assert.deepEqual(b.terms.map((t) => [t.term, t.cost]), [['a', 1], ['mx', 1], ['include:_a.example', 4], ['include:_b.example', 1], ['ptr', 1], ['exists:%{i}.x.example', 1]]);
  assert.match(describeSpending(b), /^include:_a\.example \(4\), a \(1\)/);
});

test('redirect counts unless the record has all (RFC 7208 §6.1)', async () => {
  assert.equal((await lookupBudget(zone, 'redir.example'))!.used, 1);
  assert.equal((await lookupBudget(zone, 'allredir.example'))!.used, 0);
});

test('loops and missing include targets end the walk with a note', async () => {
  const loop = (await lookupBudget(zone, 'loop.example'))!;
  assert.equal(loop.used, 1);
  assert.match(loop.terms[0]!.note ?? '', /loop/);
  const broken = (await lookupBudget(zone, 'broken.example'))!;
  assert.equal(broken.voidLookups, 1);
  assert.match(broken.terms[0]!.note ?? '', /does not exist/);
});

test('a record given as text, and the cost of one term', async () => {
  assert.equal((await lookupBudget(zone, 'new.example', 'v=spf1 include:_a.example include:_b.example -all'))!.used, 5);
  assert.deepEqual(await termCost(zone, 'new.example', 'include:_a.example'), { cost: 4, voidLookups: 2 });
  assert.deepEqual(await termCost(zone, 'new.example', 'ip4:192.0.2.1'), { cost: 0, voidLookups: 0 });
  assert.equal(await lookupBudget(zone, 'new.example', 'not spf'), undefined);
  assert.equal(await lookupBudget(zone, 'nothing.example'), undefined);
});

test('through the caching resolver a target with two SPF records is a broken include, not a void lookup', async () => {
  // The cache keeps none of two SPF records, only their count (src/dns/txt-bound.ts).
  const twoRecords = new ZoneResolver({
    'two.example': [{ TXT: 'v=spf1 include:dup.example -all' }],
    'dup.example': [{ TXT: 'v=spf1 ip4:192.0.2.1 -all' }, { TXT: 'v=spf1 ip4:192.0.2.2 -all' }],
  });
  const cached = new CachingResolver(twoRecords);
  const b = (await lookupBudget(cached, 'two.example'))!;
  assert.equal(b.used, 1);
  assert.equal(b.voidLookups, 0);
  assert.match(b.terms[0]!.note ?? '', /publishes 2 SPF records/);
  cached.close();
});
