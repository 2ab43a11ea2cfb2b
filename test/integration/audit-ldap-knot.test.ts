/**
 * `sos-milter audit` against the real slapd (5,000 own domains, a server size limit of 500
 * that an unpaged search would hit) and the real Knot serving their records: passing,
 * broken, no record, permerror, DNS timeout, 8 and 9 lookups already used. The report lists
 * exactly the broken ones with the right remedy; publishing the remedies and auditing again
 * shows each suggested record passing; the exit status follows.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { Client, SizeLimitExceededError } from 'ldapts';
import { runAuditCommand } from '../../src/cli/audit-command.js';
import { runCheckCommand } from '../../src/cli/check-command.js';
import {
  auditEnv,
  ESP_INCLUDE,
  ESP_ZONE,
  fixtureDomains,
  HANG_ZONE,
  HOSTED_BASE,
  ldif,
  MILTER_DN,
  MILTER_PW,
  SEARCH_BASE,
  zoneText,
  type FixtureDomain,
} from '../support/audit-fixture.js';
import { knotSkipReason, startKnot, type KnotInstance } from '../support/knot.js';
import { freePort, slapdUnavailableReason, startSlapd, type SlapdInstance } from '../support/slapd.js';

const skip = knotSkipReason() ?? slapdUnavailableReason() ?? false;
const TOTAL = 5000;
const SIZE_LIMIT = 500;

function sink(): { stream: Writable; text(): string } {
  let text = '';
  return {
    stream: new Writable({
      write(chunk: Buffer, _enc, cb) {
        text += chunk.toString('utf8');
        cb();
      },
    }),
    text: () => text,
  };
}

async function audit(argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string; err: string }> {
  const out = sink();
  const err = sink();
  const code = await runAuditCommand(argv, env, { out: out.stream, err: err.stream });
  return { code, out: out.text(), err: err.text() };
}

interface JsonLine {
  domain: string;
  status: string;
  result: string;
  action: { test: string; reject: string };
  record: string | null;
  reason: string;
  remedy: null | { kind: string; record?: string; change?: string; reason?: string };
  lookups: null | { used: number; limit: number; warning?: string; addition?: { term: string; cost: number } };
}

function parseJsonLines(out: string): { lines: JsonLine[]; summary: { domains: number; byStatus: Record<string, number>; seconds: number } } {
  const rows = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const last = rows.pop() as { summary: { domains: number; byStatus: Record<string, number>; seconds: number } };
  return { lines: rows as unknown as JsonLine[], summary: last.summary };
}

describe(`audit of ${TOTAL} own domains: slapd + Knot`, { skip, timeout: 300_000 }, () => {
  let knot: KnotInstance;
  let slapd: SlapdInstance;
  let domains: FixtureDomain[];
  let env: NodeJS.ProcessEnv;
  let first: { code: number; lines: JsonLine[]; summary: { domains: number; byStatus: Record<string, number>; seconds: number } };

  before(async () => {
    domains = fixtureDomains(TOTAL);
    knot = await startKnot({ zones: { 'audit.test': zoneText(domains), 'esp.test': ESP_ZONE }, timeoutNames: [HANG_ZONE], blackholeTimeoutMs: 2000 });
    slapd = await startSlapd({ ldif: ldif(domains), sizeLimit: SIZE_LIMIT });
    env = auditEnv(slapd.url, knot.port);
    const run = await audit(['--json'], env);
    first = { code: run.code, ...parseJsonLines(run.out) };
    // The run time, for the record (the benchmark is bench/audit-bench.ts; no timing is asserted).
    console.log(`# audit of ${first.summary.domains} domains took ${first.summary.seconds.toFixed(1)} s`);
  });
  after(async () => {
    await slapd?.close();
    await knot?.close();
  });

  test(`slapd's size limit (${SIZE_LIMIT}) cuts an unpaged search: the audit must page`, async () => {
    const client = new Client({ url: slapd.url, timeout: 10_000 });
    try {
      await client.bind(MILTER_DN, MILTER_PW);
      await assert.rejects(client.search(SEARCH_BASE, { scope: 'sub', filter: '(objectClass=domain)', attributes: ['1.1'] }), SizeLimitExceededError);
    } finally {
      await client.unbind();
    }
  });

  test('every domain is listed (paged past the size limit) and judged once', () => {
    assert.equal(first.summary.domains, TOTAL);
    assert.equal(first.lines.length, TOTAL);
    assert.deepEqual(new Set(first.lines.map((l) => l.domain)), new Set(domains.map((d) => d.domain)));
  });

  test('exactly the broken domains fail, each with the right remedy; exit status 1', () => {
    assert.equal(first.code, 1);
    const byDomain = new Map(first.lines.map((l) => [l.domain, l]));
    const expectedCounts = { pass: 0, fail: 0, unjudged: 0 };
    for (const d of domains) {
      expectedCounts[d.status]++;
      const line = byDomain.get(d.domain)!;
      assert.equal(line.status, d.status, `${d.domain} (${d.kind}): ${line.reason}`);
      if (d.status === 'pass') {
        assert.equal(line.remedy, null, d.domain);
        assert.deepEqual(line.action, { test: 'pass', reject: 'pass' }, d.domain);
        continue;
      }
      const expected = d.remedy!;
      if ('record' in expected) {
        assert.equal(line.remedy?.kind, 'record', `${d.domain} (${d.kind}): ${JSON.stringify(line.remedy)}`);
        assert.equal(line.remedy?.record, expected.record, `${d.domain} (${d.kind})`);
      } else if ('impossible' in expected) {
        assert.equal(line.remedy?.kind, 'impossible', `${d.domain} (${d.kind}): ${JSON.stringify(line.remedy)}`);
        assert.match(line.remedy?.reason ?? '', expected.impossible, d.domain);
      } else {
        assert.equal(line.remedy?.kind, 'unknown', `${d.domain} (${d.kind})`);
        assert.equal(line.result, 'temperror');
      }
      // A failing own domain is tagged in test mode and rejected in reject mode; an unjudged one passes.
      assert.deepEqual(line.action, d.status === 'fail' ? { test: 'tag', reject: 'reject' } : { test: 'pass', reject: 'pass' }, d.domain);
    }
    assert.deepEqual(first.summary.byStatus, expectedCounts);
  });

  test('the lookup budget: flagged at 8 or more, and where the include would exceed 10', () => {
    const of = (kind: FixtureDomain['kind']) => domains.filter((d) => d.kind === kind).map((d) => first.lines.find((l) => l.domain === d.domain)!);
    for (const line of of('budget-9-missing-include')) {
      assert.equal(line.lookups?.used, 9);
      assert.deepEqual(line.lookups?.addition, { term: ESP_INCLUDE, cost: 2, voidLookups: 0 });
      assert.match(line.lookups?.warning ?? '', /would need 11 of 10 DNS lookups/);
      assert.match(line.remedy?.reason ?? '', /^add include:_spf\.esp\.test before -all would need 11\/10 DNS lookups .*; the record already spends 9\/10 on include:_n1\.audit\.test \(1\), include:_n2/);
    }
    for (const line of of('budget-8-missing-include')) {
      assert.equal(line.lookups?.used, 8);
      assert.match(line.lookups?.warning ?? '', /8 of 10 DNS lookups used/);
    }
    for (const line of of('pass-budget-9')) {
      assert.equal(line.lookups?.used, 9);
      assert.equal(line.lookups?.addition, undefined, 'the include is already there');
      assert.match(line.lookups?.warning ?? '', /9 of 10 DNS lookups used/);
    }
    const plain = of('pass')[0]!;
    assert.equal(plain.lookups?.used, 2);
    assert.equal(plain.lookups?.warning, undefined);
  });

  test('--only-broken --csv lists exactly the domains that do not pass', async () => {
    const run = await audit(['--only-broken', '--csv'], env);
    assert.equal(run.code, 1);
    const rows = run.out.trimEnd().split('\r\n');
    assert.equal(rows[0], 'domain,status,result,action_test,action_reject,record,reason,remedy,suggested_record,lookups,lookup_warning');
    const listed = rows.slice(1).map((r) => r.split(',')[0]);
    assert.deepEqual(listed.sort(), domains.filter((d) => d.status !== 'pass').map((d) => d.domain).sort());
    assert.match(run.err, new RegExp(`^audited ${TOTAL} domains in [0-9.]+ s: pass \\d+, fail \\d+, unjudged 3 `, 'm'));
  });

  test('publish every suggested record and audit again: each passes', async () => {
    const remedies = new Map<string, string>();
    for (const line of first.lines) if (line.remedy?.kind === 'record') remedies.set(line.domain, line.remedy.record!);
    assert.equal(remedies.size, domains.filter((d) => d.remedy && 'record' in d.remedy).length);
    const fixed = await startKnot({ zones: { 'audit.test': zoneText(domains, remedies), 'esp.test': ESP_ZONE }, timeoutNames: [HANG_ZONE], blackholeTimeoutMs: 2000 });
    try {
      const run = await audit(['--json'], { ...env, DNS_SERVERS: `127.0.0.1:${fixed.port}` });
      const again = parseJsonLines(run.out);
      const byDomain = new Map(again.lines.map((l) => [l.domain, l]));
      for (const domain of remedies.keys()) assert.equal(byDomain.get(domain)?.status, 'pass', `${domain}: ${remedies.get(domain)} -> ${byDomain.get(domain)?.reason}`);
      // What had no passing remedy is still broken: the exit status still says so.
      const stillBroken = again.lines.filter((l) => l.status !== 'pass').map((l) => l.domain).sort();
      assert.deepEqual(stillBroken, domains.filter((d) => d.status !== 'pass' && !remedies.has(d.domain)).map((d) => d.domain).sort());
      assert.equal(run.code, 1);
    } finally {
      await fixed.close();
    }
  });

  test('`check` prints the same remedy and the lookup budget', async () => {
    const broken = domains.find((d) => d.kind === 'budget-8-missing-include')!;
    const out = sink();
    const code = await runCheckCommand([`someone@${broken.domain}`], env, out.stream);
    assert.equal(code, 1, out.text());
    const expected = broken.remedy as { record: string };
    assert.ok(out.text().includes(`remedy:   add ${ESP_INCLUDE} before -all: "${expected.record}"`), out.text());
    assert.match(out.text(), /^lookups: +8\/10 DNS-querying terms, 0\/2 void ! 8 of 10 DNS lookups used/m);
    const impossible = domains.find((d) => d.kind === 'budget-9-missing-include')!;
    const out2 = sink();
    await runCheckCommand([`someone@${impossible.domain}`, '--json'], env, out2.stream);
    const report = JSON.parse(out2.text()) as { remedy: { kind: string; reason: string }; lookups: { used: number; warning: string } };
    assert.equal(report.remedy.kind, 'impossible');
    assert.match(report.remedy.reason, /11\/10 DNS lookups/);
    assert.equal(report.lookups.used, 9);
  });

  test('the progress bar is drawn on stderr when asked (a terminal), never into the report', async () => {
    const out = sink();
    const err = sink();
    const code = await runAuditCommand([], { ...env, LDAP_AUDIT_FILTER: '(&(objectClass=domain)(dc=p00*))' }, { out: out.stream, err: err.stream, progress: true });
    assert.equal(code, 0);
    assert.match(err.text(), /\r\[#+\] \d+\/\d+ domains/);
    assert.ok(!out.text().includes('\r'), 'no progress in the report');
    // Not a terminal (the default here): no bar.
    const plain = await audit([], { ...env, LDAP_AUDIT_FILTER: '(&(objectClass=domain)(dc=p00*))' });
    assert.ok(!plain.err.includes('domains\r') && !plain.err.includes('\r['));
  });

  test('LDAP_AUDIT_FILTER selecting passing domains only: exit 0, table with a summary line', async () => {
    const run = await audit([], { ...env, LDAP_AUDIT_FILTER: '(&(objectClass=domain)(dc=p0*))' });
    assert.equal(run.code, 0, run.err);
    const summary = run.out.trimEnd().split('\n').pop()!;
    assert.match(summary, /^audited \d+ domains in [0-9.]+ s: pass \d+, fail 0, unjudged 0 \(results: pass \d+\)$/);
    assert.match(run.out, /^DOMAIN +STATUS +RESULT +TEST +REJECT +LOOKUPS$/m);
  });

  test('LDAP_DOMAIN_ATTRIBUTE: every value of associatedDomain is a domain, not the RDN', async () => {
    const run = await audit(['--json'], { ...env, LDAP_SEARCH_BASE: HOSTED_BASE, LDAP_AUDIT_FILTER: '(objectClass=domainRelatedObject)', LDAP_DOMAIN_ATTRIBUTE: 'associatedDomain' });
    assert.equal(run.code, 0, run.err);
    const { lines } = parseJsonLines(run.out);
    const passing = domains.filter((d) => d.kind === 'pass').slice(0, 3).map((d) => d.domain);
    assert.deepEqual(lines.map((l) => l.domain).sort(), passing.sort());
  });

  test('the audit cannot complete: LDAP unreachable or a bad setting give exit 2', async () => {
    const dead = await audit([], { ...env, LDAP_SERVER_URI: `ldap://127.0.0.1:${await freePort()}` });
    assert.equal(dead.code, 2);
    assert.match(dead.err, /cannot list the own domains from LDAP: .*ECONNREFUSED/);
    assert.equal(dead.out, '');
    const bad = await audit([], { ...env, LDAP_AUDIT_FILTER: 'dc=*' });
    assert.equal(bad.code, 2);
    assert.match(bad.err, /configuration error: LDAP_AUDIT_FILTER: /);
    const off = await audit([], { ...env, LDAP_ENABLED: '' });
    assert.equal(off.code, 2);
    assert.match(off.err, /LDAP_ENABLED is not set/);
  });
});
