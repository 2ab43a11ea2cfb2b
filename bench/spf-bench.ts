import { CachingResolver } from '../src/dns/cache.js';
import type { Resolver } from '../src/dns/types.js';
import { SpfEvaluator, type SpfResult } from '../src/spf/index.js';
import { clearRecordCache } from '../src/spf/record-cache.js';
import { type ZoneData, ZoneResolver } from '../test/support/spf/zone-resolver.js';

/**
 * SPF evaluation speed for a realistic sender: a ten-term record whose includes go three deep
 * (sender -> ESP -> ESP netblocks -> ESP IPv6 blocks), client matched in the deepest record.
 * Cold: fresh cache and no parsed records, every lookup goes upstream (the in-process fake
 * DNS, so this measures the evaluator, not the network). Warm: a shared CachingResolver.
 */

const ZONE: ZoneData = {
  'sender.example': [
    { TXT: 'v=spf1 mx a:mail.sender.example ip4:198.51.100.0/26 ip4:198.51.100.128/27 ip6:2001:db8:100::/48 include:_spf.crm.example include:_spf.esp.example ?ip4:203.0.113.0/28 exp=why.sender.example -all' },
    { TXT: 'google-site-verification=abcdefghijklmnopqrstuvwxyz0123456789' },
    { MX: [10, 'mx1.sender.example'] },
    { MX: [20, 'mx2.sender.example'] },
  ],
  'mx1.sender.example': [{ A: '198.51.100.200' }],
  'mx2.sender.example': [{ A: '198.51.100.201' }],
  'mail.sender.example': [{ A: '198.51.100.210' }],
  '_spf.crm.example': [{ TXT: 'v=spf1 ip4:192.0.2.0/27 ip4:192.0.2.64/27 ~all' }],
  '_spf.esp.example': [{ TXT: 'v=spf1 include:_nb.esp.example include:_nb2.esp.example ~all' }],
  '_nb2.esp.example': [{ TXT: 'v=spf1 ip4:203.0.113.64/26 ~all' }],
  '_nb.esp.example': [{ TXT: ['v=spf1 ip4:10.20.0.0/16 ip4:10.21.0.0/16 ip4:10.22.0.0/16 ', 'ip4:10.23.0.0/16 include:_v6.esp.example ~all'] }],
  '_v6.esp.example': [{ TXT: 'v=spf1 ip6:2001:db8:e5e::/48 ip6:2001:db8:e5f::/48 ip4:10.99.1.0/24 -all' }],
  'why.sender.example': [{ TXT: '%{i} is not one of our servers' }],
};
const SENDER = 'newsletter@sender.example';
const HELO = 'out-7.esp.example';
const CLIENT = '10.99.1.17';

export interface SpfBenchResult {
  result: SpfResult;
  /** DNS-querying terms the evaluation used. */
  dnsTerms: number;
  /** Lookups the evaluator asks per evaluation (answered by cache or upstream). */
  lookupsPerEvaluation: number;
  cold: { evaluationsPerSecond: number; microsPerEvaluation: number; upstreamQueriesPerEvaluation: number };
  warm: { evaluationsPerSecond: number; microsPerEvaluation: number; upstreamQueriesPerEvaluation: number };
}

async function timeLoop(durationMs: number, once: () => Promise<void>): Promise<{ n: number; ms: number }> {
  const start = performance.now();
  let n = 0;
  let now = start;
  while (now - start < durationMs) {
    for (let k = 0; k < 50; k++) await once();
    n += 50;
    now = performance.now();
  }
  return { n, ms: now - start };
}

export async function runSpfBench(opts: { durationMs?: number } = {}): Promise<SpfBenchResult> {
  const durationMs = opts.durationMs ?? 1000;
  const input = { ip: CLIENT, sender: SENDER, helo: HELO };

  // Warm first: measured before the cold loop has churned the heap.
  // Warm: one cache shared by all evaluations, filled by a first run.
  const upstream = new ZoneResolver(ZONE);
  const cache: Resolver = new CachingResolver(upstream, { minTtl: 3600 });
  const spf = new SpfEvaluator({ resolver: cache });
  const first = await spf.checkHost(input);
  const warmOnce = async () => {
    await spf.checkHost(input);
  };
  await timeLoop(100, warmOnce);
  const before = upstream.queryCount;
  const warm = await timeLoop(durationMs, warmOnce);

  // Cold: new cache over a new upstream each time, parsed records forgotten.
  let coldUpstream = 0;
  const coldOnce = async () => {
    clearRecordCache();
    const upstream = new ZoneResolver(ZONE);
    const cache = new CachingResolver(upstream);
    const spf = new SpfEvaluator({ resolver: cache });
    await spf.checkHost(input);
    cache.close();
    coldUpstream += upstream.queryCount;
  };
  await timeLoop(100, coldOnce);
  coldUpstream = 0;
  const cold = await timeLoop(durationMs, coldOnce);

  return {
    result: first.result,
    dnsTerms: first.trace.dnsTerms,
    lookupsPerEvaluation: first.trace.queries.length,
    cold: {
      evaluationsPerSecond: Math.round((cold.n * 1000) / cold.ms),
      microsPerEvaluation: round2((cold.ms * 1000) / cold.n),
      upstreamQueriesPerEvaluation: round2(coldUpstream / cold.n),
    },
    warm: {
      evaluationsPerSecond: Math.round((warm.n * 1000) / warm.ms),
      microsPerEvaluation: round2((warm.ms * 1000) / warm.n),
      upstreamQueriesPerEvaluation: round2((upstream.queryCount - before) / warm.n),
    },
  };
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
