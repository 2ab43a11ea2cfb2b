/**
 * `sos-milter audit` with the DMARC columns (DMARC_CHECK=on, or --dmarc), against a real Knot
 * (the end-to-end zone) and slapd listing four own domains: the policy and where it was found,
 * SPF alignment readiness, DKIM signing (DKIM_SIGNING_DOMAINS), the verdict; table, JSON, CSV.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { captureOutput } from '../support/capture.js';
import { knotSkipReason, startKnot, type KnotInstance } from '../support/knot.js';
import { slapdUnavailableReason, startSlapd, type SlapdInstance } from '../support/slapd.js';
import { E2E_ZONES_DIR } from '../support/daemon-process.js';
import { runAuditCommand } from '../../src/cli/audit-command.js';

const skip = knotSkipReason() ?? slapdUnavailableReason() ?? false;
const SUFFIX = 'dc=example,dc=test';
const DOMAINS = ['dmarc-reject.e2e.test', 'dmarc-aligned.e2e.test', 'own.e2e.test', 'pass.e2e.test'];
const LDIF = [
  `dn: ${SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example ESP\n`,
  `dn: ou=domains,${SUFFIX}\nobjectClass: organizationalUnit\nou: domains\n`,
  ...DOMAINS.map((d) => `dn: dc=${d},ou=domains,${SUFFIX}\nobjectClass: domain\ndc: ${d}\n`),
].join('\n');

async function audit(argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string; err: string }> {
  let err = '';
  const errStream = { write: (chunk: string) => ((err += chunk), true) } as unknown as NodeJS.WritableStream;
  const { code, text } = await captureOutput((out) => runAuditCommand(argv, env, { out, err: errStream, progress: false }));
  return { code, out: text, err };
}

interface DmarcColumns {
  policy: string;
  recordDomain?: string;
  tag?: string;
  spfAligned: string;
  dkimSigning: string;
  verdict: string;
}

describe('audit: the DMARC columns', { skip, timeout: 60_000 }, () => {
  let knot: KnotInstance;
  let slapd: SlapdInstance;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    knot = await startKnot({ zonesDir: E2E_ZONES_DIR });
    slapd = await startSlapd({ ldif: LDIF });
    env = {
      DNS_SERVERS: `127.0.0.1:${knot.port}`,
      DNS_TIMEOUT_MS: '1000',
      SPF_REGEX: 'v=spf1 .*include:_spf\\.esp\\.e2e\\.test',
      LDAP_ENABLED: 'yes',
      LDAP_SERVER_URI: slapd.url,
      LDAP_SEARCH_BASE: `ou=domains,${SUFFIX}`,
      LDAP_QUERY_FILTER: '(dc=%d)',
      LOG_LEVEL: 'error',
    };
  });
  after(async () => {
    await slapd?.close();
    await knot?.close();
  });

  test('JSON: policy, where, SPF alignment readiness, DKIM signing, verdict', async () => {
    const run = await audit(['--json'], { ...env, DMARC_CHECK: 'on', DKIM_SIGNING_DOMAINS: 'dmarc-aligned.e2e.test' });
    const rows = run.out.trim().split('\n').map((l) => JSON.parse(l) as { domain?: string; dmarc?: DmarcColumns });
    const by = new Map(rows.filter((r) => r.domain).map((r) => [r.domain!, r.dmarc!]));
    assert.deepEqual(
      { ...by.get('dmarc-reject.e2e.test'), reason: undefined },
      { policy: 'reject', recordDomain: 'dmarc-reject.e2e.test', tag: 'p', spfAligned: 'yes', dkimSigning: 'no', verdict: 'pass', reason: undefined },
    );
    const aligned = by.get('dmarc-aligned.e2e.test')!;
    assert.equal(aligned.dkimSigning, 'yes');
    assert.equal(aligned.verdict, 'pass');
    // own.e2e.test's record lacks the ESP's include: SPF would not align; the policy is e2e.test's (psd=y, p=none).
    const own = by.get('own.e2e.test')!;
    assert.equal(own.spfAligned, 'no');
    assert.equal(own.policy, 'none');
    assert.equal(own.recordDomain, 'e2e.test');
    assert.equal(own.verdict, 'pass');
  });

  test('CSV and table carry the columns with --dmarc; without it and DMARC_CHECK=off they are absent', async () => {
    const csv = await audit(['--csv', '--dmarc'], { ...env, DKIM_SIGNING_DOMAINS: '*' });
    const lines = csv.out.trimEnd().split('\r\n');
    assert.match(lines[0]!, /,dmarc_policy,dmarc_record_domain,dmarc_spf_aligned,dmarc_dkim_signing,dmarc_verdict,dmarc_reason$/);
    const reject = lines.find((l) => l.startsWith('dmarc-reject.e2e.test,'));
    assert.match(reject ?? '', /,reject,dmarc-reject\.e2e\.test,yes,yes,pass,/);

    const table = await audit(['--dmarc'], env);
    assert.match(table.out, /DMARC +SPF-ALIGNED +DKIM-SIGNING +DMARC-VERDICT/);
    assert.match(table.out, /dmarc-reject\.e2e\.test .*reject \(p at dmarc-reject\.e2e\.test\) +yes +no +pass/);

    const plain = await audit(['--csv'], env);
    assert.doesNotMatch(plain.out, /dmarc_policy/);
  });
});
