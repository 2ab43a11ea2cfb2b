import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { CachingResolver } from '../../src/dns/cache.js';
import { describeFailure, loadSuite, runSuite, runSuiteFile, SuiteFormatError } from '../support/spf/suite-runner.js';

// dist/test/spf/suite.test.js -> <repo>/test/data/spf-suite/
const suiteFile = fileURLToPath(new URL('../../../test/data/spf-suite/rfc7208-tests.yml', import.meta.url));

test('RFC 7208 conformance suite: 203 of 203, explanations included', async () => {
  const report = await runSuiteFile(suiteFile);
  const failures = report.outcomes.filter((o) => !o.ok).map(describeFailure);
  assert.deepEqual(failures, []);
  assert.equal(report.passed, 203);
  assert.equal(report.failed, 0);
  // The 22 explanation checks really ran against fail results.
  const explained = report.outcomes.filter((o) => o.expectedExplanation !== undefined && o.actual === 'fail');
  assert.equal(explained.length, 22);
});

test('the suite scores the same through the DNS cache, whose TXT bound changes no result', async () => {
  const report = await runSuiteFile(suiteFile, { wrap: (zone) => new CachingResolver(zone, { minTtl: 0 }) });
  assert.deepEqual(report.outcomes.filter((o) => !o.ok).map(describeFailure), []);
  assert.equal(report.passed, 203);
});

test('runner reports a wrong explanation and a wrong result by id', async () => {
  const report = await runSuite(
    loadSuite(`
description: local
tests:
  wrong-exp:
    helo: mail.example.com
    host: 192.0.2.1
    mailfrom: a@x.example.com
    result: fail
    explanation: not this
  wrong-result:
    helo: mail.example.com
    host: 192.0.2.1
    mailfrom: a@x.example.com
    result: [pass, neutral]
  right:
    helo: mail.example.com
    host: 192.0.2.1
    mailfrom: a@x.example.com
    result: [pass, fail]
zonedata:
  x.example.com:
    - TXT: v=spf1 -all exp=why.example.com
  why.example.com:
    - TXT: "%{i} is not allowed"
`),
  );
  assert.equal(report.passed, 1);
  assert.equal(report.failed, 2);
  const byId = new Map(report.outcomes.map((o) => [o.id, o]));
  assert.equal(byId.get('wrong-exp')?.actualExplanation, '192.0.2.1 is not allowed');
  assert.match(describeFailure(byId.get('wrong-result')!), /wrong-result .*expected pass\|neutral.*got fail/);
});

test('runner accepts RCODE entries and IPv6 hosts in unseen scenarios', async () => {
  const report = await runSuite(
    loadSuite(`
description: extensions
tests:
  servfail:
    helo: h.example.com
    host: 2001:db8::5
    mailfrom: a@sf.example.com
    result: temperror
  refused-include:
    helo: h.example.com
    host: 2001:db8::5
    mailfrom: a@inc.example.com
    result: temperror
  v6-pass:
    helo: h.example.com
    host: 2001:DB8::5
    mailfrom: a@v6.example.com
    result: pass
zonedata:
  sf.example.com:
    - RCODE: 2
  inc.example.com:
    - TXT: v=spf1 include:ref.example.com -all
  ref.example.com:
    - RCODE: 5
  v6.example.com:
    - TXT: v=spf1 a -all
    - AAAA: 2001:db8:0:0::5
`),
  );
  assert.deepEqual(
    report.outcomes.filter((o) => !o.ok).map(describeFailure),
    [],
  );
  assert.equal(report.passed, 3);
});

test('loadSuite rejects input that is not in the suite format', () => {
  assert.throws(() => loadSuite('- just\n- a list\n'), SuiteFormatError);
  assert.throws(() => loadSuite('description: x\ntests: [1, 2]\n'), SuiteFormatError);
  assert.throws(() => loadSuite('tests:\n  t1:\n    host: 1.2.3.4\n'), SuiteFormatError);
});
