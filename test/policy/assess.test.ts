import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { assessEnvelope, assessSender, hasRestrictiveAll, type AssessDeps, type AssessInput } from '../../src/policy/assess.js';
import { CachingResolver } from '../../src/dns/cache.js';
import { parseEnvelopeSender } from '../../src/policy/sender.js';
import type { JudgedAssessment, OwnDomainPort, PolicySettings, SpfPort } from '../../src/policy/types.js';
import { SpfEvaluator, parseRecord, type SpfResult } from '../../src/spf/index.js';
import { ZoneResolver } from '../support/spf/zone-resolver.js';
import { compileSpfRegex } from '../../src/config/index.js';
import { decideOutcome, type DecisionSettings } from '../../src/policy/decide.js';
import { IgnoredNextHops, RecipientHops } from '../../src/policy/next-hops.js';

const zone = {
  'restrict.example': [{ TXT: 'v=spf1 ip4:198.51.100.1 -all' }],
  'ours.example': [{ TXT: 'v=spf1 include:_spf.esp.example -all' }],
  'split.example': [{ TXT: ['v=spf1 include:_spf.es', 'p.example -al', 'l'] }],
  'lookalike.example': [{ TXT: 'v=spf1 include:_spf.esp.example.evil.example -all' }],
  '_spf.esp.example.evil.example': [{ TXT: 'v=spf1 -all' }],
  'dash-all-in-name.example': [{ TXT: 'v=spf1 include:x.-all.example' }],
  'x.-all.example': [{ TXT: 'v=spf1 ?all' }],
  'exp-after.example': [{ TXT: 'v=spf1 ip4:198.51.100.1 -all exp=explain.example' }],
  'redir.example': [{ TXT: 'v=spf1 redirect=_spf.esp.example' }],
  'redir-all.example': [{ TXT: 'v=spf1 ?all redirect=restrict.example' }],
  'loop.example': [{ TXT: 'v=spf1 redirect=loop.example' }],
  'two.example': [{ TXT: 'v=spf1 -all' }, { TXT: 'v=spf1 +all' }],
  'spf10.example': [{ TXT: 'v=spf10 -all' }],
  'upper.example': [{ TXT: 'V=SPF1 IP4:198.51.100.1 -ALL' }],
  'servfail.example': [{ RCODE: 2 }],
  'timeout.example': ['TIMEOUT'],
  'soft.example': [{ TXT: 'v=spf1 ip4:198.51.100.1 ~all' }],
  'own-good.example': [{ TXT: 'v=spf1 include:_spf.esp.example -all' }],
  'own-nostatement.example': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all' }],
  '_spf.esp.example': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all' }],
};

const own = new Set(['own-good.example', 'own-nostatement.example', 'restrict.example']);
const ownDomains: OwnDomainPort = {
  async isOwnDomain(domain) {
    return { own: own.has(domain), source: 'ldap' };
  },
};

function settings(check: 'regex' | 'evaluate', mode: 'test' | 'reject' = 'test', results: SpfResult[] = ['fail']): PolicySettings {
  return {
    mode,
    check,
    spfRegex: compileSpfRegex('.*include:_spf\\.esp\\.example( |$)'),
    outboundIps: ['192.0.2.10', '2001:db8::10'],
    violationResults: new Set(results),
  };
}

function decision(mode: 'test' | 'reject'): DecisionSettings {
  return { mode, ignoredNextHops: new IgnoredNextHops([]), milterName: 'sos-milter', rejectMessage: 'no' };
}

async function assess(domain: string, s: PolicySettings, withLdap = true) {
  const spf = new SpfEvaluator({ resolver: new ZoneResolver(zone) });
  return assessSender({ sender: `user@${domain}`, domain, helo: 'client.example' }, { spf, ownDomains: withLdap ? ownDomains : undefined }, s);
}

test('the -all test looks at parsed terms, not at text', () => {
  assert.equal(hasRestrictiveAll(parseRecord('v=spf1 -all exp=x.example')), true);
  assert.equal(hasRestrictiveAll(parseRecord('v=spf1 include:x.-all.example')), false);
  assert.equal(hasRestrictiveAll(parseRecord('v=spf1 ~all')), false);
  assert.equal(hasRestrictiveAll(parseRecord('V=SPF1 -ALL')), true);
});

test('regex check: restrictive records must match SPF_REGEX; split strings are joined first', async () => {
  const cases: [string, boolean, string][] = [
    ['restrict.example', true, 'restrictive'],
    ['ours.example', false, 'restrictive'],
    ['split.example', false, 'restrictive'],
    ['lookalike.example', true, 'restrictive'],
    ['dash-all-in-name.example', false, 'not-restrictive'],
    ['exp-after.example', true, 'restrictive'],
    ['upper.example', true, 'restrictive'],
    ['soft.example', false, 'not-restrictive'],
    // The effective record is the ESP's own; neither it nor the redirecting record says include:.
    ['redir.example', true, 'restrictive'],
    ['redir-all.example', false, 'not-restrictive'],
  ];
  for (const [domain, violation, result] of cases) {
    const a = await assess(domain, settings('regex', 'reject'));
    assert.equal(a.kind === 'violation', violation, domain);
    assert.equal(a.result, result, domain);
    assert.equal(a.ownership, 'not-asked', `${domain}: LDAP is never asked in reject mode with regex`);
  }
});

test('SPF_REGEX may match any record of the redirect chain', async () => {
  const s = { ...settings('regex', 'reject'), spfRegex: compileSpfRegex('.*(include:|redirect=)_spf\\.esp\\.example') };
  const a = await assess('redir.example', s);
  assert.equal(a.kind === 'violation', false);
  assert.equal(a.recordDomain, '_spf.esp.example');
});

test('records that cannot be judged fail open with their reason', async () => {
  const cases: [string, string][] = [
    ['loop.example', 'permerror'],
    ['two.example', 'permerror'],
    ['spf10.example', 'none'],
    ['nxdomain.example', 'none'],
    ['servfail.example', 'temperror'],
    ['timeout.example', 'temperror'],
  ];
  for (const [domain, result] of cases) {
    const a = await assess(domain, settings('regex'));
    assert.equal(a.kind === 'violation', false, domain);
    assert.equal(a.kind, 'fail-open', domain);
    assert.equal(a.result, result, domain);
    assert.ok(a.reason.length > 0, domain);
  }
});

test('regex check in test mode asks LDAP only for violations', async () => {
  assert.equal((await assess('restrict.example', settings('regex'))).ownership, 'own');
  assert.equal((await assess('lookalike.example', settings('regex'))).ownership, 'foreign');
  assert.equal((await assess('ours.example', settings('regex'))).ownership, 'not-asked');
  assert.equal((await assess('restrict.example', settings('regex'), false)).ownership, 'not-asked');
});

test('evaluate check: check_host for every outbound address', async () => {
  const fail = await assess('restrict.example', settings('evaluate', 'reject'));
  assert.equal(fail.kind === 'violation', true);
  assert.equal(fail.kind === 'violation' && fail.detail, 'fail for 192.0.2.10');
  assert.deepEqual(fail.outbound?.map((o) => o.result), ['fail', 'fail']);

  const soft = await assess('soft.example', settings('evaluate', 'reject'));
  assert.equal(soft.kind === 'violation', false, 'softfail is not a violation by default');
  const softCounted = await assess('soft.example', settings('evaluate', 'reject', ['fail', 'softfail']));
  assert.equal(softCounted.kind === 'violation', true);

  const redirected = await assess('redir.example', settings('evaluate', 'reject'));
  assert.equal(redirected.kind === 'violation', false);
  assert.equal(redirected.result, 'pass');

  const tempfail = await assess('timeout.example', settings('evaluate', 'reject'));
  assert.equal(tempfail.kind === 'violation', false);
  assert.equal(tempfail.kind, 'fail-open');
});

test('evaluate check: own domains must pass for every relay and carry the documented statements', async () => {
  const good = await assess('own-good.example', settings('evaluate', 'reject'));
  assert.equal(good.ownership, 'own');
  assert.equal(good.kind === 'violation', false);

  const noStatement = await assess('own-nostatement.example', settings('evaluate', 'reject'));
  assert.equal(noStatement.ownership, 'own');
  assert.equal(noStatement.kind === 'violation', true, 'passes, but lacks the include SPF_REGEX asks for');
  assert.match(noStatement.reason, /SPF_REGEX/);

  const foreignSame = await assess('own-nostatement.example', settings('evaluate', 'reject'), false);
  assert.equal(foreignSame.kind === 'violation', false, 'without LDAP the same record is fine');
});

test('evaluate check: an own-domain lookup that found no file descriptor is a local fault, never "not own", where ownership would decide', async () => {
  // The directory answers as LdapDomainDirectory does when the connection could not be opened.
  const noDescriptor: OwnDomainPort = {
    async isOwnDomain() {
      return { own: false, source: 'error', error: 'LdapLocalResourceError: no LDAP connection could be opened (too many open files): ldap://x: connect EMFILE', localFault: true };
    },
  };
  const spf = new SpfEvaluator({ resolver: new ZoneResolver(zone) });
  const judge = (domain: string, s: PolicySettings) => assessSender({ sender: `user@${domain}`, domain, helo: 'client.example' }, { spf, ownDomains: noDescriptor }, s);
  const decisive = { queueId: 'Q1', client: '203.0.113.9', recipients: new RecipientHops() };

  // As an own domain this record is a violation (no include SPF_REGEX asks for); as a foreign one it passes.
  const faulted = await judge('own-nostatement.example', settings('evaluate', 'reject'));
  assert.equal(faulted.kind, 'fail-open');
  assert.equal(faulted.kind === 'fail-open' && faulted.localFault, true);
  assert.equal(faulted.result, 'temperror');
  assert.equal(faulted.ownership, 'unknown');
  assert.match(faulted.reason, /^own-domain lookup failed for want of a local resource \(.*EMFILE\); as an own domain: .*SPF_REGEX/);
  const outcome = decideOutcome(faulted, decisive, decision('reject'), 'm1');
  assert.equal(outcome.action, 'tempfail');
  assert.equal(outcome.action === 'tempfail' && outcome.cause, 'local-fault');
  // Test mode defers nothing: it passes, as any unjudged message does.
  assert.equal(decideOutcome(await judge('own-nostatement.example', settings('evaluate', 'test')), decisive, decision('test'), 'm2').action, 'pass');

  // A record that would pass even as an own domain passes: ownership would change nothing.
  const good = await judge('own-good.example', settings('evaluate', 'reject'));
  assert.equal(good.kind, 'pass');
  assert.equal(good.ownership, 'unknown');
  // A violation for the relays is one whatever the ownership: LDAP is not even asked in reject mode.
  assert.equal((await judge('restrict.example', settings('evaluate', 'reject'))).kind, 'violation');

  // An LDAP failure that is the server's (not this host's) keeps failing open to "not own".
  const down: OwnDomainPort = {
    async isOwnDomain() {
      return { own: false, source: 'error', error: 'LdapUnavailableError: no LDAP server reachable' };
    },
  };
  const remote = await assessSender({ sender: 'user@own-nostatement.example', domain: 'own-nostatement.example', helo: 'h' }, { spf, ownDomains: down }, settings('evaluate', 'reject'));
  assert.equal(remote.kind, 'pass');
  assert.equal(remote.ownership, 'unknown');
});

test('each kind carries exactly its terms: violation a detail, fail-open a result that cannot be judged', async () => {
  const violation = await assess('restrict.example', settings('regex', 'reject'));
  assert.equal(violation.kind, 'violation');
  if (violation.kind === 'violation') assert.equal(violation.detail, '-all');
  const pass = await assess('soft.example', settings('regex', 'reject'));
  assert.deepEqual(Object.keys(pass).sort(), ['check', 'domain', 'kind', 'ownership', 'reason', 'record', 'recordDomain', 'result']);
  assert.equal('detail' in pass, false);
  const failOpen = await assess('servfail.example', settings('evaluate', 'reject'));
  assert.equal(failOpen.kind, 'fail-open');
  assert.ok(['none', 'permerror', 'temperror'].includes(failOpen.result));
});

test('not judged: the null sender and a sender without a usable domain never reach the SPF port', async () => {
  const untouchable: SpfPort = {
    effectiveRecord: () => assert.fail('asked for a record'),
    checkHostForIps: () => assert.fail('asked for check_host'),
  };
  for (const raw of ['<>', '<u@fail.example\\innocent.example>', '<u@[192.0.2.1]>']) {
    const a = await assessEnvelope(parseEnvelopeSender(raw), 'h.example', { spf: untouchable }, settings('evaluate'));
    assert.equal(a.kind, 'not-judged', raw);
  }
});

test('a signal reaches the SPF port, and its abort settles the assessment at once as fail-open', async () => {
  const seen: (AbortSignal | undefined)[] = [];
  const hanging: SpfPort = {
    effectiveRecord: (_d, options) => (seen.push(options?.signal), new Promise(() => {})),
    checkHostForIps: (_s, _h, _i, options) => (seen.push(options?.signal), new Promise(() => {})),
  };
  for (const check of ['regex', 'evaluate'] as const) {
    const controller = new AbortController();
    const pending = assessSender({ sender: 'u@slow.example', domain: 'slow.example', helo: 'h' }, { spf: hanging }, settings(check), { signal: controller.signal });
    controller.abort('no verdict within 5 ms');
    const a = await pending;
    assert.deepEqual(a, { kind: 'fail-open', domain: 'slow.example', check, ownership: 'not-asked', result: 'temperror', reason: 'no verdict within 5 ms' });
    assert.equal(seen.at(-1), controller.signal, `${check}: the port got the signal`);
  }
  const already = AbortSignal.abort('gone');
  assert.equal((await assessSender({ sender: 'u@x.example', domain: 'x.example', helo: '' }, { spf: hanging }, settings('regex'), { signal: already })).reason, 'gone');
});

test('a failing SPF port rejects the assessment, with or without a signal: the caller decides what it makes of it', async () => {
  const broken: SpfPort = {
    effectiveRecord: () => Promise.reject(new Error('port broken')),
    checkHostForIps: () => Promise.reject(new Error('port broken')),
  };
  for (const check of ['regex', 'evaluate'] as const) {
    for (const signal of [undefined, new AbortController().signal]) {
      await assert.rejects(async () => assessSender({ sender: 'u@x.example', domain: 'x.example', helo: '' }, { spf: broken }, settings(check), { signal }), /port broken/);
      if (signal) assert.equal(getEventListeners(signal, 'abort').length, 0, `${check}: no listener left after the failure`);
    }
  }
});

test('a signal that outlives the assessment keeps no listener from it', async () => {
  const spf = new SpfEvaluator({ resolver: new ZoneResolver(zone) });
  const controller = new AbortController();
  for (const check of ['regex', 'evaluate'] as const) {
    await assessSender({ sender: 'user@restrict.example', domain: 'restrict.example', helo: 'client.example' }, { spf, ownDomains }, settings(check), { signal: controller.signal });
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0, `${check}: no listener left on the signal`);
  }
});

/**
 * assessSender's answer when it gives one at once (no promise), else undefined. The work a
 * promise stands for is stopped at once, so that asking warms no cache.
 */
function answeredAtOnce(input: AssessInput, deps: AssessDeps, s: PolicySettings): JudgedAssessment | undefined {
  const probe = new AbortController();
  const run = assessSender(input, deps, s, { signal: probe.signal });
  if (!(run instanceof Promise)) return run;
  probe.abort('only asked whether the answer is cached');
  return undefined;
}

test('assessSender with warm caches answers at once, exactly as the lookup path does, or leaves it to that path', async () => {
  const domains = Object.keys(zone).filter((d) => !d.startsWith('_') && d !== 'timeout.example').concat(['nothing-here.example']);
  for (const mode of ['test', 'reject'] as const) {
    const s = settings('regex', mode);
    const spf = new SpfEvaluator({ resolver: new CachingResolver(new ZoneResolver(zone)) });
    const deps = { spf, ownDomains };
    for (const domain of domains) {
      const input = { sender: `user@${domain}`, domain, helo: 'client.example' };
      assert.equal(answeredAtOnce(input, deps, s), undefined, `${domain}: nothing is cached yet`);
      const looked = await assessSender(input, deps, s);
      const known = answeredAtOnce(input, deps, s);
      if (known !== undefined) {
        assert.deepEqual(known, looked, `${domain} (${mode})`);
        continue;
      }
      // Left to the lookup path: a violation whose outcome needs ownership, a failed lookup,
      // and chains the walk itself ended without an answer to remember (a loop).
      const why = looked.kind === 'violation' ? 'ownership' : domain === 'servfail.example' ? 'failed lookup' : domain === 'loop.example' ? 'loop' : 'none';
      assert.notEqual(why, 'none', `${domain} (${mode}) should be known from the cache`);
      assert.ok(why !== 'ownership' || mode === 'test', `${domain}: only test mode asks ownership`);
    }
    const always = ['ours.example', 'soft.example', 'split.example', 'two.example', 'spf10.example', 'nothing-here.example'];
    for (const domain of always) assert.notEqual(answeredAtOnce({ sender: `user@${domain}`, domain, helo: 'client.example' }, deps, s), undefined, domain);
    if (mode === 'reject') assert.equal(answeredAtOnce({ sender: 'user@restrict.example', domain: 'restrict.example', helo: 'client.example' }, deps, s)?.kind, 'violation');
  }
  // A directory that can answer from its cache: test mode judges violations at once as well.
  const answered = new Map<string, boolean>();
  const cachingOwnDomains: OwnDomainPort = {
    async isOwnDomain(domain) {
      answered.set(domain, own.has(domain));
      return { own: own.has(domain), source: 'ldap' };
    },
    isOwnDomainNow(domain) {
      const known = answered.get(domain);
      return known === undefined ? undefined : { own: known, source: 'cache' };
    },
  };
  const s = settings('regex', 'test');
  const spf = new SpfEvaluator({ resolver: new CachingResolver(new ZoneResolver(zone)) });
  for (const [domain, ownership] of [['restrict.example', 'own'], ['lookalike.example', 'foreign']] as const) {
    const input = { sender: `user@${domain}`, domain, helo: 'client.example' };
    const deps = { spf, ownDomains: cachingOwnDomains };
    const looked = await assessSender(input, deps, s);
    assert.deepEqual([looked.kind, looked.ownership], ['violation', ownership]);
    assert.deepEqual(answeredAtOnce(input, deps, s), looked, domain);
    assert.equal(answeredAtOnce(input, { spf }, s)?.ownership, 'not-asked', `${domain}: without LDAP nothing is asked`);
  }

  const evaluate = new SpfEvaluator({ resolver: new CachingResolver(new ZoneResolver(zone)) });
  const input = { sender: 'user@ours.example', domain: 'ours.example', helo: 'client.example' };
  await assessSender(input, { spf: evaluate }, settings('evaluate'));
  assert.equal(answeredAtOnce(input, { spf: evaluate }, settings('evaluate')), undefined, 'check_host() per relay is always looked up');
});
