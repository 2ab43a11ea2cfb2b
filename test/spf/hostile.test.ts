import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Resolver } from '../../src/dns/types.js';
import { type SpfCheck, SpfEvaluator } from '../../src/spf/index.js';
import { type ZoneData, ZoneResolver } from '../support/spf/zone-resolver.js';

/**
 * Records an attacker could publish. Every evaluation must end with a result, within the
 * RFC 7208 §4.6.4 limits, with a bounded number of DNS queries, and without throwing.
 */

const RESULTS = new Set(['pass', 'fail', 'softfail', 'neutral', 'none', 'permerror', 'temperror']);

async function evaluate(zone: ZoneData, sender: string, ip = '192.0.2.1', helo = 'h.example.net') {
  const resolver = new ZoneResolver(zone);
  const spf = new SpfEvaluator({ resolver });
  const check: SpfCheck = await spf.checkHost({ ip, sender, helo });
  assert.ok(RESULTS.has(check.result));
  assert.ok(check.trace.dnsTerms <= 11, `dnsTerms ${check.trace.dnsTerms}`);
  assert.ok(check.trace.voidLookups <= 3, `voids ${check.trace.voidLookups}`);
  // The trace lists every question; names that cannot be sent never reach the resolver.
  assert.equal(check.trace.queries.filter((q) => q.outcome !== 'badname').length, resolver.queryCount);
  return { check, queries: resolver.queryCount };
}

test('deep include chain stops at the 10-term limit', async () => {
  const zone: ZoneData = {};
  for (let k = 0; k < 60; k++) zone[`d${k}.example.com`] = [{ TXT: `v=spf1 include:d${k + 1}.example.com -all` }];
  const { check, queries } = await evaluate(zone, 'x@d0.example.com');
  assert.equal(check.result, 'permerror');
  assert.match(check.reason, /more than 10 DNS-querying terms/);
  assert.ok(queries <= 11, `queries ${queries}`);
});

test('include loop, self include and redirect loop end in permerror', async () => {
  const zone: ZoneData = {
    'a.example.com': [{ TXT: 'v=spf1 include:b.example.com -all' }],
    'b.example.com': [{ TXT: 'v=spf1 include:a.example.com -all' }],
    'self.example.com': [{ TXT: 'v=spf1 include:self.example.com' }],
    'r1.example.com': [{ TXT: 'v=spf1 redirect=r2.example.com' }],
    'r2.example.com': [{ TXT: 'v=spf1 redirect=r1.%{d2}' }],
    'both.example.com': [{ TXT: 'v=spf1 include:both.example.com redirect=both.example.com' }],
  };
  for (const d of ['a', 'self', 'r1', 'both']) {
    const { check, queries } = await evaluate(zone, `x@${d}.example.com`);
    assert.equal(check.result, 'permerror', d);
    assert.ok(queries <= 11, `${d}: queries ${queries}`);
  }
});

test('a record over 4000 characters with 300 ip4 terms evaluates without DNS', async () => {
  const terms = Array.from({ length: 300 }, (_, k) => `ip4:10.${k >> 8}.${k & 255}.0/24`);
  const text = `v=spf1 ${terms.join(' ')} -all`;
  assert.ok(text.length > 4000);
  const zone: ZoneData = { 'big.example.com': [{ TXT: text.match(/.{1,255}/g) as string[] }] };
  const miss = await evaluate(zone, 'x@big.example.com');
  assert.equal(miss.check.result, 'fail');
  assert.equal(miss.queries, 1);
  const hit = await evaluate(zone, 'x@big.example.com', '10.1.43.9');
  assert.equal(hit.check.result, 'pass');
});

test('120 DNS-querying terms: permerror at the eleventh, queries bounded', async () => {
  const terms = Array.from({ length: 120 }, (_, k) => (k % 3 === 0 ? 'a' : k % 3 === 1 ? 'mx' : `exists:e${k}.example.com`));
  const zone: ZoneData = {
    'many.example.com': [{ TXT: `v=spf1 ${terms.join(' ')} -all` }, { A: '198.51.100.1' }, ...Array.from({ length: 10 }, (_, k) => ({ MX: [k, `mx${k}.example.com`] }))],
  };
  for (let k = 0; k < 10; k++) zone[`mx${k}.example.com`] = [{ A: `198.51.100.${k + 10}` }];
  for (let k = 0; k < 120; k++) zone[`e${k}.example.com`] = [{ AAAA: '2001:db8::1' }];
  const { check, queries } = await evaluate(zone, 'x@many.example.com');
  assert.equal(check.result, 'permerror');
  // 1 record + 10 terms, of which 3-4 are mx with up to 10 address lookups each.
  assert.ok(queries <= 1 + 10 + 4 * 10, `queries ${queries}`);
});

test('1000 MX records or 1000 PTR names cost one lookup plus at most the per-term limit', async () => {
  const mx = Array.from({ length: 1000 }, (_, k) => ({ MX: [k, `m${k}.example.com`] }));
  const ptr = Array.from({ length: 1000 }, (_, k) => ({ PTR: `p${k}.ptr.example.com` }));
  const zone: ZoneData = {
    'mx.example.com': [{ TXT: 'v=spf1 mx -all' }, ...mx],
    'ptr.example.com': [{ TXT: 'v=spf1 ptr -all' }],
    'pmacro.example.com': [{ TXT: 'v=spf1 exists:%{p}.a.example.com exists:%{p}.b.example.com -all exp=%{p}.x.example.com' }],
    '1.2.0.192.in-addr.arpa': ptr,
  };
  const m = await evaluate(zone, 'x@mx.example.com');
  assert.equal(m.check.result, 'permerror');
  assert.equal(m.queries, 2);
  const p = await evaluate(zone, 'x@ptr.example.com');
  assert.equal(p.check.result, 'fail');
  assert.ok(p.queries <= 2 + 10, `queries ${p.queries}`);
  // %{p} validation runs once per check however often the macro appears.
  const pm = await evaluate(zone, 'x@pmacro.example.com');
  assert.ok(['fail', 'permerror'].includes(pm.check.result));
  assert.ok(pm.queries <= 1 + 1 + 10 + 3, `queries ${pm.queries}`);
});

test('macros that expand to huge names: truncated or no match, never an error', async () => {
  const longLocal = 'l'.repeat(3000);
  const many = Array.from({ length: 40 }, () => '%{l}.%{s}.%{h}').join('.');
  const zone: ZoneData = {
    'm.example.com': [{ TXT: `v=spf1 exists:${many}.example.com a:%{l}%{l}%{l}.example.com include:%{o}%{o}%{o}%{o}%{o}%{o}%{o}%{o}%{o}%{o}.x ~all` }],
  };
  const { check, queries } = await evaluate(zone, `${longLocal}@m.example.com`, '192.0.2.1', 'h'.repeat(2000));
  assert.ok(['softfail', 'permerror'].includes(check.result), check.result);
  assert.ok(queries <= 4, `queries ${queries}`);
  for (const q of check.trace.queries) assert.ok(q.name.length <= 1024, `query name ${q.name.length}`);
});

test('random junk records give permerror or none, never an exception', async () => {
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const alphabet = 'v=spf1 :/%{}.-+~?aimxptrsloedhcvr0123456789incude_exists\x00\x7f\u00ff';
  for (let k = 0; k < 200; k++) {
    const len = 1 + Math.floor(rand() * 80);
    let junk = 'v=spf1 ';
    for (let j = 0; j < len; j++) junk += alphabet[Math.floor(rand() * alphabet.length)];
    const zone: ZoneData = { 'j.example.com': [{ TXT: junk }] };
    const { check, queries } = await evaluate(zone, 'x@j.example.com');
    assert.ok(queries <= 1 + 10 * 11 + 12, `${JSON.stringify(junk)}: ${queries} queries`);
    assert.ok(RESULTS.has(check.result));
  }
});

test('a resolver that throws something other than DnsError yields temperror', async () => {
  const resolver: Resolver = {
    lookup: async () => {
      throw new TypeError('boom');
    },
  };
  const check = await new SpfEvaluator({ resolver }).checkHost({ ip: '192.0.2.1', sender: 'x@example.com', helo: 'h.example.net' });
  assert.equal(check.result, 'temperror');
  assert.match(check.reason, /boom/);
});
