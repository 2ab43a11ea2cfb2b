import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DnsError } from '../../src/dns/types.js';
import { ZoneResolver } from '../support/spf/zone-resolver.js';

const zone = new ZoneResolver({
  'Spf.Example.com.': [{ SPF: 'v=spf1 -all' }, { A: '192.0.2.1' }],
  'both.example.com': [{ SPF: 'v=spf1 +all' }, { TXT: 'v=spf1 -all' }],
  'none.example.com': [{ SPF: 'v=spf1 -all' }, { TXT: 'NONE' }],
  'multi.example.com': [{ TXT: ['v=spf1 ', 'ip4:192.0.2.1'] }, { SPF: [] }],
  'slow.example.com': [{ TXT: 'v=spf1 -all' }, 'TIMEOUT'],
  'slowcopy.example.com': [{ SPF: 'v=spf1 -all' }, { TXT: 'NONE' }, 'TIMEOUT'],
  'alias.example.com': [{ CNAME: 'spf.example.com.' }],
  'loop.example.com': [{ CNAME: 'LOOP.example.com.' }],
  'mx.example.com': [{ MX: [10, 'mail.example.com.'] }, { MX: [0, ''] }, { AAAA: 'CAFE:BABE:0::1' }],
  'ptr.example.com': [{ PTR: 'Host.Example.com.' }],
  'sf.example.com': [{ RCODE: 2 }],
  'ref.example.com': [{ A: '192.0.2.9' }, { RCODE: 5 }],
});

test('names are case-insensitive; NXDOMAIN vs NODATA', async () => {
  assert.deepEqual(await zone.lookup('SPF.example.COM', 'A'), { records: ['192.0.2.1'], nxdomain: false, ttl: 3600 });
  assert.equal((await zone.lookup('spf.example.com', 'MX')).nxdomain, false);
  assert.equal((await zone.lookup('nowhere.example.com', 'A')).nxdomain, true);
});

test('SPF entries are served as TXT unless the name has any TXT entry', async () => {
  assert.deepEqual((await zone.lookup('spf.example.com', 'TXT')).records, [['v=spf1 -all']]);
  assert.deepEqual((await zone.lookup('both.example.com', 'TXT')).records, [['v=spf1 -all']]);
  assert.deepEqual((await zone.lookup('none.example.com', 'TXT')).records, []);
  assert.deepEqual((await zone.lookup('multi.example.com', 'TXT')).records, [['v=spf1 ', 'ip4:192.0.2.1']]);
});

test('TIMEOUT and RCODE fail the types without an earlier record', async () => {
  assert.equal((await zone.lookup('slow.example.com', 'TXT')).records.length, 1);
  await assert.rejects(zone.lookup('slow.example.com', 'A'), (e: unknown) => e instanceof DnsError && e.code === 'TIMEOUT');
  await assert.rejects(zone.lookup('slowcopy.example.com', 'TXT'), (e: unknown) => e instanceof DnsError && e.code === 'TIMEOUT');
  await assert.rejects(zone.lookup('sf.example.com', 'TXT'), (e: unknown) => e instanceof DnsError && e.code === 'SERVFAIL');
  assert.deepEqual((await zone.lookup('ref.example.com', 'A')).records, ['192.0.2.9']);
  await assert.rejects(zone.lookup('ref.example.com', 'TXT'), (e: unknown) => e instanceof DnsError && e.code === 'REFUSED');
});

test('CNAME is followed; a loop is SERVFAIL', async () => {
  assert.deepEqual((await zone.lookup('alias.example.com', 'TXT')).records, [['v=spf1 -all']]);
  await assert.rejects(zone.lookup('loop.example.com', 'A'), (e: unknown) => e instanceof DnsError && e.code === 'SERVFAIL');
});

test('values: MX pairs, PTR and AAAA normalised; unsendable names are BADNAME', async () => {
  assert.deepEqual((await zone.lookup('mx.example.com', 'MX')).records, [
    { priority: 10, exchange: 'mail.example.com' },
    { priority: 0, exchange: '' },
  ]);
  assert.deepEqual((await zone.lookup('mx.example.com', 'AAAA')).records, ['cafe:babe::1']);
  assert.deepEqual((await zone.lookup('ptr.example.com', 'PTR')).records, ['Host.Example.com']);
  for (const bad of ['a..example.com', `${'x'.repeat(64)}.example.com`, `${'abcdefgh.'.repeat(29)}com`, '']) {
    await assert.rejects(zone.lookup(bad, 'A'), (e: unknown) => e instanceof DnsError && e.code === 'BADNAME');
  }
  assert.equal(zone.queries.at(-1)?.type, 'A');
  assert.ok(zone.queryCount > 15);
});
