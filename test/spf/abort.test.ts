import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CachingResolver } from '../../src/dns/cache.js';
import { DnsError, type LookupOptions, type LookupResult, type RecordTypeMap, type Resolver, type RRType } from '../../src/dns/types.js';
import { MAX_EXPLANATION_OCTETS, MAX_SPF_RECORD_OCTETS } from '../../src/dns/txt-bound.js';
import { EvaluationAbortedError, SpfEvaluator } from '../../src/spf/index.js';
import { type ZoneData, ZoneResolver } from '../support/spf/zone-resolver.js';
import { sleep } from '../support/wait.js';

/**
 * Answers from zone data, but names under `slow.example` answer only after `delayMs` (or when
 * their signal fires: then they reject with ABORTED). Counts every query it is asked.
 */
class SlowZone implements Resolver {
  readonly asked: string[] = [];
  private readonly zone: ZoneResolver;
  constructor(
    zone: ZoneData,
    private readonly delayMs: number,
  ) {
    this.zone = new ZoneResolver(zone);
  }
  lookup<T extends RRType>(name: string, type: T, options?: LookupOptions): Promise<LookupResult<RecordTypeMap[T]>> {
    this.asked.push(`${type} ${name}`);
    if (!name.endsWith('slow.example')) return this.zone.lookup(name, type);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => resolve(this.zone.lookup(name, type)), this.delayMs);
      options?.signal?.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(new DnsError('ABORTED', name, type));
      });
    });
  }
}

const ZONE: ZoneData = {
  'sender.example': [{ TXT: 'v=spf1 include:a.slow.example include:b.slow.example include:c.slow.example -all' }],
  'a.slow.example': [{ TXT: 'v=spf1 ip4:192.0.2.1 -all' }],
  'b.slow.example': [{ TXT: 'v=spf1 ip4:192.0.2.2 -all' }],
  'c.slow.example': [{ TXT: 'v=spf1 ip4:192.0.2.3 -all' }],
  'redir.example': [{ TXT: 'v=spf1 redirect=r.slow.example' }],
  'r.slow.example': [{ TXT: 'v=spf1 -all' }],
};

const isAborted = (e: unknown) => e instanceof EvaluationAbortedError && e.code === 'ABORTED';

test('an aborted batch rejects with code ABORTED and asks nothing more', async () => {
  const upstream = new SlowZone(ZONE, 200);
  const spf = new SpfEvaluator({ resolver: new CachingResolver(upstream) });
  const controller = new AbortController();
  const pending = spf.checkHostForIps('u@sender.example', 'h.example', ['192.0.2.3', '192.0.2.9', '2001:db8::1'], { signal: controller.signal });
  await sleep(50);
  assert.deepEqual(upstream.asked, ['TXT sender.example', 'TXT a.slow.example']);
  controller.abort(new Error('deadline'));
  await assert.rejects(pending, isAborted);
  await sleep(400); // longer than two slow answers: without the abort, b and c would be asked
  assert.deepEqual(upstream.asked, ['TXT sender.example', 'TXT a.slow.example']);
  // Without a signal the same batch runs to its end.
  const full = await new SpfEvaluator({ resolver: new CachingResolver(new SlowZone(ZONE, 10)) }).checkHostForIps('u@sender.example', 'h.example', ['192.0.2.3', '192.0.2.9']);
  assert.deepEqual([...full.values()].map((c) => c.result), ['pass', 'fail']);
});

test('a query shared with another assessment goes on for it when one assessment is abandoned', async () => {
  const upstream = new SlowZone(ZONE, 100);
  const spf = new SpfEvaluator({ resolver: new CachingResolver(upstream) });
  const abandoned = new AbortController();
  const a = spf.checkHostForIps('u@sender.example', 'h.example', ['192.0.2.2'], { signal: abandoned.signal });
  const b = spf.checkHostForIps('v@sender.example', 'h.example', ['192.0.2.2'], { signal: new AbortController().signal });
  await sleep(30);
  abandoned.abort();
  await assert.rejects(a, isAborted);
  const result = await b;
  assert.equal(result.get('192.0.2.2')?.result, 'pass');
  assert.equal(upstream.asked.filter((q) => q === 'TXT a.slow.example').length, 1, 'one upstream query served both');
});

test('checkHost and effectiveRecord take the signal too; an aborted signal asks nothing', async () => {
  const upstream = new SlowZone(ZONE, 200);
  const spf = new SpfEvaluator({ resolver: upstream });
  await assert.rejects(spf.checkHost({ ip: '192.0.2.1', sender: 'u@sender.example', helo: 'h' }, { signal: AbortSignal.abort() }), isAborted);
  await assert.rejects(spf.effectiveRecord('sender.example', { signal: AbortSignal.abort() }), isAborted);
  assert.equal(upstream.asked.length, 0);
  const controller = new AbortController();
  const pending = spf.effectiveRecord('redir.example', { signal: controller.signal });
  await sleep(30);
  controller.abort();
  await assert.rejects(pending, isAborted);
  assert.deepEqual(upstream.asked, ['TXT redir.example', 'TXT r.slow.example']);
  assert.equal((await spf.effectiveRecord('redir.example')).domain, 'r.slow.example');
});

test('the evaluator applies the TXT bounds whatever resolver it is given', async () => {
  const long = `v=spf1 ${'ip4:10.0.0.0/8 '.repeat(Math.ceil(MAX_SPF_RECORD_OCTETS / 15))}-all`;
  const zone: ZoneData = {
    'big.example': [{ TXT: long.match(/.{1,255}/g) as string[] }],
    'bigtwo.example': [{ TXT: long.match(/.{1,255}/g) as string[] }, { TXT: 'v=spf1 -all' }],
    'exp.example': [{ TXT: 'v=spf1 -all exp=why.exp.example' }],
    'why.exp.example': [{ TXT: ['x'.repeat(255), 'y'.repeat(MAX_EXPLANATION_OCTETS - 254)] }],
    'exp2.example': [{ TXT: 'v=spf1 -all exp=why.exp2.example' }],
    'why.exp2.example': [{ TXT: 'short enough, %{i}' }],
  };
  for (const resolver of [new ZoneResolver(zone), new CachingResolver(new ZoneResolver(zone))]) {
    const spf = new SpfEvaluator({ resolver });
    const big = await spf.checkHost({ ip: '192.0.2.1', sender: 'u@big.example', helo: 'h' });
    assert.equal(big.result, 'permerror');
    assert.match(big.reason, /longer than the 16384 octets/);
    assert.equal((await spf.effectiveRecord('big.example')).status, 'permerror');
    const two = await spf.checkHost({ ip: '192.0.2.1', sender: 'u@bigtwo.example', helo: 'h' });
    assert.match(two.reason, /2 SPF records/);
    const exp = await spf.checkHost({ ip: '192.0.2.1', sender: 'u@exp.example', helo: 'h' });
    assert.deepEqual([exp.result, exp.trace.explanationSource], ['fail', 'default'], 'an explanation longer than a reply line is not used');
    const exp2 = await spf.checkHost({ ip: '192.0.2.1', sender: 'u@exp2.example', helo: 'h' });
    assert.deepEqual([exp2.explanation, exp2.trace.explanationSource], ['short enough, 192.0.2.1', 'exp']);
  }
});
