// The stub resolver and cache against a real Knot DNS server on loopback.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { knotSkipReason, startKnot, type KnotInstance } from '../support/knot.js';
import { StubResolver } from '../../src/dns/stub-resolver.js';
import { CachingResolver } from '../../src/dns/index.js';
import { DnsError } from '../../src/dns/types.js';

const zonesDir = fileURLToPath(new URL('../../../test/data/dns/', import.meta.url));
const isDnsError = (code: string) => (e: unknown) => e instanceof DnsError && e.code === code;

describe('DNS against Knot', { skip: knotSkipReason() }, () => {
  let knot: KnotInstance;
  let stub: StubResolver;

  before(async () => {
    knot = await startKnot({ zonesDir, timeoutNames: ['hang.dns-it.test'], servfailZones: ['broken.test'], blackholeTimeoutMs: 2000 });
    stub = new StubResolver({ servers: [{ host: knot.host, port: knot.port }], timeoutMs: 3000, retries: 2 });
  });
  after(async () => {
    await knot?.close();
  });

  test('a TXT record split into several strings keeps its strings', async () => {
    const r = await stub.lookup('split.dns-it.test', 'TXT');
    assert.deepEqual(r.records, [['v=spf1 ip4:192.0.2.0/24 ', 'ip6:2001:db8::/32 ', '-all']]);
    assert.equal(r.ttl, 300);
  });

  test('a CNAME to a TXT record is followed', async () => {
    const r = await stub.lookup('ALIAS.dns-it.test.', 'TXT');
    assert.deepEqual(r.records, [['v=spf1 ip4:192.0.2.0/24 ', 'ip6:2001:db8::/32 ', '-all']]);
  });

  test('TXT octets are decoded one char per octet', async () => {
    assert.deepEqual((await stub.lookup('latin1.dns-it.test', 'TXT')).records, [['caf\u00e9']]);
  });

  test('answers larger than 1232 octets arrive over TCP after a truncated UDP answer', async () => {
    const before = { ...stub.stats };
    const tcpBefore = (await knot.stats())['mod-stats.request-protocol[tcp4]'] ?? 0;
    const many = await stub.lookup('many.dns-it.test', 'TXT');
    assert.equal(many.records.length, 40);
    assert.ok(many.records.some((r) => r[0] === `record 17 ${'x'.repeat(50)}`));
    const long = await stub.lookup('long.dns-it.test', 'TXT');
    assert.equal(long.records.length, 1);
    assert.equal(long.records[0].length, 6);
    assert.equal(long.records[0].join('').length, 1500);
    assert.equal(stub.stats.truncated - before.truncated, 2);
    assert.equal(stub.stats.tcpQueries - before.tcpQueries, 2);
    const tcpAfter = (await knot.stats())['mod-stats.request-protocol[tcp4]'] ?? 0;
    assert.equal(tcpAfter - tcpBefore, 2, 'Knot saw the two TCP queries');
  });

  test('NXDOMAIN and NODATA are told apart and carry the SOA negative TTL', async () => {
    assert.deepEqual(await stub.lookup('nothere.dns-it.test', 'TXT'), { records: [], nxdomain: true, ttl: 120 });
    assert.deepEqual(await stub.lookup('nodata.dns-it.test', 'TXT'), { records: [], nxdomain: false, ttl: 120 });
  });

  test('MX, A, AAAA and PTR records', async () => {
    const mx = await stub.lookup('dns-it.test', 'MX');
    assert.deepEqual(
      [...mx.records].sort((a, b) => a.priority - b.priority),
      [
        { priority: 10, exchange: 'mail.dns-it.test' },
        { priority: 20, exchange: 'backup.other.test' },
      ],
    );
    assert.deepEqual((await stub.lookup('mail.dns-it.test', 'A')).records, ['192.0.2.25']);
    assert.deepEqual((await stub.lookup('mail.dns-it.test', 'AAAA')).records, ['2001:db8::25']);
    assert.deepEqual((await stub.lookup('25.2.0.192.in-addr.arpa', 'PTR')).records, ['mail.dns-it.test']);
    assert.deepEqual((await stub.lookup('26.2.0.192.in-addr.arpa', 'PTR')).records.sort(), ['first.dns-it.test', 'second.dns-it.test']);
  });

  test('a zone Knot failed to load answers SERVFAIL', async () => {
    await assert.rejects(stub.lookup('www.broken.test', 'A'), isDnsError('SERVFAIL'));
  });

  test('the cache answers repeats without asking Knot, shares concurrent queries, keeps negatives', async () => {
    const resolver = new CachingResolver(new StubResolver({ servers: [{ host: knot.host, port: knot.port }], timeoutMs: 3000 }));
    const start = await knot.queryCount();
    const [a, b, c] = await Promise.all([
      resolver.lookup('split.dns-it.test', 'TXT'),
      resolver.lookup('split.dns-it.test', 'TXT'),
      resolver.lookup('Split.DNS-IT.test.', 'TXT'),
    ]);
    assert.equal(a, b);
    assert.equal(a, c);
    await resolver.lookup('split.dns-it.test', 'TXT');
    assert.equal((await resolver.lookup('nothere.dns-it.test', 'A')).nxdomain, true);
    assert.equal((await resolver.lookup('nothere.dns-it.test', 'A')).nxdomain, true);
    assert.equal((await knot.queryCount()) - start, 2, 'one query per distinct question');
    assert.equal(resolver.stats().inflightJoins, 2);
    assert.equal(resolver.stats().hits, 2);
  });

  test('Knot restarted on the same port answers again', async () => {
    await knot.stop();
    await assert.rejects(new StubResolver({ servers: [{ host: knot.host, port: knot.port }], timeoutMs: 300, retries: 0 }).lookup('dns-it.test', 'MX'), DnsError);
    await knot.start();
    assert.equal((await stub.lookup('dns-it.test', 'MX')).records.length, 2);
  });

  // Last: each timed-out query keeps one Knot worker busy until the proxy gives up.
  test('a name that never gets an answer times out', async () => {
    const quick = new StubResolver({ servers: [{ host: knot.host, port: knot.port }], timeoutMs: 400, retries: 1 });
    await assert.rejects(quick.lookup('x.hang.dns-it.test', 'TXT'), isDnsError('TIMEOUT'));
    assert.equal(quick.stats.timeouts, 2);
    // Other names keep working meanwhile.
    assert.equal((await stub.lookup('mail.dns-it.test', 'A')).records[0], '192.0.2.25');
  });
});
