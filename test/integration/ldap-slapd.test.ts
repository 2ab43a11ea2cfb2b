/**
 * The own-domain lookup against a real OpenLDAP server (private slapd on loopback).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { LdapDomainDirectory, type LdapDirectoryOptions } from '../../src/ldap/index.js';
import { createMetrics } from '../../src/ops/metrics.js';
import { freePort, slapdUnavailableReason, startSlapd, type SlapdInstance } from '../support/slapd.js';
import { captureLog } from '../support/log-capture.js';
import { sleep, waitFor } from '../support/wait.js';

const LDIF = fileURLToPath(new URL('../../../test/data/ldap/domains.ldif', import.meta.url));
const BASE = 'ou=domains,dc=example,dc=test';
const MILTER_DN = 'uid=milter,ou=accounts,dc=example,dc=test';
const MILTER_PW = 'milter-secret';
const skip = slapdUnavailableReason() ?? false;

const open: LdapDomainDirectory[] = [];
function directory(url: string | string[], extra: Partial<LdapDirectoryOptions> = {}): LdapDomainDirectory {
  const dir = new LdapDomainDirectory({
    uris: Array.isArray(url) ? url : [url],
    searchBase: BASE,
    queryFilter: '(&(objectClass=domain)(dc=%d))',
    cacheTtlSeconds: 300,
    negativeCacheTtlSeconds: 60,
    timeoutMs: 1000,
    backoff: { initialMs: 100, maxMs: 400 },
    ...extra,
  });
  open.push(dir);
  return dir;
}

after(async () => {
  await Promise.all(open.map((d) => d.close()));
});

describe('LDAP own-domain lookup against slapd', { skip }, () => {
  let slapd: SlapdInstance;
  before(async () => {
    slapd = await startSlapd({ ldif: LDIF });
  });
  after(async () => {
    await slapd?.close();
  });

  test('own and not own, anonymous bind, positive and negative cache', async () => {
    const dir = directory(slapd.url);
    assert.deepEqual(await dir.isOwnDomain('customer.example'), { own: true, source: 'ldap' });
    assert.deepEqual(await dir.isOwnDomain('Other-Customer.EXAMPLE'), { own: true, source: 'ldap' });
    assert.deepEqual(await dir.isOwnDomain('foreign.example'), { own: false, source: 'ldap' });
    assert.deepEqual(await dir.isOwnDomain('customer.example'), { own: true, source: 'cache' });
    assert.deepEqual(await dir.isOwnDomain('foreign.example'), { own: false, source: 'cache' });
    const stats = dir.stats();
    assert.equal(stats.searches, 3);
    assert.equal(stats.cacheHits, 2);
    assert.equal(stats.errors, 0);
  });

  test('filter injection attempts never match other entries', async () => {
    const dir = directory(slapd.url, { cacheTtlSeconds: 0, negativeCacheTtlSeconds: 0 });
    for (const attack of ['*', '*.example', 'customer*', '*customer.example', '(', ')', '\\', '\\2a', 'x)(dc=*', 'customer.example)(|(dc=*', '*)(objectClass=*']) {
      const answer = await dir.isOwnDomain(attack);
      assert.deepEqual(answer, { own: false, source: 'ldap' }, `domain ${JSON.stringify(attack)}`);
    }
    // slapd cuts values at NUL, so control characters are refused before any search.
    for (const attack of ['\u0000', 'customer.example\u0000', 'customer.example\u0000x', 'customer.example\r\n']) {
      const answer = await dir.isOwnDomain(attack);
      assert.equal(answer.own, false, `domain ${JSON.stringify(attack)}`);
      assert.equal(answer.source, 'error');
    }
    // Non-ASCII reaches the server escaped and simply does not match.
    assert.deepEqual(await dir.isOwnDomain('müller.example'), { own: false, source: 'ldap' });
    assert.deepEqual(await dir.isOwnDomain('xn--mller-kva.example'), { own: true, source: 'ldap' });
  });

  test('more entries than the size limit still answer "own"', async () => {
    const dir = directory(slapd.url, { searchBase: 'dc=example,dc=test' });
    assert.deepEqual(await dir.isOwnDomain('twice.example'), { own: true, source: 'ldap' });
  });

  test('bind with DN and password', async () => {
    const dir = directory(slapd.url, { bindDn: MILTER_DN, bindPw: MILTER_PW });
    assert.deepEqual(await dir.isOwnDomain('customer.example'), { own: true, source: 'ldap' });
  });

  test('wrong password: error answer, logged without the password', async () => {
    const { logger, lines } = captureLog('json');
    const dir = directory(slapd.url, { bindDn: MILTER_DN, bindPw: 'wrong-Pa55', logger });
    const answer = await dir.isOwnDomain('customer.example');
    assert.equal(answer.own, false);
    assert.equal(answer.source, 'error');
    assert.match(answer.error ?? '', /InvalidCredentials/);
    const log = lines.join('');
    assert.match(log, /InvalidCredentials/);
    assert.ok(!log.includes('wrong-Pa55'), 'password must never be logged');
  });

  test('several URIs: a dead first one is skipped', async () => {
    const dead = `ldap://127.0.0.1:${await freePort()}`;
    const dir = directory([dead, slapd.url]);
    assert.deepEqual(await dir.isOwnDomain('customer.example'), { own: true, source: 'ldap' });
  });
});

describe('LDAP with anonymous read disabled', { skip }, () => {
  let slapd: SlapdInstance;
  before(async () => {
    slapd = await startSlapd({ ldif: LDIF, anonymousRead: false });
  });
  after(async () => {
    await slapd?.close();
  });

  test('anonymous is refused, the bound account sees the domain', async () => {
    const anonymous = await directory(slapd.url).isOwnDomain('customer.example');
    assert.equal(anonymous.own, false);
    assert.equal(anonymous.source, 'error');
    assert.match(anonymous.error ?? '', /InsufficientAccess/);
    assert.deepEqual(await directory(slapd.url, { bindDn: MILTER_DN, bindPw: MILTER_PW }).isOwnDomain('customer.example'), { own: true, source: 'ldap' });
  });
});

describe('LDAP faults', { skip }, () => {
  let slapd: SlapdInstance;
  before(async () => {
    slapd = await startSlapd({ ldif: LDIF });
  });
  after(async () => {
    await slapd?.close();
  });

  // Generous: the point is "bounded", not "fast" (no timing assertions beyond that).
  const BOUND_MS = 1000 + 3000;

  test('slapd stopped: cached answers still served, new lookups answer with an error in bounded time', async () => {
    const { logger, lines } = captureLog('json');
    const dir = directory(slapd.url, { logger });
    assert.deepEqual(await dir.isOwnDomain('customer.example'), { own: true, source: 'ldap' });
    await slapd.stop();
    try {
      assert.deepEqual(await dir.isOwnDomain('customer.example'), { own: true, source: 'cache' });
      const started = Date.now();
      const answer = await dir.isOwnDomain('other-customer.example');
      assert.ok(Date.now() - started < BOUND_MS, 'answered within the bound');
      assert.equal(answer.source, 'error');
      assert.equal(answer.own, false);
      assert.ok(lines.some((l) => l.includes('LDAP unavailable') && l.includes('"level":"warn"')), 'the outage logged');
      assert.ok(lines.some((l) => l.includes('other-customer.example') && l.includes('"level":"debug"')), 'the failed lookup at debug level');
    } finally {
      await slapd.start();
    }
  });

  test('slapd frozen: the lookup is abandoned at the timeout', async () => {
    const dir = directory(slapd.url, { timeoutMs: 500 });
    assert.deepEqual(await dir.isOwnDomain('customer.example'), { own: true, source: 'ldap' });
    slapd.pause();
    try {
      const started = Date.now();
      const answer = await dir.isOwnDomain('other-customer.example');
      assert.ok(Date.now() - started < 500 + 3000, 'answered within the bound');
      assert.equal(answer.source, 'error');
      assert.match(answer.error ?? '', /500 ms/);
      assert.equal(dir.stats().timeouts, 1);
    } finally {
      slapd.resume();
    }
  });

  test('slapd restarted: the directory recovers after the backoff', async () => {
    const dir = directory(slapd.url);
    assert.deepEqual(await dir.isOwnDomain('customer.example'), { own: true, source: 'ldap' });
    await slapd.stop();
    assert.equal((await dir.isOwnDomain('foreign.example')).source, 'error');
    await slapd.start();
    const answer = await waitFor(() => dir.isOwnDomain('other-customer.example'), { timeoutMs: 4000, intervalMs: 100, what: 'an LDAP answer', until: (a) => a.source !== 'error' });
    assert.deepEqual(answer, { own: true, source: 'ldap' });
    assert.ok(dir.stats().reconnects >= 1);
  });

  test('slapd back after an outage: one warning for the outage, a lookup answered within seconds of the return, one line for the recovery', async () => {
    const { logger, lines } = captureLog('json');
    // A background schedule far longer than the outage: only the lookups' probes can find the server back.
    const dir = directory(slapd.url, { logger, backoff: { initialMs: 10_000, maxMs: 30_000 }, random: () => 1, cacheTtlSeconds: 0, negativeCacheTtlSeconds: 0 });
    assert.deepEqual(await dir.isOwnDomain('customer.example'), { own: true, source: 'ldap' });
    await slapd.stop();
    let failed = 0;
    try {
      // Two seconds of messages, one every 200 ms: each lookup fails, the log says so once.
      for (let i = 0; i < 10; i++) {
        if ((await dir.isOwnDomain('customer.example')).source === 'error') failed++;
        await sleep(200);
      }
    } finally {
      await slapd.start();
    }
    const back = Date.now();
    assert.equal(failed, 10);
    const warnings = lines.filter((l) => l.includes('"level":"warn"'));
    assert.equal(warnings.length, 1, warnings.join(''));
    assert.match(warnings[0]!, /LDAP unavailable/);
    // Lookups every 200 ms; a probe goes out at most a second after the last attempt. Bounded
    // generously for a loaded machine: the schedule alone would wait 10 s and more.
    const answer = await waitFor(() => dir.isOwnDomain('customer.example'), {
      timeoutMs: 4000 - (Date.now() - back),
      intervalMs: 200,
      what: 'an LDAP answer within 4000 ms of slapd returning',
      until: (a) => a.source !== 'error',
      describe: (a) => `${JSON.stringify(a)} ${Date.now() - back} ms after slapd returned`,
    });
    const afterMs = Date.now() - back;
    assert.deepEqual(answer, { own: true, source: 'ldap' }, `no answer ${afterMs} ms after slapd returned`);
    console.log(`# LDAP answered ${afterMs} ms after slapd returned`);
    const recovered = lines.filter((l) => l.includes('LDAP answers again'));
    assert.equal(recovered.length, 1);
    assert.match(recovered[0]!, /"level":"info"/);
    assert.equal(lines.filter((l) => l.includes('"level":"warn"')).length, 1, 'no further warning');
  });

  test('down at start-up: the constructor does not throw and the directory connects later', async () => {
    await slapd.stop();
    const dir = directory(slapd.url);
    try {
      assert.equal((await dir.isOwnDomain('customer.example')).source, 'error');
    } finally {
      await slapd.start();
    }
    const answer = await waitFor(() => dir.isOwnDomain('customer.example'), { timeoutMs: 4000, intervalMs: 100, what: 'an LDAP answer', until: (a) => a.source !== 'error' });
    assert.deepEqual(answer, { own: true, source: 'ldap' });
  });
});

describe('LDAP server that accepts and never answers', () => {
  let server: ReturnType<typeof createServer>;
  const held = new Set<Socket>();
  let port = 0;
  before(async () => {
    server = createServer((sock) => {
      held.add(sock);
      sock.on('error', () => undefined);
      sock.once('close', () => held.delete(sock));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    port = (server.address() as { port: number }).port;
  });
  after(async () => {
    for (const s of held) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test('lookups that time out are counted as kind="timeout", not as errors', async () => {
    const metrics = createMetrics({ defaultMetrics: false, scrapeMaxAgeMs: 0 });
    // No background attempt within the test: each lookup makes its own (a probe) and waits it out.
    const dir = directory(`ldap://127.0.0.1:${port}`, { timeoutMs: 300, backoff: { initialMs: 60_000, maxMs: 60_000 } });
    metrics.watchLdap(() => dir.stats());
    const first = await dir.isOwnDomain('customer.example');
    assert.equal(first.source, 'error');
    assert.match(first.error ?? '', /timed out|within 300 ms/);
    // Past the probe period: the next lookup tries again and waits out the timeout too.
    await sleep(1100);
    assert.equal((await dir.isOwnDomain('other-customer.example')).source, 'error');
    const body = await metrics.scrape();
    assert.match(body, /^sos_milter_ldap_errors_total\{kind="timeout"\} 2$/m);
    assert.match(body, /^sos_milter_ldap_errors_total\{kind="error"\} 0$/m);
  });
});
