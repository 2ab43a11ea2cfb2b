/**
 * LDAP_DKIM_ATTRIBUTE against a real slapd (test/data/ldap/dkim.ldif, associatedDomain) and a
 * real Knot (the end-to-end zone): the DKIM signing domains of mail From: an own domain come
 * from that domain's entry. The daemon's parts are built by the composition root from the
 * environment (createPolicyParts, createDmarcParts), as src/daemon/run.ts builds them, and
 * judge messages over a loopback milter connection; `sos-milter check --from` and
 * `sos-milter audit --dmarc` read the same attribute.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/index.js';
import { assessmentTimeoutMs, createDmarcParts, createPolicyParts, type PolicyParts } from '../../src/app/policy-parts.js';
import { createSosMilterApp } from '../../src/daemon/sos-app.js';
import { LdapDomainDirectory } from '../../src/ldap/index.js';
import { MilterServer, type BoundAddress } from '../../src/milter/index.js';
import { runCheckCommand } from '../../src/cli/check-command.js';
import { runAuditCommand } from '../../src/cli/audit-command.js';
import { captureOutput } from '../support/capture.js';
import { captureLog } from '../support/log-capture.js';
import { knotSkipReason, startKnot, type KnotInstance } from '../support/knot.js';
import { freePort, slapdUnavailableReason, startSlapd, type SlapdInstance } from '../support/slapd.js';
import { E2E_ZONES_DIR } from '../support/daemon-process.js';
import { MilterTestClient, POSTFIX_OFFER } from '../support/milter-client.js';

const LDIF = fileURLToPath(new URL('../../../test/data/ldap/dkim.ldif', import.meta.url));
const skip = knotSkipReason() ?? slapdUnavailableReason() ?? false;

interface Daemon {
  parts: PolicyParts;
  server: MilterServer;
  address: BoundAddress;
  lines: string[];
}

async function startDaemon(env: NodeJS.ProcessEnv): Promise<Daemon> {
  const config = loadConfig(env);
  const { logger, lines } = captureLog({ name: 'sos-milter', level: 'info', format: 'text' });
  const parts = createPolicyParts(config, logger);
  const app = createSosMilterApp({
    settings: parts.settings,
    milterName: config.milterName,
    rejectMessage: config.milterRejectMessage,
    tmpfailMessage: config.milterTmpfailMessage,
    ignoredNextHops: parts.ignoredNextHops,
    spf: parts.spf,
    ...(parts.directory ? { ownDomains: parts.directory } : {}),
    logger,
    assessmentTimeoutMs: assessmentTimeoutMs(config),
    dmarc: createDmarcParts(config, parts.resolver),
  });
  const server = new MilterServer(app, { socket: 'inet:0@127.0.0.1' });
  return { parts, server, address: await server.listen(), lines };
}

async function stopDaemon(d: Daemon | undefined): Promise<void> {
  if (!d) return;
  await d.server.close({ deadlineMs: 500 });
  await d.parts.directory?.close();
  d.parts.resolver.close();
}

async function message(d: Daemon, mailFrom: string, from: string, queueId: string) {
  const client = await MilterTestClient.connect(d.address);
  await client.negotiate(POSTFIX_OFFER);
  await client.connectCmd('[192.0.2.5]', '192.0.2.5', 40000, {});
  await client.helo('client.e2e.test');
  await client.mail(mailFrom, [], {});
  await client.rcpt('<r@dest.example>', [], { '{rcpt_host}': 'dest.example' });
  await client.header('From', from);
  const reply = await client.eom({ i: queueId });
  client.quit();
  const judged = d.lines.find((l) => l.includes(`${queueId}`) && l.includes(': judged '));
  return { reply, judged: judged ?? '' };
}

function replyText(reply: { final?: unknown }): string {
  return (reply.final as { text?: string } | undefined)?.text ?? '';
}

describe('LDAP_DKIM_ATTRIBUTE against slapd and Knot', { skip, timeout: 60_000 }, () => {
  let knot: KnotInstance;
  let slapd: SlapdInstance;
  let env: NodeJS.ProcessEnv;
  let reject: Daemon;
  let testMode: Daemon;
  before(async () => {
    knot = await startKnot({ zonesDir: E2E_ZONES_DIR });
    slapd = await startSlapd({ ldif: LDIF });
    env = {
      DNS_SERVERS: `127.0.0.1:${knot.port}`,
      DNS_TIMEOUT_MS: '1000',
      SPF_REGEX: 'v=spf1 .*include:_spf\\.esp\\.e2e\\.test',
      LDAP_ENABLED: 'yes',
      LDAP_SERVER_URI: slapd.url,
      LDAP_SEARCH_BASE: `ou=domains,${slapd.suffix}`,
      LDAP_QUERY_FILTER: '(dc=%d)',
      LDAP_DKIM_ATTRIBUTE: 'associatedDomain',
      LDAP_TIMEOUT_MS: '1000',
      LOG_LEVEL: 'error',
    };
    reject = await startDaemon({ ...env, MILTER_MODE: 'reject', DMARC_CHECK: 'on' });
    testMode = await startDaemon({ ...env, MILTER_MODE: 'test', DMARC_CHECK: 'on' });
  });
  after(async () => {
    await stopDaemon(reject);
    await stopDaemon(testMode);
    await slapd?.close();
    await knot?.close();
  });

  test('the directory reads the attribute in the own-domain search: checked, lower case, invalid values ignored and logged once, at most 8', async () => {
    const { logger, lines } = captureLog('text');
    const dir = new LdapDomainDirectory({
      uris: [slapd.url],
      searchBase: `ou=domains,${slapd.suffix}`,
      queryFilter: '(dc=%d)',
      cacheTtlSeconds: 300,
      negativeCacheTtlSeconds: 60,
      timeoutMs: 1000,
      dkimAttribute: 'associatedDomain',
      logger,
    });
    try {
      assert.deepEqual(await dir.isOwnDomain('dmarc-reject.e2e.test'), { own: true, source: 'ldap', dkimDomains: ['mail.dmarc-reject.e2e.test'] });
      assert.deepEqual(await dir.isOwnDomain('dmarc-strict.e2e.test'), { own: true, source: 'ldap', dkimDomains: ['dmarc-strict.e2e.test'] });
      assert.deepEqual(await dir.isOwnDomain('dmarc-aligned.e2e.test'), { own: true, source: 'ldap', dkimDomains: [] });
      assert.deepEqual(await dir.isOwnDomain('foreign.e2e.test'), { own: false, source: 'ldap' });
      const many = await dir.isOwnDomain('many.e2e.test');
      assert.deepEqual(many.dkimDomains, ['d0.example', 'd1.example', 'd2.example', 'd3.example', 'd4.example', 'd5.example', 'd6.example', 'd7.example']);
      // Cached with the answer: no second search.
      assert.deepEqual(await dir.isOwnDomain('dmarc-strict.e2e.test'), { own: true, source: 'cache', dkimDomains: ['dmarc-strict.e2e.test'] });
      assert.equal(dir.stats().searches, 5);
      const invalid = lines.filter((l) => l.includes('no DKIM signing domain'));
      assert.equal(invalid.filter((l) => l.includes('not a domain')).length, 1, lines.join('\n'));
      assert.equal(invalid.filter((l) => l.includes('-bad-.e2e.test')).length, 1, lines.join('\n'));
      assert.ok(invalid.some((l) => l.includes('more than 8 values')), lines.join('\n'));
    } finally {
      await dir.close();
    }
  });

  test('daemon, relaxed adkim: a subdomain named in the From: domain\'s entry aligns, the message passes', async () => {
    const { reply, judged } = await message(reject, '<b@pass.e2e.test>', 'Alice <alice@dmarc-reject.e2e.test>', 'QRELAXED');
    assert.equal(reply.final?.type, 'continue', JSON.stringify(reply));
    assert.match(judged, /dmarc=pass/);
  });

  test('daemon, strict adkim: the From: domain itself aligns (invalid values beside it ignored); its parent does not', async () => {
    const exact = await message(reject, '<b@pass.e2e.test>', 'alice@dmarc-strict.e2e.test', 'QSTRICT1');
    assert.equal(exact.reply.final?.type, 'continue', JSON.stringify(exact.reply));
    const sub = await message(reject, '<b@pass.e2e.test>', 'alice@sub.dmarc-strict.e2e.test', 'QSTRICT2');
    assert.match(replyText(sub.reply), /^550 5\.7\.1 .*DMARC policy \(reject\) of 5322_from_domain=sub\.dmarc-strict\.e2e\.test is not met/);
    assert.match(sub.judged, /no DKIM signing domain aligned \(adkim=s\)/);
  });

  test('daemon: an own domain without the attribute is a violation as before', async () => {
    const { reply, judged } = await message(reject, '<b@pass.e2e.test>', 'alice@dmarc-aligned.e2e.test', 'QABSENT');
    assert.match(replyText(reply), /^550 5\.7\.1 .*5322_from_domain=dmarc-aligned\.e2e\.test is not met/);
    assert.match(judged, /no DKIM signing domain known/);
  });

  test('daemon, From: domain = MAIL FROM domain: one LDAP search answers ownership and the signing domains', async () => {
    const before = testMode.parts.directory!.stats();
    const { reply, judged } = await message(testMode, '<b@dmarc-own.e2e.test>', 'alice@dmarc-own.e2e.test', 'QSAME');
    const stats = testMode.parts.directory!.stats();
    // The SPF violation of an own domain is tagged (test mode asked LDAP at MAIL); DMARC passes via the entry's esp.dmarc-own.e2e.test.
    assert.match(judged, /own=own/);
    assert.match(judged, /dmarc=pass/);
    assert.ok(reply.modifications.some((m) => m.type === 'addHeader' && m.value === 'failed SPF-expectation'), JSON.stringify(reply));
    assert.equal(stats.searches - before.searches, 1, 'one search for the domain');
    assert.equal(stats.cacheHits - before.cacheHits, 1, 'the DMARC step read the cached answer');
  });

  test('daemon, LDAP down: the signing domains are not known and the judgement fails open (unknown), the reason says why', async () => {
    const port = await freePort();
    const down = await startDaemon({ ...env, LDAP_SERVER_URI: `ldap://127.0.0.1:${port}`, MILTER_MODE: 'reject', DMARC_CHECK: 'on' });
    try {
      const { reply, judged } = await message(down, '<b@pass.e2e.test>', 'alice@dmarc-reject.e2e.test', 'QDOWN');
      assert.equal(reply.final?.type, 'continue', JSON.stringify(reply));
      assert.match(judged, /dmarc=unknown/);
      assert.match(judged, /DKIM signing domains from LDAP not known: /);
      // Something else aligning still passes: SPF aligned here.
      const aligned = await message(down, '<b@dmarc-aligned.e2e.test>', 'alice@dmarc-aligned.e2e.test', 'QDOWN2');
      assert.match(aligned.judged, /dmarc=pass/);
    } finally {
      await stopDaemon(down);
    }
  });

  test('check --from names where the signing domain came from', async () => {
    const run = (argv: string[], e: NodeJS.ProcessEnv) => captureOutput((out) => runCheckCommand(argv, e, out));
    const ldap = await run(['bounce@pass.e2e.test', '--from', 'alice@dmarc-reject.e2e.test'], { ...env, MILTER_MODE: 'reject' });
    assert.equal(ldap.code, 0, ldap.text);
    assert.match(ldap.text, /dkim: +aligned mail\.dmarc-reject\.e2e\.test \(relaxed\) from LDAP_DKIM_ATTRIBUTE of the From: domain's entry/);
    assert.match(ldap.text, /verdict: +pass: DKIM signature for mail\.dmarc-reject\.e2e\.test \(LDAP\) aligns/);

    const configured = await run(['bounce@pass.e2e.test', '--from', 'alice@dmarc-aligned.e2e.test'], { ...env, DKIM_SIGNING_DOMAINS: '*' });
    assert.match(configured.text, /dkim: +aligned dmarc-aligned\.e2e\.test \(strict|relaxed\) from DKIM_SIGNING_DOMAINS/);

    const absent = await run(['bounce@pass.e2e.test', '--from', 'alice@dmarc-aligned.e2e.test'], { ...env, MILTER_MODE: 'reject', DMARC_CHECK: 'on' });
    assert.equal(absent.code, 1, absent.text);
    assert.match(absent.text, /dkim: +no signing domain known/);

    const port = await freePort();
    const down = await run(['bounce@pass.e2e.test', '--from', 'alice@dmarc-reject.e2e.test', '--json'], { ...env, LDAP_SERVER_URI: `ldap://127.0.0.1:${port}` });
    const report = JSON.parse(down.text) as { dmarc: { report: { judgement: { kind: string }; dkimLdapError?: string } } };
    assert.equal(report.dmarc.report.judgement.kind, 'unknown');
    assert.ok(report.dmarc.report.dkimLdapError, down.text);
  });

  test('audit --dmarc counts the attribute in DKIM-SIGNING, read with the listing', async () => {
    let err = '';
    const errStream = { write: (chunk: string) => ((err += chunk), true) } as unknown as NodeJS.WritableStream;
    const { code, text } = await captureOutput((out) => runAuditCommand(['--json', '--dmarc'], env, { out, err: errStream, progress: false }));
    assert.ok(code === 0 || code === 1, `${code} ${err}`);
    const rows = text.trim().split('\n').map((l) => JSON.parse(l) as { domain?: string; dmarc?: { dkimSigning: string; dkimSource?: string; verdict: string } });
    const by = new Map(rows.filter((r) => r.domain).map((r) => [r.domain!, r.dmarc!]));
    assert.equal(by.get('dmarc-reject.e2e.test')?.dkimSigning, 'yes');
    assert.equal(by.get('dmarc-reject.e2e.test')?.dkimSource, 'LDAP');
    assert.equal(by.get('dmarc-strict.e2e.test')?.dkimSigning, 'yes');
    assert.equal(by.get('sub.dmarc-strict.e2e.test')?.dkimSigning, 'no');
    assert.equal(by.get('dmarc-aligned.e2e.test')?.dkimSigning, 'no');
    // Without the attribute the same domain is not ready.
    const plain = await captureOutput((out) => runAuditCommand(['--json', '--dmarc'], { ...env, LDAP_DKIM_ATTRIBUTE: '' }, { out, err: errStream, progress: false }));
    const plainRows = plain.text.trim().split('\n').map((l) => JSON.parse(l) as { domain?: string; dmarc?: { dkimSigning: string } });
    assert.equal(plainRows.find((r) => r.domain === 'dmarc-reject.e2e.test')?.dmarc?.dkimSigning, 'no');
  });
});
