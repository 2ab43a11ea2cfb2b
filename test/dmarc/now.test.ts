// The synchronous (*Now) walks: undefined while an answer is missing from the cache, then the very
// result the asynchronous walk gives; assessDmarcNow likewise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CachingResolver } from '../../src/dns/index.js';
import { aligns, alignsNow, discoverPolicy, discoverPolicyNow } from '../../src/dmarc/index.js';
import { assessDmarc, assessDmarcNow, type DmarcInput } from '../../src/policy/dmarc.js';
import { ZoneResolver } from '../support/spf/zone-resolver.js';

const zone = {
  'customer.example': [{ TXT: 'v=spf1 -all' }],
  '_dmarc.customer.example': [{ TXT: 'v=DMARC1; p=reject' }],
  '_dmarc.org.example': [{ TXT: 'v=DMARC1; p=none; sp=quarantine; np=reject' }],
  'sub.org.example': [{ A: '192.0.2.1' }],
};

test('discoverPolicyNow and alignsNow: undefined until warm, then what the walk gives', async () => {
  const cache = new CachingResolver(new ZoneResolver(zone), { purgeIntervalMs: 60_000 });
  try {
    for (const domain of ['customer.example', 'sub.org.example', 'ghost.org.example', 'nopolicy.example']) {
      assert.equal(discoverPolicyNow(cache, domain), undefined, domain);
      const walked = await discoverPolicy(cache, domain);
      assert.deepEqual(discoverPolicyNow(cache, domain), walked, domain);
    }
    assert.equal(alignsNow(cache, 'a.customer.example', 'b.customer.example', 'r'), undefined);
    const aligned = await aligns(cache, 'a.customer.example', 'b.customer.example', 'r');
    assert.deepEqual(alignsNow(cache, 'a.customer.example', 'b.customer.example', 'r'), aligned);
    assert.deepEqual(alignsNow(cache, 'x.example', 'x.example', 's'), { aligned: true, mode: 's' });
  } finally {
    cache.close();
  }
});

test('assessDmarcNow gives assessDmarc\'s judgement once warm', async () => {
  const cache = new CachingResolver(new ZoneResolver(zone), { purgeIntervalMs: 60_000 });
  try {
    const input: DmarcInput = {
      from: { kind: 'one', address: 'ceo@customer.example', domain: 'customer.example', mailboxes: 1 },
      mailFromDomain: 'bounce.esp.example',
      spf: { kind: 'pass', domain: 'bounce.esp.example', check: 'regex', ownership: 'not-asked', result: 'restrictive', reason: 'r' },
      dkimDomains: [{ domain: 'esp.example', source: 'DKIM_SIGNING_DOMAINS' }],
    };
    assert.equal(assessDmarcNow(input, cache), undefined);
    const judged = await assessDmarc(input, cache);
    assert.equal(judged.kind, 'violation');
    assert.deepEqual(assessDmarcNow(input, cache), judged);
    assert.deepEqual(assessDmarcNow({ ...input, from: { kind: 'missing' } }, cache), { kind: 'not-applicable', reason: 'no From: field' });
  } finally {
    cache.close();
  }
});
