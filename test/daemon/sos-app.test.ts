/**
 * The sos-milter application over a real loopback milter connection, with SPF answered by an
 * in-process zone and own domains from a list. Real DNS and LDAP are covered by the
 * integration scenarios; this file pins the wiring: macros, verdicts, header, log phrases.
 */
import { test, after, before } from 'node:test';
import { getEventListeners } from 'node:events';
import assert from 'node:assert/strict';
import { captureLog } from '../support/log-capture.js';
import { MilterServer, ProtoFlag, type BoundAddress } from '../../src/milter/index.js';
import { IgnoredNextHops, type CancelOptions, type OwnDomainPort, type PolicySettings, type SpfPort } from '../../src/policy/index.js';
import { SpfEvaluator, type SpfResult } from '../../src/spf/index.js';
import { ZoneResolver } from '../support/spf/zone-resolver.js';
import { compileSpfRegex } from '../../src/config/index.js';
import { createSosMilterApp } from '../../src/daemon/sos-app.js';
import { FdExhaustion } from '../../src/daemon/fd-limit.js';
import { LdapDomainDirectory, type LdapClient } from '../../src/ldap/index.js';
import { MilterTestClient, POSTFIX_OFFER } from '../support/milter-client.js';
import { waitFor } from '../support/wait.js';

const zone = {
  'fail.example': [{ TXT: 'v=spf1 ip4:198.51.100.0/24 -all' }],
  'good.example': [{ TXT: 'v=spf1 include:_spf.esp.example -all' }],
  'soft.example': [{ TXT: 'v=spf1 ip4:198.51.100.0/24 ~all' }],
  'own-broken.example': [{ TXT: 'v=spf1 mx -all' }],
  'own-broken.example.mx': [],
  // Passes for the relay; lacks the include SPF_REGEX asks of own domains.
  'own-nostatement.example': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 -all' }],
  '_spf.esp.example': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 -all' }],
};

const ownDomains: OwnDomainPort = {
  async isOwnDomain(domain) {
    return { own: domain === 'own-broken.example', source: 'ldap' };
  },
};

interface Harness {
  server: MilterServer;
  address: BoundAddress;
  lines: string[];
}

interface AppExtra {
  ignored?: string[];
  rejectMessage?: string;
  check?: 'regex' | 'evaluate';
  spf?: SpfPort;
  assessmentTimeoutMs?: number;
  ownDomains?: OwnDomainPort;
}

async function startApp(mode: 'test' | 'reject', extra: AppExtra = {}): Promise<Harness> {
  const { logger, lines } = captureLog('text');
  const settings: PolicySettings = {
    mode,
    check: extra.check ?? 'regex',
    spfRegex: compileSpfRegex('.*include:_spf\\.esp\\.example'),
    outboundIps: extra.check === 'evaluate' ? ['192.0.2.10'] : [],
    violationResults: new Set<SpfResult>(['fail']),
  };
  const app = createSosMilterApp({
    settings,
    milterName: 'sos-milter',
    rejectMessage: extra.rejectMessage ?? 'Security policy violation!',
    tmpfailMessage: 'Service temporarily not available! Please try again later.',
    ignoredNextHops: new IgnoredNextHops(extra.ignored ?? []),
    spf: extra.spf ?? new SpfEvaluator({ resolver: new ZoneResolver(zone) }),
    ownDomains: extra.ownDomains ?? ownDomains,
    logger,
    assessmentTimeoutMs: extra.assessmentTimeoutMs ?? 2000,
  });
  const server = new MilterServer(app, { socket: 'inet:0@127.0.0.1' });
  const address = await server.listen();
  return { server, address, lines };
}

interface MessageSpec {
  from: string;
  rcpts?: { to: string; host?: string }[];
  queueId?: string | null;
  clientAddr?: string;
}

/** Plays one SMTP session's message as Postfix 3.7 does, returning the EOM answer. */
async function play(client: MilterTestClient, spec: MessageSpec) {
  await client.mail(spec.from, [], { '{mail_addr}': spec.from.replace(/[<>]/g, '') });
  const rcpts = spec.rcpts ?? [{ to: '<r@dest.example>', host: 'dest.example' }];
  for (const [i, r] of rcpts.entries()) {
    const macros: Record<string, string> = { '{rcpt_addr}': r.to.replace(/[<>]/g, '') };
    if (r.host !== undefined) macros['{rcpt_host}'] = r.host;
    if (i > 0 && spec.queueId !== null) macros.i = spec.queueId ?? 'ABC123';
    await client.rcpt(r.to, [], macros);
  }
  const eomMacros: Record<string, string> = spec.queueId === null ? {} : { i: spec.queueId ?? 'ABC123' };
  const reply = await client.eom(eomMacros);
  client.abort();
  return reply;
}

async function session(h: Harness, clientAddr = '203.0.113.5'): Promise<MilterTestClient> {
  const client = await MilterTestClient.connect(h.address);
  await client.negotiate(POSTFIX_OFFER);
  await client.connectCmd(`[${clientAddr}]`, clientAddr, 40000, { j: 'mx.esp.example' });
  await client.helo('client.example');
  return client;
}

let reject: Harness;
let testMode: Harness;
before(async () => {
  reject = await startApp('reject', { ignored: [' [Relay.Example]:25 ', 'other.example'], rejectMessage: 'Ask 100% of postmasters!' });
  testMode = await startApp('test');
});
after(async () => {
  await reject.server.close({ deadlineMs: 500 });
  await testMode.server.close({ deadlineMs: 500 });
});

test('negotiation asks for the macros Postfix does not send by default and skips unused steps', async () => {
  const client = await MilterTestClient.connect(reject.address);
  const reply = await client.negotiate(POSTFIX_OFFER);
  const lists = new Map(reply.symbolLists.map((l) => [l.stage, l.names]));
  assert.match(lists.get(0) ?? '', /\{client_addr\}/);
  assert.match(lists.get(3) ?? '', /\{rcpt_host\}/);
  assert.match(lists.get(5) ?? '', /\bi\b/);
  assert.ok(reply.protocol & ProtoFlag.NOHDRS, 'headers are not needed');
  assert.ok(reply.protocol & ProtoFlag.NOBODY, 'the body is not needed');
  assert.ok(reply.protocol & ProtoFlag.NR_MAIL, 'MAIL is never answered: DNS cannot hold it up');
  client.close();
});

test('reject mode: a restrictive record without the expected include gets the original 550 text, % intact', async () => {
  const client = await session(reject);
  const reply = await play(client, { from: '<user@FAIL.example>' });
  assert.equal(reply.final?.type, 'replyCode');
  const text = (reply.final as { text: string }).text;
  assert.match(
    text,
    /^550 5\.7\.1 sos-milter: [a-z0-9]{8} SPF-record \(-all\) of 5321_from_domain=fail\.example does not permit us to relay this message! Ask 100%% of postmasters!$/,
  );
  client.quit();
  assert.ok(reject.lines.some((l) => l.includes('mode=reject client=203.0.113.5 SPF-record (-all) of 5321_from_domain=fail.example')));
});

test('several messages on one connection are judged independently, each reject with its own id', async () => {
  const client = await session(reject);
  const first = await play(client, { from: '<a@fail.example>', queueId: 'Q1' });
  const second = await play(client, { from: '<b@good.example>', queueId: 'Q2' });
  const third = await play(client, { from: '<c@fail.example>', queueId: 'Q3' });
  const nul = await play(client, { from: '<>', queueId: 'Q4' });
  const soft = await play(client, { from: '<d@soft.example>', queueId: 'Q5' });
  client.quit();
  assert.equal(first.final?.type, 'replyCode');
  assert.equal(second.final?.type, 'continue');
  assert.equal(third.final?.type, 'replyCode');
  assert.equal(nul.final?.type, 'continue');
  assert.equal(soft.final?.type, 'continue');
  const id = (r: typeof first) => /sos-milter: ([a-z0-9]{8}) /.exec((r.final as { text: string }).text)?.[1];
  assert.notEqual(id(first), id(third));
});

test('ignored next hops pass a violation only when every recipient goes there', async () => {
  const client = await session(reject);
  const all = await play(client, {
    from: '<a@fail.example>',
    rcpts: [
      { to: '<x@one.example>', host: '[relay.example]:25' },
      { to: '<y@two.example>', host: 'OTHER.example' },
    ],
  });
  const mixed = await play(client, {
    from: '<a@fail.example>',
    rcpts: [
      { to: '<x@one.example>', host: '[relay.example]:25' },
      { to: '<y@two.example>', host: 'dest.example' },
    ],
  });
  const missing = await play(client, { from: '<a@fail.example>', rcpts: [{ to: '<x@one.example>' }] });
  const warnedBefore = reject.lines.filter((l) => l.includes('could not retrieve milter-macro ({rcpt_host})')).length;
  const manyMissing = await play(client, { from: '<a@fail.example>', rcpts: Array.from({ length: 50 }, (_, i) => ({ to: `<r${i}@one.example>` })) });
  client.quit();
  assert.equal(manyMissing.final?.type, 'replyCode');
  assert.equal(
    reject.lines.filter((l) => l.includes('could not retrieve milter-macro ({rcpt_host})')).length - warnedBefore,
    1,
    'a missing {rcpt_host} is logged once per message, not once per recipient',
  );
  assert.equal(all.final?.type, 'continue');
  assert.equal(mixed.final?.type, 'replyCode');
  assert.equal(missing.final?.type, 'replyCode', 'a missing {rcpt_host} is not ignored');
  assert.ok(reject.lines.some((l) => l.includes('Passing message due to ignored next-hop=')));
  assert.ok(reject.lines.some((l) => l.includes('could not retrieve milter-macro ({rcpt_host})')));
});

test('without the queue id a judged message is tempfailed with the configured text', async () => {
  const client = await session(reject);
  const reply = await play(client, { from: '<a@good.example>', queueId: null });
  client.quit();
  assert.equal(reply.final?.type, 'replyCode');
  assert.equal((reply.final as { text: string }).text, '450 4.7.1 Service temporarily not available! Please try again later.');
});

test('test mode: foreign violations are only logged, own domains get the header and the LDAP line', async () => {
  const client = await session(testMode, '2001:db8::25');
  const foreign = await play(client, { from: '<a@fail.example>', queueId: 'F1' });
  const own = await play(client, { from: '<a@own-broken.example>', queueId: 'O1' });
  client.quit();
  assert.equal(foreign.final?.type, 'continue');
  assert.deepEqual(foreign.modifications, []);
  assert.equal(own.final?.type, 'continue');
  assert.deepEqual(own.modifications, [{ type: 'addHeader', name: 'X-SOS-Milter', value: 'failed SPF-expectation' }]);
  const lines = testMode.lines.join('');
  assert.match(lines, /sos-milter: [a-z0-9]{8}\/F1: mode=test client=2001:db8::25 SPF-record \(-all\) of 5321_from_domain=fail\.example does not permit us to relay this message!/);
  assert.match(lines, /\/O1: 5321_from_domain=own-broken\.example \(LDAP\) has a broken SPF-record!/);
  assert.match(lines, /\/O1: judged domain=own-broken\.example own=own record="v=spf1 mx -all" check=regex result=restrictive action=tag/);
});

test('an MTA speaking protocol version 2 (no no-reply bits, no macro lists) gets an answer to every command', async () => {
  const client = await MilterTestClient.connect(reject.address);
  const reply = await client.negotiate({ version: 2, actions: 0x3f, protocol: 0x7f });
  assert.equal(reply.version, 2);
  assert.equal(reply.protocol & ~0x7f, 0, 'only steps a version-2 MTA knows are asked to be skipped');
  assert.deepEqual(reply.symbolLists, []);
  assert.equal((await client.connectCmd('[203.0.113.9]', '203.0.113.9', 40000)).final?.type, 'continue');
  assert.equal((await client.helo('client.example')).final?.type, 'continue');
  assert.equal((await client.mail('<a@fail.example>')).final?.type, 'continue');
  // Postfix's default RCPT macros carry {rcpt_host}; `i` is in its default end-of-message list.
  assert.equal((await client.rcpt('<r@dest.example>', [], { '{rcpt_host}': 'dest.example' })).final?.type, 'continue');
  const eom = await client.eom({ i: 'V2QUEUE' });
  assert.equal(eom.final?.type, 'replyCode');
  assert.match((eom.final as { text: string }).text, /^550 5\.7\.1 sos-milter: [a-z0-9]{8} SPF-record \(-all\) of 5321_from_domain=fail\.example /);
  client.quit();
});

test('a domain cut short by URL parsing is not judged, in either check: fail.example\\innocent.example is not fail.example', async () => {
  for (const check of ['regex', 'evaluate'] as const) {
    const h = await startApp('reject', { check });
    try {
      const client = await session(h);
      const cut = await play(client, { from: '<u@fail.example\\innocent.example>' });
      const plain = await play(client, { from: '<u@fail.example>' });
      client.quit();
      assert.equal(cut.final?.type, 'continue', check);
      assert.equal(plain.final?.type, 'replyCode', `${check}: the control is rejected`);
      const lines = h.lines.join('');
      assert.match(lines, /sender has no usable domain: not judged sender="u@fail.example\\\\innocent.example" reason="not an RFC 5321 domain/);
      assert.equal(lines.match(/5321_from_domain=fail\.example does not permit/g)?.length, 1, check);
    } finally {
      await h.server.close({ deadlineMs: 1000 });
    }
  }
});

/** An SPF port that answers only when told to, and records the signals it was given. */
class HeldSpf implements SpfPort {
  readonly signals: AbortSignal[] = [];
  private readonly inner = new SpfEvaluator({ resolver: new ZoneResolver(zone) });
  private readonly waiting: (() => void)[] = [];

  release(): void {
    for (const go of this.waiting.splice(0)) go();
  }

  private async hold(options?: CancelOptions): Promise<void> {
    if (options?.signal) this.signals.push(options.signal);
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  async effectiveRecord(domain: string, options?: CancelOptions) {
    await this.hold(options);
    return this.inner.effectiveRecord(domain);
  }

  async checkHostForIps(sender: string, helo: string, ips: string[], options?: CancelOptions) {
    await this.hold(options);
    return this.inner.checkHostForIps(sender, helo, ips);
  }
}

test('evaluate, reject mode: an own-domain lookup whose LDAP connection found no file descriptor defers the message (451 4.3.0), logged and counted', async () => {
  // The daemon's wiring: the real directory, its connection failing as net.connect does under EMFILE, watched by FdExhaustion.
  const emfile = (): Error => Object.assign(new Error('connect EMFILE 127.0.0.1:389 - Local (undefined:undefined)'), { code: 'EMFILE', syscall: 'connect' });
  const noDescriptor: LdapClient = {
    isConnected: false,
    startTls: () => Promise.reject(emfile()),
    bind: () => Promise.reject(emfile()),
    countEntries: () => Promise.reject(new Error('not connected')),
    searchEntries: () => Promise.reject(new Error('not connected')),
    listEntries: () => {
      throw new Error('not connected');
    },
    unbind: () => Promise.resolve(),
  };
  const directory = new LdapDomainDirectory({
    uris: ['ldap://127.0.0.1'],
    searchBase: 'dc=example',
    queryFilter: '(dc=%d)',
    cacheTtlSeconds: 300,
    negativeCacheTtlSeconds: 60,
    timeoutMs: 1000,
    connectNow: false,
    createClient: () => noDescriptor,
  });
  const { logger: fdLog, lines: fdLines } = captureLog({ name: 'sos-milter', level: 'debug', format: 'text' });
  const fd = new FdExhaustion(fdLog);
  const h = await startApp('reject', { check: 'evaluate', ownDomains: fd.watchOwnDomains(directory) });
  try {
    const client = await session(h);
    const deferred = await play(client, { from: '<a@own-nostatement.example>', queueId: 'L1' });
    // Ownership changes nothing for a record that would pass even as an own domain: no deferral.
    const passed = await play(client, { from: '<b@good.example>', queueId: 'L2' });
    client.quit();
    assert.equal(deferred.final?.type, 'replyCode');
    assert.equal((deferred.final as { text: string }).text, '451 4.3.0 Service temporarily not available! Please try again later.');
    assert.equal(passed.final?.type, 'continue');
    const log = h.lines.join('');
    assert.match(log, /SPF policy of 5321_from_domain=own-nostatement\.example could not be judged for want of a local resource \(too many open files\): message deferred with 451 4\.3\.0/);
    assert.match(log, /own-domain lookup failed for want of a local resource/);
    assert.doesNotMatch(log, /judged domain=own-nostatement\.example .*action=pass/);
    assert.equal(fd.counts.ldap, 2, 'both lookups found no descriptor');
    assert.match(fdLines.join(''), /too many open files \(EMFILE\): the LDAP lookup could not open a connection/);
  } finally {
    fd.flush();
    await directory.close();
    await h.server.close({ deadlineMs: 1000 });
  }
});

test('the deadline cancels the SPF work behind it and the message fails open', async () => {
  const spf = new HeldSpf();
  const h = await startApp('reject', { spf, assessmentTimeoutMs: 150 });
  try {
    const client = await session(h);
    const reply = await play(client, { from: '<a@fail.example>' });
    client.quit();
    assert.equal(reply.final?.type, 'continue');
    assert.equal(spf.signals.length, 1);
    assert.equal(spf.signals[0]!.aborted, true, 'the signal handed to the SPF port is aborted at the deadline');
    assert.match(h.lines.join(''), /not judged \(fail open\): no verdict within 150 ms/);
    assert.match(h.lines.join(''), /judged domain=fail\.example .*result=temperror action=pass/);
  } finally {
    spf.release();
    await h.server.close({ deadlineMs: 1000 });
  }
});

test('an SPF port that fails unexpectedly: logged as an error, the message fails open with the reason, the work told to stop', async () => {
  const signals: AbortSignal[] = [];
  const broken: SpfPort = {
    effectiveRecord: (_domain, options) => (options?.signal && signals.push(options.signal), Promise.reject(new Error('port broken'))),
    checkHostForIps: () => Promise.reject(new Error('port broken')),
  };
  const h = await startApp('reject', { spf: broken });
  try {
    const client = await session(h);
    const reply = await play(client, { from: '<a@fail.example>' });
    client.quit();
    assert.equal(reply.final?.type, 'continue');
    const log = h.lines.join('');
    assert.match(log, /SPF assessment failed unexpectedly/);
    assert.match(log, /not judged \(fail open\): internal error: port broken/);
    assert.equal(signals[0]?.aborted, true, 'the failed assessment\'s signal is aborted, its controller not reused');
  } finally {
    await h.server.close({ deadlineMs: 1000 });
  }
});

test('an assessment that settles by itself leaves no listener on its signal, which the next message may reuse', async () => {
  const spf = new HeldSpf();
  const h = await startApp('reject', { spf });
  try {
    const client = await session(h);
    const first = play(client, { from: '<a@fail.example>' });
    await waitFor(() => spf.signals.length === 1, { timeoutMs: 5000, what: 'the first assessment to ask the SPF port' });
    spf.release();
    assert.equal((await first).final?.type, 'replyCode');
    const second = play(client, { from: '<b@fail.example>' });
    await waitFor(() => spf.signals.length === 2, { timeoutMs: 5000, what: 'the second assessment to ask the SPF port' });
    spf.release();
    assert.equal((await second).final?.type, 'replyCode');
    client.quit();
    for (const signal of spf.signals) assert.equal(getEventListeners(signal, 'abort').length, 0);
    assert.equal(spf.signals[1], spf.signals[0], 'the controller of a settled assessment is reused');
  } finally {
    spf.release();
    await h.server.close({ deadlineMs: 1000 });
  }
});

test('ABORT before end of message cancels the assessment', async () => {
  const spf = new HeldSpf();
  const h = await startApp('reject', { spf });
  try {
    const client = await session(h);
    await client.mail('<a@fail.example>');
    await client.rcpt('<r@dest.example>', [], { '{rcpt_host}': 'dest.example' });
    client.abort();
    await waitFor(() => spf.signals[0]?.aborted === true, { timeoutMs: 5000, intervalMs: 10, what: 'the abort to reach the assessment' });
    client.quit();
    assert.doesNotMatch(h.lines.join(''), /judged domain=/);
  } finally {
    spf.release();
    await h.server.close({ deadlineMs: 1000 });
  }
});

test('an MTA that gives up on a pending end of message (closes the connection) gets it logged as abandoned, not judged', async () => {
  const spf = new HeldSpf();
  const h = await startApp('reject', { spf, assessmentTimeoutMs: 60_000 });
  try {
    const client = await session(h);
    await client.mail('<a@fail.example>');
    await client.rcpt('<r@dest.example>', [], { '{rcpt_host}': 'dest.example' });
    client.send({ type: 'eob', data: Buffer.alloc(0) });
    await waitFor(() => spf.signals.length === 1, { timeoutMs: 5000, intervalMs: 10, what: 'the assessment to be waiting' });
    // Sendmail at its own timeout (T=E:) closes the filter's socket.
    client.close();
    await waitFor(() => spf.signals[0]!.aborted, { timeoutMs: 5000, intervalMs: 10, what: 'the close to reach the assessment' });
    await waitFor(() => h.lines.some((l) => l.includes('abandoned by the MTA')), { timeoutMs: 5000, intervalMs: 10, what: 'the abandoned line' });
    const lines = h.lines.join('');
    assert.match(lines, /abandoned by the MTA \(connection closed by the MTA\): no verdict given domain=fail\.example/);
    assert.doesNotMatch(lines, /: judged domain=fail\.example/);
    assert.doesNotMatch(lines, /does not permit us to relay/);
  } finally {
    spf.release();
    await h.server.close({ deadlineMs: 1000 });
  }
});

test('a pending end of message cut at the shutdown drain deadline is logged as closed at the deadline, not as abandoned by the MTA', async () => {
  const spf = new HeldSpf();
  const h = await startApp('reject', { spf, assessmentTimeoutMs: 60_000 });
  try {
    const client = await session(h);
    await client.mail('<a@fail.example>');
    await client.rcpt('<r@dest.example>', [], { '{rcpt_host}': 'dest.example' });
    client.send({ type: 'eob', data: Buffer.alloc(0) });
    await waitFor(() => spf.signals.length === 1, { timeoutMs: 5000, intervalMs: 10, what: 'the assessment to be waiting' });
    await h.server.close({ deadlineMs: 50 });
    await waitFor(() => h.lines.some((l) => l.includes('no verdict given')), { timeoutMs: 5000, intervalMs: 10, what: 'the closed line' });
    const lines = h.lines.join('');
    assert.match(lines, /connection closed by the milter at the shutdown drain deadline \(SHUTDOWN_TIMEOUT_MS\): no verdict given domain=fail\.example/);
    assert.doesNotMatch(lines, /abandoned by the MTA/);
  } finally {
    spf.release();
    await h.server.close({ deadlineMs: 1000 });
  }
});

test('thousands of recipients to an ignored next hop: still passed, the log line bounded', async () => {
  const client = await session(reject);
  const rcpts = Array.from({ length: 2000 }, (_, i) => ({ to: `<r${i}@one.example>`, host: '[relay.example]:25' }));
  const reply = await play(client, { from: '<a@fail.example>', rcpts, queueId: 'MANY1' });
  const mixed = await play(client, { from: '<a@fail.example>', rcpts: [...rcpts, { to: '<last@two.example>', host: 'dest.example' }], queueId: 'MANY2' });
  client.quit();
  assert.equal(reply.final?.type, 'continue');
  assert.equal(mixed.final?.type, 'replyCode', 'one recipient past the kept hops still decides');
  const line = reject.lines.find((l) => l.includes('/MANY1: Passing message due to ignored next-hop='));
  assert.ok(line, 'the ignored next-hop line');
  assert.ok(line.length < 32 * 20 + 200, `bounded: ${line.length} characters`);
  assert.match(line, /\[relay\.example\]:25,\.\.\. \(1968 more\)/);
});
