import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LdapDomainDirectory, backoffDelay, firstRdnValue, type LdapClient, type LdapDirectoryOptions } from '../../src/ldap/index.js';
import { captureJsonLog, captureLog } from '../support/log-capture.js';

/** A scripted in-memory LDAP server: which domains exist, and how it misbehaves. */
class FakeServer {
  domains = new Set(['customer.example']);
  /** Values of the DKIM attribute (`dkimDomain`) per domain entry. */
  dkim = new Map<string, string[]>();
  down = false;
  hang = false;
  wrongPassword = false;
  noStartTls = false;
  /** Connecting finds no file descriptor: the error a net.connect under EMFILE gives (code and text). */
  noDescriptor: 'EMFILE' | 'ENFILE' | undefined;
  /** Every search fails with this message (the connection stays up). */
  searchError: string | undefined;
  startTlsCalls = 0;
  binds: { dn: string; password: string }[] = [];
  filters: string[] = [];
  private readonly release: (() => void)[] = [];

  client(): LdapClient {
    return FakeServer.clientOf(this);
  }

  private static clientOf(server: FakeServer): LdapClient {
    let connected = false;
    return {
      get isConnected() {
        return connected && !server.down;
      },
      async startTls() {
        server.startTlsCalls++;
        if (server.noDescriptor) throw server.fdError();
        if (server.noStartTls) throw new Error('unsupported extended operation');
      },
      async *listEntries(_base, request) {
        const all = [...server.domains].map((d) => ({ dn: `dc=${d},ou=domains,dc=example,dc=test`, attributes: {} }));
        for (let i = 0; i < all.length; i += request.pageSize) yield all.slice(i, i + request.pageSize);
      },
      async bind(dn, password) {
        if (server.noDescriptor) throw server.fdError();
        if (server.down) throw new Error('connect ECONNREFUSED');
        if (server.wrongPassword) throw new Error('Invalid Credentials');
        server.binds.push({ dn, password });
        connected = true;
      },
      async countEntries(_base, request) {
        server.filters.push(request.filter);
        if (server.hang) await server.waitForRelease();
        if (server.down) throw new Error('socket closed');
        if (server.searchError !== undefined) throw new Error(server.searchError);
        const m = /^\(dc=(.*)\)$/.exec(request.filter);
        return m && server.domains.has(m[1]!) ? 1 : 0;
      },
      async searchEntries(_base, request) {
        server.filters.push(request.filter);
        if (server.down) throw new Error('socket closed');
        if (server.searchError !== undefined) throw new Error(server.searchError);
        const m = /^\(dc=(.*)\)$/.exec(request.filter);
        if (!m || !server.domains.has(m[1]!)) return { entries: [], sizeLimitExceeded: false };
        const values = server.dkim.get(m[1]!);
        return { entries: [{ dn: `dc=${m[1]!},ou=domains,dc=example,dc=test`, attributes: (values ? { dkimdomain: values } : {}) as Record<string, string[]> }], sizeLimitExceeded: false };
      },
      async unbind() {
        connected = false;
      },
    };
  }

  fdError(): Error {
    const code = this.noDescriptor!;
    return Object.assign(new Error(`connect ${code} 127.0.0.1:389 - Local (undefined:undefined)`), { code, errno: code === 'EMFILE' ? -24 : -23, syscall: 'connect' });
  }

  unhang(): void {
    this.hang = false;
    for (const r of this.release.splice(0)) r();
  }

  waitForRelease(): Promise<void> {
    return new Promise<void>((r) => this.release.push(r));
  }
}

function directory(server: FakeServer, extra: Partial<LdapDirectoryOptions> = {}) {
  let now = 1_000_000;
  const dir = new LdapDomainDirectory({
    uris: ['ldap://fake'],
    searchBase: 'ou=domains,dc=example,dc=test',
    queryFilter: '(dc=%d)',
    cacheTtlSeconds: 300,
    negativeCacheTtlSeconds: 60,
    timeoutMs: 200,
    now: () => now,
    createClient: () => server.client(),
    backoff: { initialMs: 1000, maxMs: 8000 },
    random: () => 1,
    ...extra,
  });
  return { dir, advance: (ms: number) => (now += ms) };
}

test('own and foreign domains; positive and negative answers are cached with their TTLs', async () => {
  const server = new FakeServer();
  const { dir, advance } = directory(server);
  try {
    assert.deepEqual(await dir.isOwnDomain('Customer.Example.'), { own: true, source: 'ldap' });
    assert.deepEqual(await dir.isOwnDomain('customer.example'), { own: true, source: 'cache' });
    assert.deepEqual(await dir.isOwnDomain('foreign.example'), { own: false, source: 'ldap' });
    assert.deepEqual(await dir.isOwnDomain('foreign.example'), { own: false, source: 'cache' });
    advance(61_000); // negative TTL over, positive not
    assert.deepEqual(await dir.isOwnDomain('foreign.example'), { own: false, source: 'ldap' });
    assert.deepEqual(await dir.isOwnDomain('customer.example'), { own: true, source: 'cache' });
    advance(300_000);
    assert.deepEqual(await dir.isOwnDomain('customer.example'), { own: true, source: 'ldap' });
    const stats = dir.stats();
    assert.equal(stats.lookups, 7);
    assert.equal(stats.cacheHits, 3);
    assert.equal(stats.searches, 4);
    assert.deepEqual(server.binds, [{ dn: '', password: '' }], 'one anonymous bind, connection kept');
  } finally {
    await dir.close();
  }
});

test('dkimAttribute: one search answers ownership and the signing domains, cached together; invalid values ignored and logged once', async () => {
  const server = new FakeServer();
  server.dkim.set('customer.example', ['ESP.Example.', 'not a domain', 'x'.repeat(2000), 'esp.example', 'b\u00fccher.example']);
  const { logger, lines } = captureLog('text');
  const { dir, advance } = directory(server, { dkimAttribute: 'dkimDomain', logger });
  try {
    assert.deepEqual(await dir.isOwnDomain('customer.example'), { own: true, source: 'ldap', dkimDomains: ['esp.example', 'xn--bcher-kva.example'] });
    assert.deepEqual(dir.isOwnDomainNow('customer.example'), { own: true, source: 'cache', dkimDomains: ['esp.example', 'xn--bcher-kva.example'] });
    assert.deepEqual(await dir.isOwnDomain('foreign.example'), { own: false, source: 'ldap' });
    assert.equal(dir.stats().searches, 2);
    advance(301_000);
    await dir.isOwnDomain('customer.example');
    assert.equal(dir.stats().searches, 3);
    const invalid = lines.filter((l) => l.includes('no DKIM signing domain'));
    assert.equal(invalid.length, 2, invalid.join('\n'));
    assert.ok(invalid.every((l) => l.length < 2000), 'a long value is cut in the log');
  } finally {
    await dir.close();
  }
});

test('dkimAttribute: at most 8 signing domains per entry; a failed search is an error answer without them', async () => {
  const server = new FakeServer();
  server.dkim.set('customer.example', Array.from({ length: 12 }, (_, i) => `d${i}.example`));
  const { dir } = directory(server, { dkimAttribute: 'dkimDomain' });
  try {
    const answer = await dir.isOwnDomain('customer.example');
    assert.equal(answer.dkimDomains?.length, 8);
    server.searchError = 'busy';
    const failed = await dir.isOwnDomain('other.example');
    assert.equal(failed.source, 'error');
    assert.equal(failed.dkimDomains, undefined);
  } finally {
    await dir.close();
  }
});

test('isOwnDomainNow answers from the cache only, with its TTLs, and never searches', async () => {
  const server = new FakeServer();
  const { dir, advance } = directory(server);
  try {
    assert.equal(dir.isOwnDomainNow('customer.example'), undefined, 'nothing cached yet');
    assert.equal(dir.stats().searches, 0);
    await dir.isOwnDomain('customer.example');
    await dir.isOwnDomain('foreign.example');
    assert.deepEqual(dir.isOwnDomainNow('Customer.Example.'), { own: true, source: 'cache' });
    assert.deepEqual(dir.isOwnDomainNow('foreign.example'), { own: false, source: 'cache' });
    assert.equal(dir.isOwnDomainNow('customer.example\u0000x'), undefined, 'control characters are never looked up');
    advance(61_000);
    assert.equal(dir.isOwnDomainNow('foreign.example'), undefined, 'the negative TTL is over');
    assert.deepEqual(dir.isOwnDomainNow('customer.example'), { own: true, source: 'cache' });
    const stats = dir.stats();
    assert.equal(stats.searches, 2);
    assert.equal(stats.cacheHits, 3, 'answers given count as cache hits');
  } finally {
    await dir.close();
  }
});

test('concurrent identical lookups share one search', async () => {
  const server = new FakeServer();
  const { dir } = directory(server);
  try {
    const answers = await Promise.all([dir.isOwnDomain('customer.example'), dir.isOwnDomain('CUSTOMER.example'), dir.isOwnDomain('customer.example')]);
    assert.deepEqual(answers.map((a) => a.own), [true, true, true]);
    assert.equal(server.filters.length, 1);
    assert.equal(dir.stats().sharedLookups, 2);
  } finally {
    await dir.close();
  }
});

test('the domain is escaped before it enters the filter', async () => {
  const server = new FakeServer();
  const { dir } = directory(server);
  try {
    assert.equal((await dir.isOwnDomain('*')).own, false);
    assert.equal((await dir.isOwnDomain('x)(dc=customer.example')).own, false);
    assert.deepEqual(server.filters, ['(dc=\\2a)', '(dc=x\\29\\28dc=customer.example)']);
  } finally {
    await dir.close();
  }
});

test('a hung server is answered with an error within the timeout; the late answer is still cached', async () => {
  const server = new FakeServer();
  const { dir } = directory(server, { timeoutMs: 50 });
  try {
    server.hang = true;
    const answer = await dir.isOwnDomain('customer.example');
    assert.equal(answer.own, false);
    assert.equal(answer.source, 'error');
    assert.match(answer.error ?? '', /50 ms/);
    assert.equal(dir.stats().timeouts, 1);
    server.unhang();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(await dir.isOwnDomain('customer.example'), { own: true, source: 'cache' });
  } finally {
    await dir.close();
  }
});

test('server down: error answers, backoff without new attempts, recovery afterwards', async () => {
  const server = new FakeServer();
  server.down = true;
  const { dir, advance } = directory(server, { connectNow: false });
  try {
    const first = await dir.isOwnDomain('customer.example');
    assert.equal(first.source, 'error');
    assert.match(first.error ?? '', /ECONNREFUSED/);
    const second = await dir.isOwnDomain('customer.example');
    assert.match(second.error ?? '', /next attempt in/);
    assert.equal(dir.stats().connectAttempts, 1, 'no attempt during the backoff');
    server.down = false;
    advance(1000);
    assert.deepEqual(await dir.isOwnDomain('customer.example'), { own: true, source: 'ldap' });
    assert.equal(dir.stats().connected, true);
    // The connection drops: the next lookup tries to reconnect at once (no backoff after a
    // success); that attempt fails while the server is down and starts a new backoff.
    server.down = true;
    assert.match((await dir.isOwnDomain('other.example')).error ?? '', /ECONNREFUSED/);
    assert.equal(dir.stats().connectAttempts, 3);
    server.down = false;
    advance(1000);
    assert.deepEqual(await dir.isOwnDomain('other.example'), { own: false, source: 'ldap' });
    assert.equal(dir.stats().reconnects, 1);
  } finally {
    await dir.close();
  }
});

test('no file descriptor for the connection: the answer is a local fault, the refusals until the next attempt too; never a plain "not own"', async () => {
  const server = new FakeServer();
  server.noDescriptor = 'EMFILE';
  const { dir, advance } = directory(server, { connectNow: false, backoff: { initialMs: 1000, maxMs: 8000, probeMs: 1000 } });
  try {
    const first = await dir.isOwnDomain('customer.example');
    assert.equal(first.source, 'error');
    assert.equal(first.localFault, true);
    assert.match(first.error ?? '', /^LdapLocalResourceError: no LDAP connection could be opened \(too many open files\): ldap:\/\/fake: connect EMFILE/);
    // Refused within the probe period: the last attempt's fault stands, so is this one's.
    const refused = await dir.isOwnDomain('other.example');
    assert.equal(refused.localFault, true);
    assert.match(refused.error ?? '', /the last attempt found no file descriptor, next attempt in/);
    assert.equal(dir.stats().connectAttempts, 1);
    assert.equal(dir.stats().timeouts, 0);
    assert.equal(dir.stats().errors, 2);

    // ENFILE (the system's table) is the same fault.
    server.noDescriptor = 'ENFILE';
    advance(1000);
    const system = await dir.isOwnDomain('customer.example');
    assert.equal(system.localFault, true);
    assert.match(system.error ?? '', /connect ENFILE/);

    // The server itself down (descriptors back): an ordinary outage, no local fault, refusals included.
    server.noDescriptor = undefined;
    server.down = true;
    advance(1000);
    const down = await dir.isOwnDomain('customer.example');
    assert.equal(down.localFault, undefined);
    assert.match(down.error ?? '', /ECONNREFUSED/);
    assert.equal((await dir.isOwnDomain('customer.example')).localFault, undefined);

    server.down = false;
    advance(1000);
    assert.deepEqual(await dir.isOwnDomain('customer.example'), { own: true, source: 'ldap' });
  } finally {
    await dir.close();
  }
});

test('StartTLS that finds no descriptor is the same local fault', async () => {
  const server = new FakeServer();
  server.noDescriptor = 'EMFILE';
  const { dir } = directory(server, { connectNow: false, startTls: true });
  try {
    const answer = await dir.isOwnDomain('customer.example');
    assert.equal(answer.localFault, true);
    assert.deepEqual(server.binds, [], 'never bound');
  } finally {
    await dir.close();
  }
});

test('a long outage: lookups probe the server once per probeMs whatever the backoff schedule, and find it back at once', async () => {
  const server = new FakeServer();
  const { dir, advance } = directory(server, { connectNow: false, backoff: { initialMs: 1000, maxMs: 60_000, probeMs: 1000 } });
  try {
    server.down = true;
    // Five minutes of an outage, a lookup every 200 ms: the schedule has grown to a minute long ago.
    for (let i = 0; i < 1500; i++) {
      assert.equal((await dir.isOwnDomain(`d${i}.example`)).source, 'error');
      advance(200);
    }
    const attempts = dir.stats().connectAttempts;
    assert.ok(attempts >= 299 && attempts <= 301, `one attempt a second, not one per lookup (${attempts})`);
    server.down = false;
    // The first lookup a probe period after the last attempt reconnects (at most 5 lookups of 200 ms).
    let answer = await dir.isOwnDomain('customer.example');
    for (let i = 0; i < 5 && answer.source === 'error'; i++) {
      advance(200);
      answer = await dir.isOwnDomain('customer.example');
    }
    assert.deepEqual(answer, { own: true, source: 'ldap' });
  } finally {
    await dir.close();
  }
});

test('an outage logs one warning, a summary a minute and one line when LDAP answers again: not a line per lookup', async () => {
  const server = new FakeServer();
  const { logger, lines } = captureJsonLog();
  const { dir, advance } = directory(server, { logger, outageSummaryEveryMs: 60_000 });
  try {
    assert.deepEqual(await dir.isOwnDomain('customer.example'), { own: true, source: 'ldap' });
    server.down = true;
    for (let i = 0; i < 130; i++) {
      assert.equal((await dir.isOwnDomain(`d${i}.example`)).source, 'error');
      advance(1000);
    }
    const warnings = lines.filter((l) => l['level'] === 'warn');
    assert.deepEqual(
      warnings.map((l) => l['msg']),
      [
        'LDAP unavailable: own-domain lookups fail and their domains count as not own until it answers again (one summary line a minute meanwhile)',
        'LDAP still unavailable for 60 s, 60 lookups failed',
        'LDAP still unavailable for 120 s, 120 lookups failed',
      ],
    );
    assert.match(String(warnings[0]!['error']), /ECONNREFUSED/);
    assert.equal(lines.filter((l) => l['level'] === 'debug' && l['msg'] === 'LDAP own-domain lookup failed (outage)').length, 130, 'each failed lookup at debug level');
    server.down = false;
    assert.deepEqual(await dir.isOwnDomain('customer2.example'), { own: false, source: 'ldap' });
    const back = lines.filter((l) => l['level'] === 'info' && /^LDAP answers again/.test(String(l['msg'])));
    assert.equal(back.length, 1);
    assert.equal(back[0]!['failedLookups'], 130);
    assert.equal(back[0]!['outageSeconds'], 130);
    // A second outage starts with a warning of its own.
    server.down = true;
    await dir.isOwnDomain('d-again.example');
    assert.equal(lines.filter((l) => l['level'] === 'warn').length, 4);
  } finally {
    await dir.close();
  }
});

test('timeouts are counted as kind timeout only, other failures as error only', async () => {
  const server = new FakeServer();
  const { dir } = directory(server, { timeoutMs: 50, cacheTtlSeconds: 0, negativeCacheTtlSeconds: 0 });
  try {
    server.hang = true;
    assert.equal((await dir.isOwnDomain('customer.example')).source, 'error');
    server.unhang();
    assert.deepEqual({ timeouts: dir.stats().timeouts, errors: dir.stats().errors }, { timeouts: 1, errors: 0 }, 'our deadline');
    // ldapts's own per-operation timeout, when it comes first.
    server.searchError = 'SearchRequest: Operation timed out';
    assert.equal((await dir.isOwnDomain('customer.example')).source, 'error');
    assert.deepEqual({ timeouts: dir.stats().timeouts, errors: dir.stats().errors }, { timeouts: 2, errors: 0 }, "ldapts's timeout");
    server.searchError = 'Insufficient Access';
    assert.equal((await dir.isOwnDomain('customer.example')).source, 'error');
    assert.deepEqual({ timeouts: dir.stats().timeouts, errors: dir.stats().errors }, { timeouts: 2, errors: 1 }, 'a server error');
  } finally {
    await dir.close();
  }
});

test('bind with DN and password; a bad password is an error answer', async () => {
  const server = new FakeServer();
  const { dir } = directory(server, { bindDn: 'uid=milter,dc=example,dc=test', bindPw: 'pw', connectNow: false });
  try {
    assert.equal((await dir.isOwnDomain('customer.example')).own, true);
    assert.deepEqual(server.binds, [{ dn: 'uid=milter,dc=example,dc=test', password: 'pw' }]);
  } finally {
    await dir.close();
  }
  const bad = new FakeServer();
  bad.wrongPassword = true;
  const { dir: dir2 } = directory(bad, { bindDn: 'uid=milter,dc=example,dc=test', bindPw: 'nope', connectNow: false });
  try {
    const answer = await dir2.isOwnDomain('customer.example');
    assert.equal(answer.source, 'error');
    assert.match(answer.error ?? '', /Invalid Credentials/);
    assert.ok(!(answer.error ?? '').includes('nope'));
  } finally {
    await dir2.close();
  }
});

test('after close() lookups answer with an error', async () => {
  const server = new FakeServer();
  const { dir } = directory(server);
  await dir.close();
  const answer = await dir.isOwnDomain('customer.example');
  assert.equal(answer.source, 'error');
  assert.match(answer.error ?? '', /closed/);
});

test('backoff doubles up to the cap and jitters within the upper half', () => {
  const opts = { initialMs: 500, maxMs: 4000 };
  assert.deepEqual([1, 2, 3, 4, 5, 50].map((n) => backoffDelay(n, opts, () => 1)), [500, 1000, 2000, 4000, 4000, 4000]);
  assert.equal(backoffDelay(3, opts, () => 0), 1000);
});

test('StartTLS refused: the bind (and its password) is never sent, the lookup fails open', async () => {
  const server = new FakeServer();
  server.noStartTls = true;
  const { dir } = directory(server, { startTls: true, bindDn: 'uid=milter', bindPw: 'secret' });
  const answer = await dir.isOwnDomain('customer.example');
  assert.equal(answer.own, false);
  assert.equal(answer.source, 'error');
  assert.match(answer.error ?? '', /StartTLS failed, not binding without TLS/);
  assert.ok(server.startTlsCalls >= 1);
  assert.deepEqual(server.binds, []);
  await dir.close();
});

test('StartTLS only for ldap:// URIs: ldaps:// is TLS already', async () => {
  const server = new FakeServer();
  const { dir } = directory(server, { startTls: true, uris: ['ldaps://fake'] });
  assert.deepEqual(await dir.isOwnDomain('customer.example'), { own: true, source: 'ldap' });
  assert.equal(server.startTlsCalls, 0);
  await dir.close();
});

test('listOwnDomains pages through every entry, lower case, RDN value', async () => {
  const server = new FakeServer();
  server.domains = new Set(Array.from({ length: 25 }, (_, i) => `D${i}.Example.`));
  const { dir } = directory(server);
  const seen: string[] = [];
  let pages = 0;
  for await (const page of dir.listOwnDomains({ filter: '(dc=*)', pageSize: 10 })) {
    pages++;
    seen.push(...page);
  }
  assert.equal(pages, 3);
  assert.equal(seen.length, 25);
  assert.equal(seen[0], 'd0.example');
  await dir.close();
});

test('a bind password over plain ldap:// to a remote host is warned about; StartTLS, ldaps and loopback are not', async () => {
  for (const [uris, startTls, warned] of [
    [['ldap://ldap.example'], false, true],
    [['ldap://ldap.example'], true, false],
    [['ldaps://ldap.example'], false, false],
    [['ldap://127.0.0.1:389'], false, false],
  ] as const) {
    const { logger, lines } = captureLog({ name: 't', level: 'info', format: 'json' });
    const { dir } = directory(new FakeServer(), { uris: [...uris], startTls, bindDn: 'uid=m', bindPw: 'pw', logger, connectNow: false });
    assert.equal(lines.some((l) => l.includes('in the clear')), warned, `${uris.join()} starttls=${startTls}`);
    await dir.close();
  }
});

test('the RDN value with RFC 4514 escapes undone', () => {
  assert.equal(firstRdnValue('dc=customer.example,ou=domains,dc=example,dc=test'), 'customer.example');
  assert.equal(firstRdnValue('associatedDomain=a\\,b.example+cn=x,ou=d'), 'a,b.example');
  assert.equal(firstRdnValue('dc=m\\C3\\BCller.example,ou=d'), 'müller.example');
  assert.equal(firstRdnValue('nothing'), undefined);
});
