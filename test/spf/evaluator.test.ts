import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpfEvaluator, SpfInputError } from '../../src/spf/index.js';
import { type ZoneData, ZoneResolver } from '../support/spf/zone-resolver.js';

function setup(zone: ZoneData, opts: Partial<ConstructorParameters<typeof SpfEvaluator>[0]> = {}) {
  const resolver = new ZoneResolver(zone);
  return { resolver, spf: new SpfEvaluator({ resolver, defaultExplanation: 'DEFAULT', ...opts }) };
}

const esp: ZoneData = {
  'example.com': [{ TXT: 'v=spf1 include:_spf.esp.example -all exp=why.example.com' }],
  'why.example.com': [{ TXT: '%{i} may not send for %{d}' }],
  '_spf.esp.example': [{ TXT: 'v=spf1 ip4:192.0.2.0/25 include:_v6.esp.example ~all' }],
  '_v6.esp.example': [{ TXT: ['v=spf1 ip6:2001:db8:1::/48', ' -all'] }],
  'redir.example.com': [{ TXT: 'v=spf1 redirect=example.com' }],
  'loop1.example.com': [{ TXT: 'v=spf1 redirect=loop2.example.com' }],
  'loop2.example.com': [{ TXT: 'v=spf1 redirect=loop1.example.com' }],
  'hasall.example.com': [{ TXT: 'v=spf1 ?all redirect=example.com' }],
  'two.example.com': [{ TXT: 'v=spf1 -all' }, { TXT: 'v=spf1 +all' }],
  'broken.example.com': [{ TXT: 'v=spf1 a:' }],
  'tmp.example.com': ['TIMEOUT'],
  'dangling.example.com': [{ TXT: 'v=spf1 redirect=nothing.example.com' }],
};

test('trace: matched term, include tree, queries, explanation and reason', async () => {
  const { spf } = setup(esp);
  const pass = await spf.checkHost({ ip: '2001:db8:1::25', sender: 'user@example.com', helo: 'mta.esp.example' });
  assert.equal(pass.result, 'pass');
  assert.deepEqual(pass.trace.matched, { term: 'include:_spf.esp.example', domain: 'example.com' });
  const root = pass.trace.root!;
  assert.equal(root.record, 'v=spf1 include:_spf.esp.example -all exp=why.example.com');
  assert.equal(root.children[0].domain, '_spf.esp.example');
  assert.equal(root.children[0].via, 'include');
  assert.equal(root.children[0].children[0].domain, '_v6.esp.example');
  assert.equal(root.children[0].children[0].record, 'v=spf1 ip6:2001:db8:1::/48 -all', 'strings joined with no separator');
  assert.equal(root.children[0].children[0].matched, 'ip6:2001:db8:1::/48');
  assert.deepEqual(pass.trace.queries.map((q) => `${q.type} ${q.name} ${q.outcome}`), [
    'TXT example.com answer',
    'TXT _spf.esp.example answer',
    'TXT _v6.esp.example answer',
  ]);
  assert.equal(pass.trace.dnsTerms, 2);
  assert.match(pass.reason, /include:_spf\.esp\.example/);
  assert.equal(pass.explanation, undefined);
  // Plain data: survives a JSON round trip unchanged.
  assert.deepEqual(JSON.parse(JSON.stringify(pass.trace)), pass.trace);

  const fail = await spf.checkHost({ ip: '198.51.100.7', sender: 'user@example.com', helo: 'x.example.net' });
  assert.equal(fail.result, 'fail');
  assert.equal(fail.explanation, '198.51.100.7 may not send for example.com');
  assert.equal(fail.trace.explanationSource, 'exp');
  assert.deepEqual(fail.trace.matched, { term: '-all', domain: 'example.com' });
  assert.equal(fail.trace.root?.children[0].result, 'softfail');
});

test('redirect: result and explanation come from the target; redirect ignored when all is present', async () => {
  const { spf } = setup(esp);
  const r = await spf.checkHost({ ip: '198.51.100.7', sender: 'a@redir.example.com', helo: 'h.example.net' });
  assert.equal(r.result, 'fail');
  assert.equal(r.explanation, '198.51.100.7 may not send for example.com');
  assert.equal(r.trace.root?.children[0].via, 'redirect');
  assert.deepEqual(r.trace.matched, { term: '-all', domain: 'example.com' });
  const all = await spf.checkHost({ ip: '198.51.100.7', sender: 'a@hasall.example.com', helo: 'h.example.net' });
  assert.equal(all.result, 'neutral');
  assert.equal(all.trace.queries.length, 1);
  const dangling = await spf.checkHost({ ip: '198.51.100.7', sender: 'a@dangling.example.com', helo: 'h.example.net' });
  assert.equal(dangling.result, 'permerror');
  assert.match(dangling.reason, /nothing\.example\.com.*no SPF record/);
});

test('null sender is checked as postmaster@HELO; IPv4-mapped IPv6 is evaluated as IPv4', async () => {
  const { spf } = setup({
    'mail.example.org': [{ TXT: 'v=spf1 ip4:192.0.2.9 -all exp=e.example.org' }],
    'e.example.org': [{ TXT: '%{s} %{l} %{o} %{c} %{v}' }],
  });
  const ok = await spf.checkHost({ ip: '::ffff:192.0.2.9', sender: '', helo: 'mail.example.org' });
  assert.equal(ok.result, 'pass');
  assert.equal(ok.trace.ip, '192.0.2.9');
  const no = await spf.checkHost({ ip: '::ffff:192.0.2.10', sender: '<>', helo: 'mail.example.org' });
  assert.equal(no.explanation, 'postmaster@mail.example.org postmaster mail.example.org 192.0.2.10 in-addr');
});

test('invalid HELO or sender domain gives none without DNS; invalid IP is an input error', async () => {
  const { spf, resolver } = setup(esp);
  for (const helo of ['A2345678', '[192.0.2.1]', '192.0.2.1', `${'a'.repeat(64)}.example.com`, 'a..example.com']) {
    const r = await spf.checkHost({ ip: '192.0.2.1', sender: '', helo });
    assert.equal(r.result, 'none', helo);
  }
  assert.equal(resolver.queryCount, 0);
  await assert.rejects(spf.checkHost({ ip: 'not-an-ip', sender: 'a@example.com', helo: 'h' }), SpfInputError);
});

test('record selection and DNS failures', async () => {
  const { spf } = setup(esp);
  const check = (domain: string) => spf.checkHost({ ip: '192.0.2.1', sender: `a@${domain}`, helo: 'h.example.net' });
  assert.equal((await check('two.example.com')).result, 'permerror');
  assert.equal((await check('broken.example.com')).result, 'permerror');
  assert.equal((await check('tmp.example.com')).result, 'temperror');
  assert.equal((await check('nowhere.example.com')).result, 'none');
});

test('include: temperror propagates, target without a record is permerror', async () => {
  const { spf } = setup({
    'a.example.com': [{ TXT: 'v=spf1 include:t.example.com -all' }],
    't.example.com': [{ RCODE: 2 }],
    'b.example.com': [{ TXT: 'v=spf1 include:none.example.com -all' }],
    'none.example.com': [{ A: '192.0.2.1' }],
  });
  const t = await spf.checkHost({ ip: '192.0.2.1', sender: 'x@a.example.com', helo: 'h.example.net' });
  assert.equal(t.result, 'temperror');
  assert.equal(t.trace.root?.children[0].result, 'temperror');
  assert.equal(t.trace.queries[1].error, 'SERVFAIL');
  const p = await spf.checkHost({ ip: '192.0.2.1', sender: 'x@b.example.com', helo: 'h.example.net' });
  assert.equal(p.result, 'permerror');
});

test('exp: DNS failure or bad explanation falls back to the default', async () => {
  const { spf } = setup({
    'a.example.com': [{ TXT: 'v=spf1 -all exp=t.example.com' }],
    't.example.com': ['TIMEOUT'],
    'b.example.com': [{ TXT: 'v=spf1 -all exp=bad.example.com' }],
    'bad.example.com': [{ TXT: 'The %{x}-files.' }],
  });
  for (const d of ['a.example.com', 'b.example.com']) {
    const r = await spf.checkHost({ ip: '192.0.2.1', sender: `x@${d}`, helo: 'h.example.net' });
    assert.equal(r.result, 'fail');
    assert.equal(r.explanation, 'DEFAULT');
    assert.equal(r.trace.explanationSource, 'default');
  }
});

test('ptr: DNS errors while validating a name skip that name', async () => {
  const { spf } = setup({
    'a.example.com': [{ TXT: 'v=spf1 ptr -all' }],
    '1.2.0.192.in-addr.arpa': [{ PTR: 'broken.a.example.com' }, { PTR: 'ok.a.example.com.' }],
    'broken.a.example.com': [{ RCODE: 2 }],
    'ok.a.example.com': [{ A: '192.0.2.1' }],
  });
  const r = await spf.checkHost({ ip: '192.0.2.1', sender: 'x@a.example.com', helo: 'h.example.net' });
  assert.equal(r.result, 'pass');
});

test('limits are configurable', async () => {
  const zone: ZoneData = {
    'many.example.com': [{ TXT: 'v=spf1 a a a a ip4:192.0.2.1 -all' }, { A: '198.51.100.1' }],
    'void.example.com': [{ TXT: 'v=spf1 a:n1.example.com a:n2.example.com ip4:192.0.2.1 -all' }],
    'mx.example.com': [{ TXT: 'v=spf1 mx -all' }, { MX: [1, 'm1.example.com'] }, { MX: [2, 'm2.example.com'] }, { MX: [3, 'm3.example.com'] }],
    'm3.example.com': [{ A: '192.0.2.1' }],
  };
  const check = (spf: SpfEvaluator, domain: string) => spf.checkHost({ ip: '192.0.2.1', sender: `x@${domain}`, helo: 'h.example.net' });
  const defaults = setup(zone).spf;
  assert.equal((await check(defaults, 'many.example.com')).result, 'pass');
  assert.equal((await check(defaults, 'void.example.com')).result, 'pass');
  assert.equal((await check(defaults, 'mx.example.com')).result, 'pass');
  const tight = setup(zone, { limits: { dnsMechanisms: 3, voidLookups: 1, mxNames: 2 } }).spf;
  const many = await check(tight, 'many.example.com');
  assert.equal(many.result, 'permerror');
  assert.match(many.reason, /more than 3 DNS-querying terms/);
  assert.equal((await check(tight, 'void.example.com')).result, 'permerror');
  assert.equal((await check(tight, 'void.example.com')).trace.voidLookups, 2);
  assert.equal((await check(tight, 'mx.example.com')).result, 'permerror');
});

test('macros: %{r} and %{t} come from the options', async () => {
  const { spf } = setup(
    { 'a.example.com': [{ TXT: 'v=spf1 -all exp=e.example.com' }], 'e.example.com': [{ TXT: '%{r} at %{t}' }] },
    { receiverHost: 'mx.receiver.example', now: () => 1_700_000_000_999 },
  );
  const r = await spf.checkHost({ ip: '192.0.2.1', sender: 'x@a.example.com', helo: 'h.example.net' });
  assert.equal(r.explanation, 'mx.receiver.example at 1700000000');
});

test('effectiveRecord follows redirect only without all, and reports loops and problems', async () => {
  const { spf } = setup(esp);
  const direct = await spf.effectiveRecord('example.com');
  assert.equal(direct.status, 'found');
  assert.equal(direct.domain, 'example.com');
  assert.ok(direct.record?.terms.some((t) => t.kind === 'mechanism' && t.name === 'all' && t.qualifier === '-'));
  const redirected = await spf.effectiveRecord('redir.example.com');
  assert.equal(redirected.status, 'found');
  assert.equal(redirected.domain, 'example.com');
  assert.deepEqual(redirected.chain.map((c) => c.domain), ['redir.example.com', 'example.com']);
  assert.equal(redirected.chain[0].text, 'v=spf1 redirect=example.com');
  const withAll = await spf.effectiveRecord('hasall.example.com');
  assert.equal(withAll.domain, 'hasall.example.com');
  const loop = await spf.effectiveRecord('loop1.example.com');
  assert.equal(loop.status, 'permerror');
  assert.equal(loop.reason, 'redirect loop');
  assert.equal((await spf.effectiveRecord('two.example.com')).status, 'permerror');
  assert.match((await spf.effectiveRecord('two.example.com')).reason, /2 SPF records/);
  assert.equal((await spf.effectiveRecord('nowhere.example.com')).status, 'none');
  assert.equal((await spf.effectiveRecord('tmp.example.com')).status, 'temperror');
  assert.equal((await spf.effectiveRecord('dangling.example.com')).status, 'permerror');
});

test('checkHostForIps: one result per IP, DNS answers shared across the batch', async () => {
  const { spf, resolver } = setup(esp);
  const ips = ['192.0.2.1', '192.0.2.200', '2001:db8:1::1', '2001:db8:2::1', '192.0.2.1'];
  const results = await spf.checkHostForIps('bounce@example.com', 'mta.esp.example', ips);
  assert.deepEqual([...results.keys()], ['192.0.2.1', '192.0.2.200', '2001:db8:1::1', '2001:db8:2::1']);
  assert.deepEqual([...results.values()].map((r) => r.result), ['pass', 'fail', 'pass', 'fail']);
  // Four distinct TXT questions (three records and the exp= text), however many IPs;
  // each check still has its own trace.
  assert.equal(resolver.queryCount, 4);
  assert.equal(results.get('2001:db8:2::1')?.trace.queries.length, 4);
  await assert.rejects(spf.checkHostForIps('a@example.com', 'h', ['192.0.2.1', 'bogus']), SpfInputError);
});
