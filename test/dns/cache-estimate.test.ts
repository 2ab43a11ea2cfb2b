// The cache's byte count is an estimate; it must not be below what entries really take on the
// heap, or DNS_CACHE_MAX_BYTES would bound less than it says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CachingResolver } from '../../src/dns/cache.js';
import type { LookupResult, RecordTypeMap, Resolver, RRType } from '../../src/dns/types.js';
import { SpfEvaluator } from '../../src/spf/index.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const wildcard: Resolver = {
  lookup<T extends RRType>(_name: string, type: T): Promise<LookupResult<RecordTypeMap[T]>> {
    const answer =
      type === 'TXT'
        ? { records: [Array.from({ length: 200 }, () => 'x'.repeat(250)), ['v=spf1 ip4:192.0.2.0/24 a:mail.wild.test -all']], nxdomain: false, ttl: 3600 }
        : { records: ['192.0.2.1', '192.0.2.2'], nxdomain: false, ttl: 3600 };
    return Promise.resolve(answer as unknown as LookupResult<RecordTypeMap[T]>);
  },
};

test('the estimated bytes of cached answers are at least what they take on the heap', async () => {
  const cache = new CachingResolver(wildcard, { maxBytes: 1 << 30 });
  const spf = new SpfEvaluator({ resolver: cache });
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < 10_000; i++) {
    await spf.effectiveRecord(`n${i}.junk.wild.test`);
    await cache.lookup(`a${i}.wild.test`, 'A');
  }
  gc();
  const taken = process.memoryUsage().heapUsed - before;
  const { entries, bytes } = cache.stats();
  assert.equal(entries, 20_000);
  assert.ok(taken <= bytes, `heap grew by ${taken} bytes for ${entries} entries estimated at ${bytes}`);
  cache.close();
});
