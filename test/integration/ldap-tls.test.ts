/**
 * LDAP over TLS against a real slapd whose certificate comes from a private CA made here
 * with openssl: ldaps:// and StartTLS work with LDAP_TLS_CA_FILE; a wrong CA, a wrong host
 * name and a server without StartTLS each fail closed for the bind (the password never
 * crosses the wire in the clear, checked on a recording proxy) and fail open for the message.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig, type LdapConfig } from '../../src/config/index.js';
import { directoryFromConfig, type LdapDomainDirectory } from '../../src/ldap/index.js';
import { assessSender, type PolicySettings, type SpfPort } from '../../src/policy/index.js';
import type { EffectiveRecord, SpfCheck } from '../../src/spf/index.js';
import { makePrivateCa, opensslUnavailableReason, type PrivateCa } from '../support/private-ca.js';
import { slapdUnavailableReason, startSlapd, type SlapdInstance } from '../support/slapd.js';
import { captureLog } from '../support/log-capture.js';

const LDIF = fileURLToPath(new URL('../../../test/data/ldap/domains.ldif', import.meta.url));
const BASE = 'ou=domains,dc=example,dc=test';
const MILTER_DN = 'uid=milter,ou=accounts,dc=example,dc=test';
const MILTER_PW = 'milter-secret';
const skip = slapdUnavailableReason() ?? opensslUnavailableReason() ?? false;

/** A loopback TCP proxy that records every byte the client sends. */
async function recordingProxy(targetPort: number, listenHost = '127.0.0.1'): Promise<{ port: number; sent(): Buffer; close(): Promise<void> }> {
  const chunks: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.on('data', (chunk: Buffer) => chunks.push(chunk));
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, listenHost, resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    sent: () => Buffer.concat(chunks),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function ldapConfig(env: Record<string, string>): LdapConfig {
  const config = loadConfig({
    LDAP_ENABLED: 'yes',
    LDAP_SEARCH_BASE: BASE,
    LDAP_QUERY_FILTER: '(&(objectClass=domain)(dc=%d))',
    LDAP_BINDDN: MILTER_DN,
    LDAP_BINDPW: MILTER_PW,
    LDAP_TIMEOUT_MS: '3000',
    ...env,
  });
  return config.ldap!;
}

const open: LdapDomainDirectory[] = [];
function directory(env: Record<string, string>) {
  const { logger, lines } = captureLog('json');
  const dir = directoryFromConfig(ldapConfig(env), logger);
  open.push(dir);
  return { dir, lines };
}

after(async () => {
  await Promise.all(open.map((d) => d.close()));
});

/**
 * The policy with SPF from data: the record passes for the relay but lacks the ESP's
 * include, so only ownership decides. With evaluate, an own domain is a violation; a domain
 * whose ownership LDAP could not tell is not: the message passes (fail open).
 */
async function messageVerdict(dir: LdapDomainDirectory) {
  const record = 'v=spf1 ip4:192.0.2.10 -all';
  const spf: SpfPort = {
    effectiveRecord: async (domain) => ({ status: 'found', domain, text: record, chain: [{ domain, text: record }], reason: 'data' }) as EffectiveRecord,
    checkHostForIps: async (_s, _h, ips) => new Map(ips.map((ip) => [ip, { result: 'pass', reason: 'data' } as SpfCheck])),
  };
  const settings: PolicySettings = {
    mode: 'test',
    check: 'evaluate',
    spfRegex: { matches: (text) => text.includes('include:_spf.esp.test') },
    outboundIps: ['192.0.2.10'],
    violationResults: new Set(['fail']),
  };
  return assessSender({ sender: 'someone@customer.example', domain: 'customer.example', helo: 'customer.example' }, { spf, ownDomains: dir }, settings);
}

describe('LDAP over TLS against slapd with a private CA', { skip }, () => {
  let ca: PrivateCa;
  let wrongCa: PrivateCa;
  let slapd: SlapdInstance;
  let plain: SlapdInstance;

  before(async () => {
    // The certificate names 127.0.0.1 only: a proxy on 127.0.0.2 reaches the same slapd under a wrong name.
    ca = makePrivateCa('sos', 'IP:127.0.0.1');
    wrongCa = makePrivateCa('other', 'IP:127.0.0.1');
    slapd = await startSlapd({ ldif: LDIF, tls: { certFile: ca.certFile, keyFile: ca.keyFile } });
    plain = await startSlapd({ ldif: LDIF });
  });
  after(async () => {
    await slapd?.close();
    await plain?.close();
    ca?.remove();
    wrongCa?.remove();
  });

  test('ldaps:// with LDAP_TLS_CA_FILE: bound and answered', async () => {
    const { dir } = directory({ LDAP_SERVER_URI: slapd.ldapsUrl!, LDAP_TLS_CA_FILE: ca.caFile });
    assert.deepEqual(await dir.isOwnDomain('customer.example'), { own: true, source: 'ldap' });
    assert.deepEqual(await dir.isOwnDomain('foreign.example'), { own: false, source: 'ldap' });
    assert.equal((await messageVerdict(dir)).ownership, 'own');
  });

  test('StartTLS with LDAP_TLS_CA_FILE: bound and answered, the password never in the clear', async () => {
    const proxy = await recordingProxy(slapd.port);
    try {
      const { dir } = directory({ LDAP_SERVER_URI: `ldap://127.0.0.1:${proxy.port}`, LDAP_STARTTLS: 'true', LDAP_TLS_CA_FILE: ca.caFile });
      assert.deepEqual(await dir.isOwnDomain('customer.example'), { own: true, source: 'ldap' });
      const sent = proxy.sent();
      assert.ok(sent.length > 0);
      assert.ok(!sent.includes(MILTER_PW), 'the password crossed the wire in the clear');
      assert.ok(!sent.includes('customer.example'), 'the search crossed the wire in the clear');
    } finally {
      await proxy.close();
    }
  });

  for (const via of ['ldaps', 'starttls'] as const) {
    test(`wrong CA (${via}): no bind, lookup fails open, the log says why`, async () => {
      const proxy = await recordingProxy(via === 'ldaps' ? slapd.ldapsPort! : slapd.port);
      try {
        const uri = `${via === 'ldaps' ? 'ldaps' : 'ldap'}://127.0.0.1:${proxy.port}`;
        const { dir, lines } = directory({ LDAP_SERVER_URI: uri, LDAP_STARTTLS: String(via === 'starttls'), LDAP_TLS_CA_FILE: wrongCa.caFile });
        const answer = await dir.isOwnDomain('customer.example');
        assert.equal(answer.source, 'error');
        assert.equal(answer.own, false);
        assert.match(answer.error ?? '', /self[- ]signed|unable to (get|verify)|certificate/i);
        const log = lines.join('');
        assert.match(log, /no LDAP server reachable/);
        assert.match(log, /certificate/i);
        assert.ok(!proxy.sent().includes(MILTER_PW), 'password sent in the clear');
        assert.ok(!log.includes(MILTER_PW), 'password logged');
        const verdict = await messageVerdict(dir);
        assert.equal(verdict.kind === 'violation', false, 'the message passes when LDAP cannot answer');
        assert.equal(verdict.ownership, 'unknown');
      } finally {
        await proxy.close();
      }
    });
  }

  for (const via of ['ldaps', 'starttls'] as const) {
    test(`wrong host name (${via}): no bind, lookup fails open, the log says why`, async () => {
      // The proxy listens on 127.0.0.2, a name the certificate does not hold.
      const proxy = await recordingProxy(via === 'ldaps' ? slapd.ldapsPort! : slapd.port, '127.0.0.2');
      try {
        const uri = `${via === 'ldaps' ? 'ldaps' : 'ldap'}://127.0.0.2:${proxy.port}`;
        const { dir, lines } = directory({ LDAP_SERVER_URI: uri, LDAP_STARTTLS: String(via === 'starttls'), LDAP_TLS_CA_FILE: ca.caFile });
        const answer = await dir.isOwnDomain('customer.example');
        assert.equal(answer.source, 'error');
        assert.match(answer.error ?? '', /IP: 127\.0\.0\.2 is not in the cert's list/);
        assert.match(lines.join(''), /is not in the cert's list/);
        assert.ok(proxy.sent().length > 0, 'the handshake went through the proxy');
        assert.ok(!proxy.sent().includes(MILTER_PW), 'password sent in the clear');
        assert.equal((await messageVerdict(dir)).kind === 'violation', false);
      } finally {
        await proxy.close();
      }
    });
  }

  test('a server without StartTLS: the bind is never sent, the lookup fails open', async () => {
    const proxy = await recordingProxy(plain.port);
    try {
      const { dir, lines } = directory({ LDAP_SERVER_URI: `ldap://127.0.0.1:${proxy.port}`, LDAP_STARTTLS: 'yes', LDAP_TLS_CA_FILE: ca.caFile });
      const answer = await dir.isOwnDomain('customer.example');
      assert.equal(answer.source, 'error');
      assert.match(answer.error ?? '', /StartTLS failed, not binding without TLS/);
      assert.match(lines.join(''), /StartTLS failed, not binding without TLS/);
      const sent = proxy.sent();
      assert.ok(sent.length > 0, 'the StartTLS request went out');
      assert.ok(!sent.includes(MILTER_PW), 'password sent in the clear');
      assert.ok(!sent.includes(MILTER_DN), 'a bind was sent');
      assert.equal((await messageVerdict(dir)).kind === 'violation', false);
    } finally {
      await proxy.close();
    }
  });

  test('LDAP_TLS_VERIFY=false: the wrong CA is accepted, with a warning in the log', async () => {
    const { dir, lines } = directory({ LDAP_SERVER_URI: slapd.ldapsUrl!, LDAP_TLS_CA_FILE: wrongCa.caFile, LDAP_TLS_VERIFY: 'false' });
    assert.deepEqual(await dir.isOwnDomain('customer.example'), { own: true, source: 'ldap' });
    assert.ok(lines.some((l) => l.includes('"level":"warn"') && l.includes('verification is OFF')), lines.join(''));
  });

  test('the audit listing works over StartTLS too', async () => {
    const { dir } = directory({ LDAP_SERVER_URI: slapd.url, LDAP_STARTTLS: 'true', LDAP_TLS_CA_FILE: ca.caFile });
    const domains: string[] = [];
    for await (const page of dir.listOwnDomains({ filter: '(objectClass=domain)' })) domains.push(...page);
    assert.ok(domains.includes('customer.example'), domains.join());
  });
});

describe('LDAP TLS settings', () => {
  const base = { LDAP_ENABLED: 'yes', LDAP_SERVER_URI: 'ldaps://ldap.example', LDAP_SEARCH_BASE: BASE, LDAP_QUERY_FILTER: '(dc=%d)' };
  const dir = join(process.env.TMPDIR ?? '/tmp', `sos-tls-config-${process.pid}`);
  mkdirSync(dir, { recursive: true });

  function configError(env: Record<string, string>): ConfigError {
    try {
      loadConfig({ ...base, ...env });
    } catch (err) {
      if (err instanceof ConfigError) return err;
      throw err;
    }
    assert.fail('expected a ConfigError');
  }

  test('a missing, unreadable or non-PEM CA file is refused, naming the variable', () => {
    assert.match(configError({ LDAP_TLS_CA_FILE: join(dir, 'missing.pem') }).message, /^LDAP_TLS_CA_FILE: .*does not exist/);
    assert.match(configError({ LDAP_TLS_CA_FILE: dir }).message, /^LDAP_TLS_CA_FILE: .*is a directory/);
    const junk = join(dir, 'junk.pem');
    writeFileSync(junk, 'not a certificate\n');
    assert.match(configError({ LDAP_TLS_CA_FILE: junk }).message, /^LDAP_TLS_CA_FILE: .*holds no PEM certificate/);
    const broken = join(dir, 'broken.pem');
    writeFileSync(broken, '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n');
    assert.match(configError({ LDAP_TLS_CA_FILE: broken }).message, /^LDAP_TLS_CA_FILE: .*certificate 1 of 1 cannot be read/);
  });

  test('booleans are words, not guesses', () => {
    assert.match(configError({ LDAP_STARTTLS: 'maybe' }).message, /^LDAP_STARTTLS: /);
    assert.match(configError({ LDAP_TLS_VERIFY: 'nah' }).message, /^LDAP_TLS_VERIFY: /);
    const config = loadConfig({ ...base, LDAP_STARTTLS: 'Yes', LDAP_TLS_VERIFY: 'off' });
    assert.deepEqual(config.ldap?.tls, { caFile: undefined, ca: undefined, startTls: true, verify: false });
    assert.deepEqual(loadConfig(base).ldap?.tls, { caFile: undefined, ca: undefined, startTls: false, verify: true });
  });

  test('audit filter and domain attribute', () => {
    assert.equal(loadConfig({ ...base, LDAP_QUERY_FILTER: '(&(objectClass=domain)(dc=%d))' }).ldap?.auditFilter, '(&(objectClass=domain)(dc=*))');
    assert.equal(loadConfig({ ...base, LDAP_AUDIT_FILTER: '(objectClass=dNSDomain)' }).ldap?.auditFilter, '(objectClass=dNSDomain)');
    assert.match(configError({ LDAP_AUDIT_FILTER: '(dc=%d)' }).message, /^LDAP_AUDIT_FILTER: /);
    assert.match(configError({ LDAP_AUDIT_FILTER: 'dc=*' }).message, /^LDAP_AUDIT_FILTER: /);
    assert.equal(loadConfig({ ...base, LDAP_DOMAIN_ATTRIBUTE: 'associatedDomain' }).ldap?.domainAttribute, 'associatedDomain');
    assert.match(configError({ LDAP_DOMAIN_ATTRIBUTE: 'bad attr' }).message, /^LDAP_DOMAIN_ATTRIBUTE: /);
  });
});
