import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CachingResolver } from '../../src/dns/cache.js';
import { DnsError, type LookupResult, type RecordTypeMap, type Resolver, type RRType } from '../../src/dns/types.js';
import { SpfEvaluator } from '../../src/spf/index.js';

/** TXT records and TTLs by name; counts the questions that reach it. */
class Zone implements Resolver {
  calls: string[] = [];
  constructor(readonly records: Record<string, { txt: string[]; ttl: number } | 'servfail'>) {}
  async lookup<T extends RRType>(name: string, type: T): Promise<LookupResult<RecordTypeMap[T]>> {
    this.calls.push(`${type} ${name}`);
    const r = this.records[name.toLowerCase()];
    if (r === 'servfail') throw new DnsError('SERVFAIL', name, type, 'server failure');
    const out = r ? { records: r.txt.map((t) => [t]), nxdomain: false, ttl: r.ttl } : { records: [], nxdomain: true, ttl: 300 };
    return out as LookupResult<RecordTypeMap[T]>;
  }
}

function setup(records: ConstructorParameters<typeof Zone>[0]) {
  let t = 1_000_000;
  const zone = new Zone(records);
  const cache = new CachingResolver(zone, { minTtl: 0, now: () => t });
  return { zone, cache, spf: new SpfEvaluator({ resolver: cache }), advance: (s: number) => (t += s * 1000) };
}

test('effectiveRecordNow knows nothing before the first walk, then the same record without a lookup', async () => {
  const { zone, spf } = setup({ 'own.test': { txt: ['v=spf1 include:_spf.esp.test -all'], ttl: 60 } });
  assert.equal(spf.effectiveRecordNow('own.test'), undefined);
  const walked = await spf.effectiveRecord('own.test');
  assert.equal(walked.status, 'found');
  assert.equal(spf.effectiveRecordNow('own.test'), walked);
  assert.equal(spf.effectiveRecordNow('own.test.'), walked, 'the same domain, root-anchored');
  assert.equal(await spf.effectiveRecord('own.test'), walked);
  assert.deepEqual(zone.calls, ['TXT own.test']);
});

test('a remembered record ends with the DNS answer behind it: TTL, eviction, a new answer', async () => {
  const { zone, cache, spf, advance } = setup({ 'a.test': { txt: ['v=spf1 -all'], ttl: 60 } });
  const first = await spf.effectiveRecord('a.test');
  advance(59);
  assert.equal(spf.effectiveRecordNow('a.test'), first);
  advance(2);
  assert.equal(spf.effectiveRecordNow('a.test'), undefined, 'the answer expired');

  zone.records['a.test'] = { txt: ['v=spf1 ip4:192.0.2.1 -all'], ttl: 60 };
  const second = await spf.effectiveRecord('a.test');
  assert.equal(second.text, 'v=spf1 ip4:192.0.2.1 -all', 'the walk asked again');
  assert.equal(spf.effectiveRecordNow('a.test'), second);
  cache.clear();
  assert.equal(spf.effectiveRecordNow('a.test'), undefined, 'the cache dropped the answer');
  assert.deepEqual(zone.calls, ['TXT a.test', 'TXT a.test']);
});

test('a redirect chain is remembered only while every answer on it is cached', async () => {
  const { zone, spf, advance } = setup({
    'from.test': { txt: ['v=spf1 redirect=to.test'], ttl: 600 },
    'to.test': { txt: ['v=spf1 include:_spf.esp.test -all'], ttl: 30 },
  });
  const walked = await spf.effectiveRecord('from.test');
  assert.equal(walked.domain, 'to.test');
  assert.deepEqual(walked.chain.map((l) => l.domain), ['from.test', 'to.test']);
  assert.equal(spf.effectiveRecordNow('from.test'), walked);
  advance(31);
  assert.equal(spf.effectiveRecordNow('from.test'), undefined, "the target's shorter TTL ended it");
  zone.records['to.test'] = { txt: ['v=spf1 ?all'], ttl: 30 };
  assert.equal((await spf.effectiveRecord('from.test')).text, 'v=spf1 ?all');
  assert.deepEqual(zone.calls, ['TXT from.test', 'TXT to.test', 'TXT to.test']);
});

test('answers that are not records are remembered too; failed lookups are not', async () => {
  const { spf } = setup({ 'two.test': { txt: ['v=spf1 -all', 'v=spf1 ~all'], ttl: 60 }, 'down.test': 'servfail' });
  const none = await spf.effectiveRecord('nxdomain.test');
  assert.equal(none.status, 'none');
  assert.equal(spf.effectiveRecordNow('nxdomain.test'), none);
  const two = await spf.effectiveRecord('two.test');
  assert.equal(two.status, 'permerror');
  assert.equal(spf.effectiveRecordNow('two.test'), two);
  assert.equal((await spf.effectiveRecord('down.test')).status, 'temperror');
  assert.equal(spf.effectiveRecordNow('down.test'), undefined, 'a temporary error is asked again');
});

test('without a cache in front there is nothing to remember', async () => {
  const zone = new Zone({ 'a.test': { txt: ['v=spf1 -all'], ttl: 60 } });
  const spf = new SpfEvaluator({ resolver: zone });
  await spf.effectiveRecord('a.test');
  assert.equal(spf.effectiveRecordNow('a.test'), undefined);
  await spf.effectiveRecord('a.test');
  assert.equal(zone.calls.length, 2);
});
