import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { CachingResolver, entryBytes } from '../../src/dns/cache.js';
import { DnsError, type LookupResult, type RecordTypeMap, type Resolver, type RRType } from '../../src/dns/types.js';
import { sleep, waitFor } from '../support/wait.js';

type Script = (name: string, type: RRType) => LookupResult<unknown> | DnsError;

/** Counts calls; answers from the script, after `delayMs` so that concurrent lookups overlap. */
class FakeUpstream implements Resolver {
  calls: string[] = [];
  constructor(
    private script: Script,
    private delayMs = 0,
  ) {}
  async lookup<T extends RRType>(name: string, type: T): Promise<LookupResult<RecordTypeMap[T]>> {
    this.calls.push(`${type} ${name}`);
    if (this.delayMs > 0) await sleep(this.delayMs);
    const out = this.script(name, type);
    if (out instanceof DnsError) throw out;
    return out as LookupResult<RecordTypeMap[T]>;
  }
}

function clock(start = 1_000_000): { now: () => number; advance: (s: number) => void } {
  let t = start;
  return { now: () => t, advance: (s) => (t += s * 1000) };
}

const txt = (ttl: number): LookupResult<unknown> => ({ records: [['v=spf1 -all']], nxdomain: false, ttl });

test('serves from cache until the TTL expires', async () => {
  const up = new FakeUpstream(() => txt(60));
  const c = clock();
  const cache = new CachingResolver(up, { minTtl: 0, now: c.now });
  const first = await cache.lookup('Example.COM.', 'TXT');
  assert.deepEqual(first.records, [['v=spf1 -all']]);
  c.advance(59);
  assert.equal(await cache.lookup('example.com', 'TXT'), first, 'same name in other case/trailing dot is a hit');
  assert.equal(up.calls.length, 1);
  c.advance(1.001); // an entry is fresh for its whole TTL
  await cache.lookup('example.com', 'TXT');
  assert.equal(up.calls.length, 2);
  const { hits, misses, upstreamQueries, inflightJoins, evictions } = cache.stats();
  assert.deepEqual({ hits, misses, upstreamQueries, inflightJoins, evictions }, { hits: 1, misses: 2, upstreamQueries: 2, inflightJoins: 0, evictions: 0 });
});

test('types are cached separately', async () => {
  const up = new FakeUpstream((_n, t) => (t === 'A' ? { records: ['192.0.2.1'], nxdomain: false, ttl: 60 } : txt(60)));
  const cache = new CachingResolver(up);
  assert.deepEqual((await cache.lookup('x.test', 'A')).records, ['192.0.2.1']);
  assert.deepEqual((await cache.lookup('x.test', 'TXT')).records, [['v=spf1 -all']]);
  assert.equal(up.calls.length, 2);
});

test('TTLs are clamped to [minTtl, maxTtl]', async () => {
  const ttls: Record<string, number> = { 'zero.test': 0, 'huge.test': 10 ** 7 };
  const up = new FakeUpstream((n) => txt(ttls[n]));
  const c = clock();
  const cache = new CachingResolver(up, { minTtl: 10, maxTtl: 100, now: c.now });
  assert.equal((await cache.lookup('zero.test', 'TXT')).ttl, 10);
  assert.equal((await cache.lookup('huge.test', 'TXT')).ttl, 100);
  c.advance(9);
  await cache.lookup('zero.test', 'TXT');
  assert.equal(up.calls.length, 2, 'TTL 0 raised to minTtl is still cached');
  c.advance(1.001); // an entry is fresh for its whole TTL
  await cache.lookup('zero.test', 'TXT');
  assert.equal(up.calls.length, 3);
  c.advance(89);
  await cache.lookup('huge.test', 'TXT');
  assert.equal(up.calls.length, 3);
  c.advance(1.001); // an entry is fresh for its whole TTL
  await cache.lookup('huge.test', 'TXT');
  assert.equal(up.calls.length, 4, 'huge TTL lowered to maxTtl');
});

test('minTtl 0 with TTL 0 does not cache', async () => {
  const up = new FakeUpstream(() => txt(0));
  const cache = new CachingResolver(up, { minTtl: 0 });
  await cache.lookup('a.test', 'TXT');
  await cache.lookup('a.test', 'TXT');
  assert.equal(up.calls.length, 2);
  assert.equal(cache.size, 0);
});

test('negative answers (NXDOMAIN and NODATA) are cached for their TTL', async () => {
  const up = new FakeUpstream((n) => ({ records: [], nxdomain: n === 'gone.test', ttl: 30 }));
  const c = clock();
  const cache = new CachingResolver(up, { minTtl: 0, now: c.now });
  assert.equal((await cache.lookup('gone.test', 'TXT')).nxdomain, true);
  assert.equal((await cache.lookup('empty.test', 'TXT')).nxdomain, false);
  c.advance(29);
  assert.equal((await cache.lookup('gone.test', 'TXT')).nxdomain, true);
  assert.deepEqual((await cache.lookup('empty.test', 'TXT')).records, []);
  assert.equal(up.calls.length, 2);
  c.advance(1.001); // an entry is fresh for its whole TTL
  await cache.lookup('gone.test', 'TXT');
  assert.equal(up.calls.length, 3);
});

test('concurrent identical lookups share one upstream query', async () => {
  const up = new FakeUpstream(() => txt(60), 20);
  const cache = new CachingResolver(up);
  const results = await Promise.all([1, 2, 3, 4, 5].map(() => cache.lookup('shared.test', 'TXT')));
  assert.equal(up.calls.length, 1);
  for (const r of results) assert.equal(r, results[0]);
  assert.equal(cache.stats().inflightJoins, 4);
  assert.equal(cache.stats().upstreamQueries, 1);
});

test('concurrent lookups share a failure too, and the in-flight slot is freed', async () => {
  let fail = true;
  const up = new FakeUpstream((n, t) => (fail ? new DnsError('SERVFAIL', n, t) : txt(60)), 10);
  const cache = new CachingResolver(up, { errorTtl: 0 });
  const settled = await Promise.allSettled([cache.lookup('f.test', 'TXT'), cache.lookup('f.test', 'TXT')]);
  for (const s of settled) assert.ok(s.status === 'rejected' && s.reason instanceof DnsError && s.reason.code === 'SERVFAIL');
  assert.equal(up.calls.length, 1);
  fail = false;
  assert.deepEqual((await cache.lookup('f.test', 'TXT')).records, [['v=spf1 -all']]);
  assert.equal(up.calls.length, 2);
});

test('an upstream that throws synchronously does not leave a stale in-flight entry', async () => {
  let n = 0;
  const up: Resolver = {
    lookup(name, type) {
      n++;
      if (n === 1) throw new DnsError('NETWORK', name, type);
      return Promise.resolve({ records: [], nxdomain: true, ttl: 60 });
    },
  };
  const cache = new CachingResolver(up, { errorTtl: 0 });
  await assert.rejects(cache.lookup('s.test', 'A'), (e: unknown) => e instanceof DnsError && e.code === 'NETWORK');
  assert.equal((await cache.lookup('s.test', 'A')).nxdomain, true);
});

test('temporary errors are remembered for errorTtl, then retried', async () => {
  const up = new FakeUpstream((n, t) => new DnsError('TIMEOUT', n, t));
  const c = clock();
  const cache = new CachingResolver(up, { errorTtl: 3, now: c.now });
  for (let i = 0; i < 3; i++) {
    await assert.rejects(cache.lookup('down.test', 'TXT'), (e: unknown) => e instanceof DnsError && e.code === 'TIMEOUT');
  }
  assert.equal(up.calls.length, 1);
  c.advance(3.001);
  await assert.rejects(cache.lookup('down.test', 'TXT'), DnsError);
  assert.equal(up.calls.length, 2);
});

test('errorTtl 0 disables error caching', async () => {
  const up = new FakeUpstream((n, t) => new DnsError('SERVFAIL', n, t));
  const cache = new CachingResolver(up, { errorTtl: 0 });
  await assert.rejects(cache.lookup('down.test', 'TXT'), DnsError);
  await assert.rejects(cache.lookup('down.test', 'TXT'), DnsError);
  assert.equal(up.calls.length, 2);
});

test('BADNAME is rejected before any upstream query and not cached', async () => {
  const up = new FakeUpstream(() => txt(60));
  const cache = new CachingResolver(up);
  const long = 'a'.repeat(64) + '.test';
  await assert.rejects(cache.lookup(long, 'TXT'), (e: unknown) => e instanceof DnsError && e.code === 'BADNAME' && !e.temporary);
  await assert.rejects(cache.lookup('a..test', 'TXT'), (e: unknown) => e instanceof DnsError && e.code === 'BADNAME');
  assert.equal(up.calls.length, 0);
  assert.equal(cache.size, 0);
});

/** Bytes of one cached `txt(…)` answer under a name like 'a.test'. */
const ONE = entryBytes('TXT a.test', txt(600));

test('bytes are bounded and the least recently used entry is evicted first', async () => {
  const up = new FakeUpstream(() => txt(600));
  const cache = new CachingResolver(up, { maxBytes: Math.floor(ONE * 2.5), maxEntryBytes: ONE });
  await cache.lookup('a.test', 'TXT');
  await cache.lookup('b.test', 'TXT');
  await cache.lookup('a.test', 'TXT'); // a is now the most recently used
  await cache.lookup('c.test', 'TXT'); // evicts b
  assert.equal(cache.size, 2);
  assert.equal(cache.stats().evictions, 1);
  assert.equal(cache.stats().bytes, 2 * ONE);
  assert.equal(up.calls.length, 3);
  await cache.lookup('a.test', 'TXT');
  assert.equal(up.calls.length, 3, 'a survived');
  await cache.lookup('b.test', 'TXT');
  assert.equal(up.calls.length, 4, 'b was evicted');
});

test('invalid options are refused', () => {
  const up = new FakeUpstream(() => txt(1));
  assert.throws(() => new CachingResolver(up, { minTtl: 10, maxTtl: 5 }), RangeError);
  assert.throws(() => new CachingResolver(up, { maxBytes: 0 }), RangeError);
  assert.throws(() => new CachingResolver(up, { maxBytes: 1.5e6 + 0.5 }), RangeError);
  assert.throws(() => new CachingResolver(up, { maxBytes: 10_000, maxEntryBytes: 20_000 }), RangeError);
  assert.throws(() => new CachingResolver(up, { errorTtl: -1 }), RangeError);
  assert.throws(() => new CachingResolver(up, { purgeIntervalMs: 0 }), RangeError);
});

test('LRU order spans record types; clear() empties the cache', async () => {
  const addr = { records: ['192.0.2.1'], nxdomain: false, ttl: 600 };
  const up = new FakeUpstream((_n, t) => (t === 'TXT' ? txt(600) : addr));
  const sizes = [entryBytes('TXT a.test', txt(600)), entryBytes('A a.test', addr), entryBytes('A b.test', addr)];
  const cache = new CachingResolver(up, { maxBytes: sizes[0] + sizes[1] + sizes[2] + 10, maxEntryBytes: 1000 });
  await cache.lookup('a.test', 'TXT');
  await cache.lookup('a.test', 'A');
  await cache.lookup('b.test', 'A');
  await cache.lookup('a.test', 'TXT'); // oldest is now A a.test
  await cache.lookup('c.test', 'AAAA');
  assert.equal(cache.stats().evictions, 1);
  await cache.lookup('a.test', 'TXT');
  await cache.lookup('b.test', 'A');
  assert.equal(up.calls.length, 4);
  await cache.lookup('a.test', 'A');
  assert.equal(up.calls.length, 5, 'A a.test was the one evicted');
  cache.clear();
  assert.equal(cache.size, 0);
  await cache.lookup('a.test', 'TXT');
  assert.equal(up.calls.length, 6);
});

test('stats() counts entries and their estimated bytes; bytes never pass maxBytes', async () => {
  const up = new FakeUpstream((n) => ({ records: [[`v=spf1 ip4:192.0.2.${n.length}/32 -all`]], nxdomain: false, ttl: 600 }));
  const maxBytes = 64 * 1024;
  const cache = new CachingResolver(up, { maxBytes });
  let expected = 0;
  for (let i = 0; i < 20; i++) {
    const r = await cache.lookup(`n${i}.test`, 'TXT');
    expected += entryBytes(`TXT n${i}.test`, r);
  }
  assert.equal(cache.stats().entries, 20);
  assert.equal(cache.stats().bytes, expected);
  for (let i = 20; i < 2000; i++) {
    await cache.lookup(`n${i}.test`, 'TXT');
    assert.ok(cache.stats().bytes <= maxBytes);
  }
  const s = cache.stats();
  assert.ok(s.evictions > 0 && s.entries < 2000 && s.bytes > maxBytes * 0.9, JSON.stringify(s));
  assert.equal(s.maxBytes, maxBytes);
  cache.close();
});

test('an answer larger than maxEntryBytes is returned but not kept', async () => {
  const many = { records: Array.from({ length: 500 }, (_, k) => `10.0.${k >> 8}.${k & 255}`), nxdomain: false, ttl: 600 };
  const up = new FakeUpstream(() => many);
  const cache = new CachingResolver(up, { maxBytes: 64 * 1024, maxEntryBytes: 8 * 1024 });
  assert.equal((await cache.lookup('big.test', 'A')).records.length, 500);
  assert.equal(cache.stats().entries, 0);
  await cache.lookup('big.test', 'A');
  assert.equal(up.calls.length, 2);
});

test('expired entries are dropped by the purge timer without being asked for', async () => {
  const up = new FakeUpstream(() => txt(30));
  const c = clock();
  const cache = new CachingResolver(up, { minTtl: 0, now: c.now, purgeIntervalMs: 20 });
  for (let i = 0; i < 50; i++) await cache.lookup(`p${i}.test`, 'TXT');
  assert.equal(cache.stats().entries, 50);
  c.advance(29);
  await sleep(60);
  assert.equal(cache.stats().entries, 50, 'nothing expired yet');
  c.advance(1.001);
  await waitFor(() => cache.stats().entries, { timeoutMs: 5000, what: 'the purge of every entry', until: (n) => n === 0 });
  assert.deepEqual([cache.stats().entries, cache.stats().bytes, cache.stats().expired], [0, 0, 50]);
  assert.equal(cache.purgeExpired(), 0);
  cache.close();
});

test('the purge timer does not keep the process alive', () => {
  const url = new URL('../../src/dns/cache.js', import.meta.url).href;
  const code = `import(${JSON.stringify(url)}).then((m) => { new m.CachingResolver({ lookup: () => Promise.reject(new Error('x')) }, { purgeIntervalMs: 50 }); });`;
  const started = Date.now();
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { timeout: 10_000 });
  assert.equal(r.status, 0, String(r.stderr));
  assert.ok(Date.now() - started < 5000);
});

test('TXT answers are cut to what SPF can use before they are kept', async () => {
  const junk = Array.from({ length: 200 }, () => 'x'.repeat(250)); // one 50 KB record
  const spf = ['v=spf1 ip4:192.0.2.0/24 -all'];
  const answers: Record<string, string[][]> = { 'mixed.test': [junk, spf], 'junk.test': [junk], 'bigspf.test': [['v=spf1 ', ...junk]] };
  const up = new FakeUpstream((n) => ({ records: answers[n], nxdomain: false, ttl: 600 }));
  const cache = new CachingResolver(up);
  const mixed = await cache.lookup('mixed.test', 'TXT');
  assert.deepEqual(mixed.records, [spf]);
  assert.deepEqual(mixed.omitted, { spf: 0, other: 1 });
  const only = await cache.lookup('junk.test', 'TXT');
  assert.deepEqual([only.records, only.omitted], [[], { spf: 0, other: 1 }]);
  const big = await cache.lookup('bigspf.test', 'TXT');
  assert.deepEqual([big.records, big.omitted], [[], { spf: 1, other: 0 }]);
  assert.ok(cache.stats().bytes < 3 * 1024, `three 50 KB answers cost ${cache.stats().bytes} bytes`);
  assert.equal(await cache.lookup('mixed.test', 'TXT'), mixed, 'the cut answer is what later hits see');
});

/** An upstream that answers only when told to, and records the signal each query got. */
class GatedUpstream implements Resolver {
  signals: AbortSignal[] = [];
  private release: (() => void)[] = [];
  lookup<T extends RRType>(name: string, type: T, options?: { signal?: AbortSignal }): Promise<LookupResult<RecordTypeMap[T]>> {
    const signal = options?.signal as AbortSignal;
    this.signals.push(signal);
    return new Promise((resolve, reject) => {
      signal.addEventListener('abort', () => reject(new DnsError('ABORTED', name, type)));
      this.release.push(() => resolve(txt(60) as LookupResult<RecordTypeMap[T]>));
    });
  }
  answerAll(): void {
    for (const r of this.release.splice(0)) r();
  }
}

const isAborted = (e: unknown) => e instanceof DnsError && e.code === 'ABORTED';

test('a shared query survives one waiter abandoning it; the abandoned waiter rejects with ABORTED', async () => {
  const up = new GatedUpstream();
  const cache = new CachingResolver(up);
  const first = new AbortController();
  const second = new AbortController();
  const a = cache.lookup('shared.test', 'TXT', { signal: first.signal });
  const b = cache.lookup('shared.test', 'TXT', { signal: second.signal });
  const c = cache.lookup('shared.test', 'TXT');
  assert.equal(up.signals.length, 1, 'one upstream query');
  first.abort();
  await assert.rejects(a, isAborted);
  assert.equal(up.signals[0].aborted, false, 'the query goes on for the others');
  up.answerAll();
  assert.deepEqual((await b).records, [['v=spf1 -all']]);
  assert.deepEqual((await c).records, [['v=spf1 -all']]);
  assert.equal(cache.stats().cancelled, 0);
  assert.equal(cache.stats().entries, 1, 'and its answer is cached');
});

test('when every waiter abandons a query it is cancelled upstream, not cached, and asked afresh next time', async () => {
  const up = new GatedUpstream();
  const cache = new CachingResolver(up);
  const one = new AbortController();
  const two = new AbortController();
  const a = cache.lookup('gone.test', 'TXT', { signal: one.signal });
  const b = cache.lookup('gone.test', 'TXT', { signal: two.signal });
  one.abort();
  await assert.rejects(a, isAborted);
  assert.equal(up.signals[0].aborted, false);
  two.abort();
  await assert.rejects(b, isAborted);
  assert.equal(up.signals[0].aborted, true, 'the last waiter gone, the query is cancelled');
  assert.deepEqual([cache.stats().cancelled, cache.stats().inflight, cache.stats().entries], [1, 0, 0]);
  const again = cache.lookup('gone.test', 'TXT');
  assert.equal(up.signals.length, 2, 'a new query, not the cancelled one');
  up.answerAll();
  assert.deepEqual((await again).records, [['v=spf1 -all']]);
  await assert.rejects(cache.lookup('gone.test', 'TXT', { signal: AbortSignal.abort() }), isAborted);
});
