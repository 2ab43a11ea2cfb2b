// DMARC policy discovery and alignment through the production DNS path (stub resolver and the
// byte-bounded cache) against a real Knot DNS on loopback.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { knotSkipReason, startKnot, type KnotInstance } from '../support/knot.js';
import { StubResolver } from '../../src/dns/stub-resolver.js';
import { CachingResolver, type LookupOptions, type Resolver, type RRType } from '../../src/dns/index.js';
import { aligns, discoverPolicy, organizationalDomain, type Discovery } from '../../src/dmarc/index.js';

const zonesDir = fileURLToPath(new URL('../../../test/data/dns/dmarc/', import.meta.url));

/** Counts the lookups that pass through. */
class Counting implements Resolver {
  names: string[] = [];
  constructor(private readonly inner: Resolver) {}
  lookup<T extends RRType>(name: string, type: T, options?: LookupOptions) {
    this.names.push(`${type} ${name}`);
    return this.inner.lookup(name, type, options);
  }
}

const found = (d: Discovery) => {
  assert.equal(d.status, 'found', JSON.stringify(d));
  return d as Extract<Discovery, { status: 'found' }>;
};

describe('DMARC against Knot', { skip: knotSkipReason() }, () => {
  let knot: KnotInstance;
  let cache: CachingResolver;

  before(async () => {
    knot = await startKnot({ zonesDir, servfailZones: ['broken.test'] });
    const stub = new StubResolver({ servers: [{ host: knot.host, port: knot.port }], timeoutMs: 3000, retries: 2 });
    cache = new CachingResolver(stub, { purgeIntervalMs: 60_000 });
  });
  after(async () => {
    cache?.close();
    await knot?.close();
  });

  test('policy at the domain itself: p applies, one query', async () => {
    const counting = new Counting(cache);
    const d = found(await discoverPolicy(counting, 'reject.test'));
    assert.equal(d.recordDomain, 'reject.test');
    assert.equal(d.appliedTag, 'p');
    assert.equal(d.policy, 'reject');
    assert.equal(d.disposition, 'reject');
    assert.ok(d.record.hasRua);
    assert.deepEqual(counting.names, ['TXT _dmarc.reject.test']);
  });

  test('policy at an ancestor: sp for an existing subdomain, np for a non-existent one', async () => {
    const sub = found(await discoverPolicy(cache, 'sub.org.test'));
    assert.equal(sub.recordDomain, 'org.test');
    assert.equal(sub.appliedTag, 'sp');
    assert.equal(sub.policy, 'reject');
    const ghost = found(await discoverPolicy(cache, 'ghost.org.test'));
    assert.equal(ghost.appliedTag, 'np');
    assert.equal(ghost.policy, 'quarantine');
    const own = found(await discoverPolicy(cache, 'org.test'));
    assert.equal(own.appliedTag, 'p');
    assert.equal(own.policy, 'none');
    const ponly = found(await discoverPolicy(cache, 'sub.ponly.test'));
    assert.equal(ponly.appliedTag, 'p');
    assert.equal(ponly.policy, 'quarantine');
  });

  test('no policy on the whole path: none, after asking every name up to the TLD', async () => {
    const counting = new Counting(cache);
    const d = await discoverPolicy(counting, 'a.nopolicy.test');
    assert.equal(d.status, 'none');
    assert.deepEqual(counting.names, ['TXT _dmarc.a.nopolicy.test', 'TXT _dmarc.nopolicy.test', 'TXT _dmarc.test']);
    assert.deepEqual(
      d.steps.map((s) => s.outcome),
      ['nxdomain', 'nxdomain', 'nxdomain'],
    );
  });

  test('a name of eleven labels is walked in at most eight queries, jumping to seven labels', async () => {
    const counting = new Counting(cache);
    const d = found(await discoverPolicy(counting, 'l1.l2.l3.l4.l5.l6.l7.l8.l9.deep.test'));
    assert.equal(d.recordDomain, 'deep.test');
    assert.equal(d.appliedTag, 'p'); // sp absent, np absent: p
    assert.ok(counting.names.filter((n) => n.startsWith('TXT')).length <= 8);
    assert.deepEqual(counting.names.slice(0, 2), ['TXT _dmarc.l1.l2.l3.l4.l5.l6.l7.l8.l9.deep.test', 'TXT _dmarc.l5.l6.l7.l8.l9.deep.test']);
  });

  test('psd=y: the public suffix domain policy applies, and its children are organizational domains', async () => {
    const d = found(await discoverPolicy(cache, 'cust1.psd.test'));
    assert.equal(d.recordDomain, 'psd.test');
    assert.equal(d.policy, 'reject');
    const org = await organizationalDomain(cache, 'mail.cust1.psd.test');
    assert.deepEqual(org.status === 'found' && org.orgDomain, 'cust1.psd.test');
    assert.deepEqual(await aligns(cache, 'cust1.psd.test', 'cust2.psd.test', 'r'), { aligned: false, mode: 'r', orgDomains: ['cust1.psd.test', 'cust2.psd.test'] });
    assert.equal((await aligns(cache, 'cust1.psd.test', 'mail.cust1.psd.test', 'r')).aligned, true);
  });

  test('psd=n names the organizational domain even below another record', async () => {
    const org = await organizationalDomain(cache, 'a.unit.corp.test');
    assert.equal(org.status === 'found' && org.orgDomain, 'unit.corp.test');
    assert.equal((await aligns(cache, 'a.unit.corp.test', 'b.unit.corp.test', 'r')).aligned, true);
    assert.equal((await aligns(cache, 'a.unit.corp.test', 'corp.test', 'r')).aligned, false);
  });

  test('several DMARC records at a name count as none; the walk goes on to the parent', async () => {
    assert.equal((await discoverPolicy(cache, 'several.test')).status, 'none');
    const d = found(await discoverPolicy(cache, 'two.parent2.test'));
    assert.equal(d.recordDomain, 'parent2.test');
    assert.equal(d.steps[0].outcome, 'several');
  });

  test('a DMARC record beside an unrelated TXT record survives the cache bound', async () => {
    assert.equal(found(await discoverPolicy(cache, 'mixed.test')).policy, 'reject');
  });

  test('invalid tags are ignored, an invalid p reads as none, invalid records are discarded', async () => {
    const bad = found(await discoverPolicy(cache, 'badtags.test'));
    assert.equal(bad.policy, 'reject');
    assert.equal(bad.record.adkim, 'r');
    assert.equal(bad.record.pct, 100);
    assert.equal(bad.record.problems.length, 2);
    const badp = found(await discoverPolicy(cache, 'badp.test'));
    assert.equal(badp.policy, 'none');
    assert.equal(badp.record.pValid, false);
    assert.equal(found(await discoverPolicy(cache, 'nop.test')).policy, 'none');
    for (const name of ['notfirst.test', 'lowerversion.test']) assert.equal((await discoverPolicy(cache, name)).status, 'none', name);
    const syntax = await discoverPolicy(cache, 'syntax.test');
    assert.equal(syntax.status, 'none');
    assert.equal(syntax.steps[0].outcome, 'invalid');
    const spaces = found(await discoverPolicy(cache, 'spaces.test'));
    assert.equal(spaces.policy, 'reject');
    assert.equal(spaces.record.sp, 'none');
  });

  test('a TXT record split into character-strings is read as one text', async () => {
    const d = found(await discoverPolicy(cache, 'split.test'));
    assert.equal(d.policy, 'reject');
    assert.equal(d.record.adkim, 's');
    assert.equal(d.record.aspf, 's');
  });

  test('pct=0 and t=y weaken the disposition by one step; pct=50 does not', async () => {
    assert.equal(found(await discoverPolicy(cache, 'pct0.test')).disposition, 'quarantine');
    assert.equal(found(await discoverPolicy(cache, 'testing.test')).disposition, 'none');
    assert.equal(found(await discoverPolicy(cache, 'pct50.test')).disposition, 'reject');
  });

  test('a CNAME at _dmarc is followed', async () => {
    assert.equal(found(await discoverPolicy(cache, 'alias.test')).policy, 'reject');
  });

  test('SERVFAIL on the path is a temperror', async () => {
    const d = await discoverPolicy(cache, 'x.broken.test');
    assert.equal(d.status, 'temperror');
    assert.equal((await aligns(cache, 'x.broken.test', 'y.broken.test', 'r')).aligned, 'temperror');
  });

  test('alignment: relaxed shares the organizational domain, strict needs the same name', async () => {
    assert.equal((await aligns(cache, 'sub.org.test', 'bounce.org.test', 'r')).aligned, true);
    assert.equal((await aligns(cache, 'sub.org.test', 'bounce.org.test', 's')).aligned, false);
    assert.equal((await aligns(cache, 'Reject.test.', 'reject.test', 's')).aligned, true);
    assert.equal((await aligns(cache, 'reject.test', 'bounce.esp.example', 'r')).aligned, false);
    // No record anywhere: each name is its own organizational domain.
    assert.equal((await aligns(cache, 'a.nopolicy.test', 'nopolicy.test', 'r')).aligned, false);
  });
});
