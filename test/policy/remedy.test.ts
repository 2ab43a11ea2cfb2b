/**
 * The remedy, judged by the same assessment code as the daemon, on in-process DNS data:
 * the regex check (ESP mechanism before all), evaluate without a named mechanism (the
 * unauthorised relays as ip4:/ip6:), the mechanism taken from SPF_REGEX, and the limits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDomainJudge } from '../../src/cli/domain-report.js';
import { loadConfig } from '../../src/config/index.js';
import { policySettings, type PolicyParts } from '../../src/app/policy-parts.js';
import { IgnoredNextHops, insertTerms, mechanismFromRegex } from '../../src/policy/index.js';
import { SpfEvaluator } from '../../src/spf/index.js';
import { ZoneResolver } from '../support/spf/zone-resolver.js';

const zone = new ZoneResolver({
  '_spf.esp.example': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all' }],
  'strict.example': [{ TXT: 'v=spf1 mx -all' }],
  'soft.example': [{ TXT: 'v=spf1 a ~all' }],
  'ok.example': [{ TXT: 'v=spf1 include:_spf.esp.example -all' }],
  'two.example': [{ TXT: 'v=spf1 -all' }, { TXT: 'v=spf1 ~all' }],
  'v6.example': [{ TXT: 'v=spf1 ip4:192.0.2.10 -all' }],
  'void.example': [{ TXT: 'v=spf1 a:n1.example a:n2.example -all' }],
  'over.example': [{ TXT: `v=spf1 ${Array.from({ length: 11 }, (_, i) => `a:h${i}.example`).join(' ')} -all` }],
  ...Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`h${i}.example`, [{ A: `198.51.100.${i + 1}` }]])),
});

function judge(env: Record<string, string>) {
  const config = loadConfig(env);
  const spf = new SpfEvaluator({ resolver: zone });
  const parts = {
    resolver: zone,
    spf,
    directory: undefined,
    settings: policySettings(config),
    ignoredNextHops: new IgnoredNextHops([]),
  } as unknown as PolicyParts;
  return createDomainJudge(config, parts, { isOwnDomain: async () => ({ own: true, source: 'ldap' }) });
}

test('SPF_REGEX names the mechanism; literal escapes undone', () => {
  assert.equal(mechanismFromRegex('^v=spf1 .*include:_spf\\.esp\\.example'), 'include:_spf.esp.example');
  assert.equal(mechanismFromRegex('.*ip4:192\\.0\\.2\\.0/24'), 'ip4:192.0.2.0/24');
  assert.equal(mechanismFromRegex('.*'), undefined);
  assert.equal(mechanismFromRegex('.*include:\\S+'), undefined);
});

test('insertTerms goes before all, else before the first modifier, else at the end', () => {
  assert.deepEqual(insertTerms('v=spf1 mx -all', ['include:x.example']), { record: 'v=spf1 mx include:x.example -all', where: 'before -all' });
  assert.deepEqual(insertTerms('v=spf1 mx redirect=y.example', ['include:x.example']), { record: 'v=spf1 mx include:x.example redirect=y.example', where: 'before redirect=y.example' });
  assert.deepEqual(insertTerms('v=spf1 mx', ['ip4:192.0.2.1']), { record: 'v=spf1 mx ip4:192.0.2.1', where: 'at the end' });
  assert.equal(insertTerms('v=spf1 include:x.example -all', ['include:X.example']).record, 'v=spf1 include:x.example -all');
});

test('regex check: the ESP include goes before -all; ~all records already pass', async () => {
  const j = judge({ SPF_CHECK: 'regex', SPF_REGEX: '^v=spf1 .*include:_spf\\.esp\\.example', MILTER_MODE: 'reject' });
  const strict = await j.judge('strict.example');
  assert.equal(strict.status, 'fail');
  assert.deepEqual(strict.actions, { test: 'tag', reject: 'reject' });
  assert.equal(strict.remedy.kind, 'record');
  assert.equal(strict.remedy.kind === 'record' && strict.remedy.record, 'v=spf1 mx include:_spf.esp.example -all');
  assert.equal((await j.judge('soft.example')).status, 'pass', 'not restrictive: the regex check lets it pass');
  assert.equal((await j.judge('ok.example')).remedy.kind, 'none');
});

test('regex check with no mechanism to add: impossible, says which variable to set', async () => {
  const j = judge({ SPF_CHECK: 'regex', SPF_REGEX: '^v=spf1 .*include:\\S+esp' });
  const r = await j.judge('strict.example');
  assert.equal(r.status, 'fail');
  assert.equal(r.remedy.kind, 'impossible');
  assert.match(r.remedy.kind === 'impossible' ? r.remedy.reason : '', /SPF_REMEDY_MECHANISM/);
  const fixed = await judge({ SPF_CHECK: 'regex', SPF_REGEX: '^v=spf1 .*include:\\S+esp', SPF_REMEDY_MECHANISM: 'include:_spf.esp.example' }).judge('strict.example');
  assert.equal(fixed.remedy.kind === 'record' && fixed.remedy.record, 'v=spf1 mx include:_spf.esp.example -all');
});

test('evaluate with the default regex: the unauthorised relays as ip4:/ip6:', async () => {
  const j = judge({ SPF_CHECK: 'evaluate', OUTBOUND_IPS: '192.0.2.10, 2001:db8::25' });
  const r = await j.judge('v6.example');
  assert.equal(r.status, 'fail');
  assert.equal(r.remedy.kind === 'record' && r.remedy.record, 'v=spf1 ip4:192.0.2.10 ip6:2001:db8::25 -all');
  const none = await j.judge('missing.example');
  assert.equal(none.status, 'fail', 'an own domain without a record fails under evaluate');
  assert.equal(none.remedy.kind === 'record' && none.remedy.record, 'v=spf1 ip4:192.0.2.10 ip6:2001:db8::25 ~all');
  assert.match(none.remedy.kind === 'record' ? (none.remedy.note ?? '') : '', /other senders/);
});

test('two SPF records: permerror, no single record to amend', async () => {
  const r = await judge({ SPF_CHECK: 'evaluate', OUTBOUND_IPS: '192.0.2.10' }).judge('two.example');
  assert.equal(r.status, 'fail');
  assert.equal(r.remedy.kind, 'impossible');
});

test('a suggestion that would break the void-lookup limit is not made', async () => {
  // The record already spends 2 void lookups; an a: that is void too would make 3.
  const r = await judge({ SPF_CHECK: 'regex', SPF_REGEX: '^v=spf1 .*a:n3\\.example' }).judge('void.example');
  assert.equal(r.status, 'fail');
  assert.equal(r.remedy.kind, 'impossible');
  assert.match(r.remedy.kind === 'impossible' ? r.remedy.reason : '', /3\/2 void lookups/);
  assert.equal(r.budget?.voidLookups, 2);
});

test('a record already over 10 lookups: flagged, and no remedy can pass', async () => {
  const r = await judge({ SPF_CHECK: 'evaluate', OUTBOUND_IPS: '192.0.2.10', SPF_REGEX: '^v=spf1 .*include:_spf\\.esp\\.example' }).judge('over.example');
  assert.equal(r.status, 'fail');
  assert.equal(r.result, 'permerror');
  assert.equal(r.budget?.used, 11);
  assert.match(r.budget?.warning ?? '', /11 of 10 DNS lookups: over the limit/);
  assert.equal(r.remedy.kind, 'impossible');
  assert.match(r.remedy.kind === 'impossible' ? r.remedy.reason : '', /would need 12\/10 DNS lookups.*already spends 11\/10 on a:h0\.example \(1\)/);
});
