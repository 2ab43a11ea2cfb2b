// `sos-milter check` against a real Knot and slapd serving the end-to-end data.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { captureOutput } from '../support/capture.js';
import { knotSkipReason, startKnot, type KnotInstance } from '../support/knot.js';
import { slapdUnavailableReason, startSlapd, type SlapdInstance } from '../support/slapd.js';
import { runCheckCommand } from '../../src/cli/check-command.js';

const zonesDir = fileURLToPath(new URL('../../../test/data/dns/e2e/', import.meta.url));
const ldif = fileURLToPath(new URL('../../../test/data/ldap/e2e.ldif', import.meta.url));

function run(argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; text: string }> {
  return captureOutput((out) => runCheckCommand(argv, env, out));
}

test('usage and configuration errors', async () => {
  assert.equal((await run([], {})).code, 64);
  assert.equal((await run(['a@b.test', '--client', 'nope'], {})).code, 64);
  const bad = await run(['a@b.test'], { MILTER_MODE: 'loud' });
  assert.equal(bad.code, 78);
  assert.match(bad.text, /MILTER_MODE/);
  const nul = await run(['<>'], {});
  assert.equal(nul.code, 0);
  assert.match(nul.text, /null sender/);
});

const skip = knotSkipReason() ?? slapdUnavailableReason() ?? undefined;

describe('against Knot and slapd', { skip }, () => {
  let knot: KnotInstance;
  let slapd: SlapdInstance;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    knot = await startKnot({ zonesDir });
    slapd = await startSlapd({ ldif });
    env = {
      DNS_SERVERS: `127.0.0.1:${knot.port}`,
      DNS_TIMEOUT_MS: '1000',
      SPF_REGEX: 'v=spf1 .*include:_spf\\.esp\\.e2e\\.test',
      LDAP_ENABLED: 'yes',
      LDAP_SERVER_URI: slapd.url,
      LDAP_SEARCH_BASE: `ou=domains,${slapd.suffix}`,
      LDAP_QUERY_FILTER: '(dc=%d)',
    };
  });
  after(async () => {
    await slapd?.close();
    await knot?.close();
  });

  test('a passing sender', async () => {
    const { code, text } = await run(['<someone@pass.e2e.test>'], env);
    assert.equal(code, 0, text);
    assert.match(text, /record: +v=spf1 mx include:_spf\.esp\.e2e\.test -all/);
    assert.match(text, /action: +pass/);
  });

  test('reject mode shows the reply the client would see', async () => {
    const { code, text } = await run(['someone@foreign.e2e.test'], { ...env, MILTER_MODE: 'reject' });
    assert.equal(code, 1, text);
    assert.match(text, /reply: +550 5\.7\.1 sos-milter: [a-z0-9]{8} SPF-record \(-all\) of 5321_from_domain=foreign\.e2e\.test does not permit us to relay this message! Security policy violation!/);
  });

  test('rewrite mode shows the rewritten sender and the header; an over-long one shows why it is rejected', async () => {
    const srsEnv = { ...env, MILTER_MODE: 'rewrite', SRS_DOMAIN: 'bounce.esp.e2e.test', SRS_SECRETS: 'check-command-secret-0123' };
    const { code, text } = await run(['someone@foreign.e2e.test'], srsEnv);
    assert.equal(code, 1, text);
    assert.match(text, /action: +rewrite/);
    assert.match(text, /rewrite: +MAIL FROM:<someone@foreign\.e2e\.test> becomes MAIL FROM:<SRS0=[A-Za-z0-9+/]{4}=[A-Z2-7]{2}=foreign\.e2e\.test=someone@bounce\.esp\.e2e\.test>/);
    assert.match(text, /header: +X-SOS-Milter: rewritten/);
    assert.ok(!text.includes('check-command-secret-0123'));
    const long = await run([`${'x'.repeat(50)}@foreign.e2e.test`], srsEnv);
    assert.match(long.text, /action: +reject/);
    assert.match(long.text, /rewrite: +not rewritten \(local-part-too-long: the SRS0 local part would be 80 octets, over RFC 5321's 64\)/);
  });

  test('test mode marks an own domain, and an ignored next hop passes', async () => {
    const own = await run(['someone@own.e2e.test', '--json'], env);
    assert.equal(own.code, 1);
    const report = JSON.parse(own.text) as { assessment: { ownership: string }; outcome: { action: string; header: { value: string } } };
    assert.equal(report.assessment.ownership, 'own');
    assert.equal(report.outcome.action, 'tag');
    assert.equal(report.outcome.header.value, 'failed SPF-expectation');

    const ignored = await run(['someone@foreign.e2e.test', '--next-hop', '[relay.e2e.test]:25'], { ...env, IGNORED_NEXT_HOPS: '[relay.e2e.test]:25' });
    assert.equal(ignored.code, 0, ignored.text);
    assert.match(ignored.text, /action: +pass-ignored-next-hop/);
  });
});

describe('check --from: the DMARC judgement, against Knot', { skip: knotSkipReason() ?? undefined }, () => {
  let knot: KnotInstance;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    knot = await startKnot({ zonesDir });
    env = { DNS_SERVERS: `127.0.0.1:${knot.port}`, DNS_TIMEOUT_MS: '1000', SPF_REGEX: 'v=spf1 .*include:_spf\\.esp\\.e2e\\.test' };
  });
  after(async () => {
    await knot?.close();
  });

  test('not aligned under p=reject: the policy, where, both alignments, the verdict and the reject', async () => {
    const { code, text } = await run(['bounce@pass.e2e.test', '--from', 'Alice <alice@dmarc-reject.e2e.test>'], { ...env, MILTER_MODE: 'reject', DMARC_CHECK: 'on' });
    assert.equal(code, 1, text);
    assert.match(text, /dmarc: +From: Alice <alice@dmarc-reject\.e2e\.test> \(domain dmarc-reject\.e2e\.test\)/);
    assert.match(text, /policy: +p=reject at the domain itself: _dmarc\.dmarc-reject\.e2e\.test/);
    assert.match(text, /spf: +not aligned MAIL FROM domain \(relaxed\)/);
    assert.match(text, /dkim: +no signing domain known/);
    assert.match(text, /verdict: +violation: /);
    assert.match(text, /reply: +550 5\.7\.1 sos-milter: [a-z0-9]{8} DMARC policy \(reject\) of 5322_from_domain=dmarc-reject\.e2e\.test is not met/);
  });

  test('test mode tags; a DKIM signing domain that aligns passes; DMARC_CHECK=off judges without acting', async () => {
    const tagged = await run(['bounce@pass.e2e.test', '--from', 'alice@dmarc-reject.e2e.test', '--json'], { ...env, DMARC_CHECK: 'on' });
    assert.equal(tagged.code, 1, tagged.text);
    const r = JSON.parse(tagged.text) as { dmarc: { enabled: boolean; report: { judgement: { kind: string }; discovery: { recordDomain: string } }; outcome: { action: string; header: { value: string } } } };
    assert.equal(r.dmarc.enabled, true);
    assert.equal(r.dmarc.report.judgement.kind, 'violation');
    assert.equal(r.dmarc.report.discovery.recordDomain, 'dmarc-reject.e2e.test');
    assert.equal(r.dmarc.outcome.action, 'tag');
    assert.equal(r.dmarc.outcome.header.value, 'failed DMARC-expectation');

    const signed = await run(['bounce@pass.e2e.test', '--from', 'alice@dmarc-reject.e2e.test'], { ...env, DMARC_CHECK: 'on', DKIM_SIGNING_DOMAINS: '*' });
    assert.equal(signed.code, 0, signed.text);
    assert.match(signed.text, /dkim: +aligned dmarc-reject\.e2e\.test \(relaxed\)/);
    assert.match(signed.text, /verdict: +pass: /);

    const off = await run(['bounce@pass.e2e.test', '--from', 'alice@dmarc-reject.e2e.test'], env);
    assert.equal(off.code, 0, off.text);
    assert.match(off.text, /verdict: +violation/);
    assert.match(off.text, /action: +none \(DMARC_CHECK=off/);
  });

  test('SPF aligned: the envelope sender is the From: domain', async () => {
    const { code, text } = await run(['bounce@dmarc-aligned.e2e.test', '--from', 'alice@dmarc-aligned.e2e.test'], { ...env, MILTER_MODE: 'reject', DMARC_CHECK: 'on' });
    assert.equal(code, 0, text);
    assert.match(text, /spf: +aligned MAIL FROM domain \(strict\)/);
    assert.match(text, /action: +pass/);
  });
});
