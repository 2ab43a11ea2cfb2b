// Issue 7, "the deadline cancels the work behind it", through the real daemon
// (`node dist/src/cli/main.js`, reject mode, SPF_CHECK=evaluate) and a Postfix-like milter client,
// with every DNS query counted at Knot. Between the daemon and Knot sits a loopback UDP hop
// (test/support/dns-path-proxy.ts) that forwards each query to Knot at once, so Knot counts it
// at once, and shapes only the way back: answers for *.hang.test are lost (the lookup hangs and
// its resolver retries), answers for *.slow.test come back SLOW_ANSWER_MS late.
//  - ABORT while a lookup hangs, and the MTA closing the connection while end of message waits
//    (what Postfix and Sendmail do at their own milter timeout): no retry and no further query
//    reaches Knot afterwards; a control message left alone shows the retries.
//  - The per-message deadline (4 × DNS_TIMEOUT_MS without LDAP) firing while slow lookups, each
//    answered well within DNS_TIMEOUT_MS, are still going: the message gets its fail-open verdict
//    at the deadline, logged as such, and no query reaches Knot after it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { knotSkipReason, queryCountWhenReady, startKnot, type KnotInstance } from '../support/knot.js';
import { listeningPort, startDaemonProcess, type DaemonProcess, type LogLine } from '../support/daemon-process.js';
import { MilterTestClient } from '../support/milter-client.js';
import { startDnsPathProxy, type DnsPathProxy } from '../support/dns-path-proxy.js';
import { freePort } from '../support/ports.js';
import { sleep, waitFor } from '../support/wait.js';

// Three attempts per lookup, started DNS_TIMEOUT_MS / 3 apart, each listening until DNS_TIMEOUT_MS.
const DNS_TIMEOUT_MS = 2000;
const ATTEMPTS = 3;
/** src/app/policy-parts.ts assessmentTimeoutMs() without LDAP. */
const DEADLINE_MS = 4 * DNS_TIMEOUT_MS;
/** Below the retry spacing: every slow lookup is answered by its first attempt. */
const SLOW_ANSWER_MS = 400;
/** Slack after a lookup's budget before counts are compared: a late retry would be out by then. */
const MARGIN_MS = 700;
const OUTBOUND_IP = '192.0.2.1';

/** Four mx terms of ten MX hosts each: 44 sequential slow lookups, far more than fit before the deadline. */
const MX_TERMS = 4;
const MX_HOSTS = 10;
const SLOW_LOOKUPS = MX_TERMS * (1 + MX_HOSTS);

const CANCEL_ZONE = [
  '$ORIGIN cancel.test.',
  '$TTL 60',
  '@ SOA ns hostmaster 1 3600 600 86400 60',
  '@ NS ns',
  'ns A 127.0.0.1',
  'abort TXT "v=spf1 include:a1.hang.test include:a2.hang.test -all"',
  'close TXT "v=spf1 include:b1.hang.test include:b2.hang.test -all"',
  'control TXT "v=spf1 include:c1.hang.test include:c2.hang.test -all"',
  `deadline TXT "v=spf1 ${Array.from({ length: MX_TERMS }, (_, i) => `mx:m${i + 1}.slow.test`).join(' ')} -all"`,
  `ok TXT "v=spf1 ip4:${OUTBOUND_IP} -all"`,
  '',
].join('\n');

// Knot answers these at once; the hop loses the answers.
const HANG_ZONE = ['$ORIGIN hang.test.', '$TTL 60', '@ SOA ns.cancel.test. hostmaster.cancel.test. 1 3600 600 86400 60', '@ NS ns.cancel.test.', '* TXT "v=spf1 -all"', ''].join('\n');

const SLOW_ZONE = [
  '$ORIGIN slow.test.',
  '$TTL 60',
  '@ SOA ns.cancel.test. hostmaster.cancel.test. 1 3600 600 86400 60',
  '@ NS ns.cancel.test.',
  ...Array.from({ length: MX_TERMS }, (_, t) =>
    Array.from({ length: MX_HOSTS }, (_, h) => [`m${t + 1} MX 10 h${h + 1}.m${t + 1}`, `h${h + 1}.m${t + 1} A 198.51.100.${t * MX_HOSTS + h + 1}`]).flat(),
  ).flat(),
  '',
].join('\n');

/** One daemon under test: the process, its milter port and its /metrics port. */
interface Milter {
  daemon: DaemonProcess;
  port: number;
  metricsPort: number;
}

async function startMilter(env: Record<string, string>): Promise<Milter> {
  const metricsPort = await freePort();
  const daemon = await startDaemonProcess({
    MILTER_SOCKET: 'inet:0@127.0.0.1',
    MILTER_MODE: 'reject',
    DNS_TIMEOUT_MS: String(DNS_TIMEOUT_MS),
    METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
    // Counts are compared before and after each case: every scrape must render afresh.
    METRICS_CACHE_MS: '0',
    LOG_LEVEL: 'debug',
    ...env,
  });
  return { daemon, port: await listeningPort(daemon), metricsPort };
}

async function stopMilter(m: Milter | undefined): Promise<void> {
  if (!m) return;
  m.daemon.proc.kill('SIGTERM');
  const code = await m.daemon.waitExit(15_000);
  await m.daemon.kill();
  assert.equal(code, 0, m.daemon.tail());
}

/** A counter of the daemon's /metrics (0 while it has no sample). */
async function metric(m: Milter, series: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${m.metricsPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`sos_milter_${series} `));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}
const sentBy = (m: Milter): Promise<number> => metric(m, 'dns_queries_total{transport="udp"}');

const connectClient = (m: Milter, timeoutMs = 10_000): Promise<MilterTestClient> => MilterTestClient.connect({ port: m.port, host: '127.0.0.1' }, timeoutMs);

/** MAIL and RCPT as Postfix sends them (neither is answered: the daemon negotiated NR_MAIL/NR_RCPT). */
async function mailRcpt(c: MilterTestClient, sender: string, queueId: string): Promise<void> {
  await c.mail(`<${sender}>`, [], { i: queueId, '{mail_addr}': sender });
  await c.rcpt('<rcpt@example.net>', [], { i: queueId, '{rcpt_host}': 'mx.example.net', '{rcpt_addr}': 'rcpt@example.net' });
}

/** End of message sent, its reply not awaited. */
function sendEom(c: MilterTestClient, queueId: string): void {
  c.sendMacros('eob', { i: queueId });
  c.send({ type: 'eob', data: Buffer.alloc(0) });
}

/** The message id (`conn`) the daemon gave the message from `domain`, from its debug line at MAIL. */
async function messageIdOf(m: Milter, domain: string): Promise<unknown> {
  const line = await m.daemon.waitFor((l) => l.msg === `5321_from_domain=${domain}`, 5000, `the MAIL line of ${domain}`);
  return line['conn'];
}
const linesOf = (m: Milter, id: unknown): LogLine[] => m.daemon.lines.filter((l) => l['conn'] === id);

describe('the daemon cancels abandoned and expired SPF work, counted at Knot', { skip: knotSkipReason() ?? false, timeout: 90_000 }, () => {
  let knot: KnotInstance;
  let hop: DnsPathProxy;
  /** SPF_CHECK=evaluate: the RFC 7208 check of OUTBOUND_IPS, includes and all. */
  let evaluating: Milter;
  /** SPF_CHECK=regex (the default): only the sender's record and its redirects are looked up. */
  let regex: Milter;

  before(async () => {
    knot = await startKnot({ zones: { 'cancel.test': CANCEL_ZONE, 'hang.test': HANG_ZONE, 'slow.test': SLOW_ZONE } });
    hop = await startDnsPathProxy({
      upstream: { host: knot.host, port: knot.port },
      pathFor: (name) => (name.endsWith('.hang.test') ? 'drop' : name.endsWith('.slow.test') ? { delayMs: SLOW_ANSWER_MS } : undefined),
    });
    const dns = { DNS_SERVERS: `${hop.host}:${hop.port}` };
    [evaluating, regex] = await Promise.all([startMilter({ ...dns, SPF_CHECK: 'evaluate', OUTBOUND_IPS: OUTBOUND_IP }), startMilter({ ...dns, SPF_CHECK: 'regex' })]);
  });

  after(async () => {
    await Promise.all([stopMilter(evaluating), stopMilter(regex)]);
    await hop?.close();
    await knot?.close();
  });

  type Counts = { knot: number; sent: number; aborted: number; timeouts: number };
  /** Knot's and one daemon's counts, to measure one case against. */
  async function counts(m: Milter): Promise<Counts> {
    return {
      knot: await queryCountWhenReady(knot),
      sent: await sentBy(m),
      aborted: await metric(m, 'dns_lookups_aborted_total'),
      timeouts: await metric(m, 'dns_errors_total{kind="timeout"}'),
    };
  }

  /** When the first query for `name` reached Knot (bounded wait). */
  async function firstQueryAt(name: string): Promise<number> {
    await waitFor(() => hop.count(name) > 0, { timeoutMs: 10_000, intervalMs: 10, what: `the first query for ${name}` });
    return hop.forwarded.find((q) => q.name === name)!.at;
  }

  /**
   * After the cancel: past the hanging lookup's last retry moment and its whole budget, the
   * daemon has sent nothing more, Knot has received exactly what was sent before the cancel,
   * and the hanging name got fewer attempts than a lookup left alone makes.
   */
  async function assertNothingAfterCancel(
    m: Milter,
    start: Counts,
    hang: { name: string; queriesBefore: number; next?: string },
    firstAt: number,
    sentAtCancel: number,
  ): Promise<void> {
    await sleep(Math.max(0, firstAt + DNS_TIMEOUT_MS + MARGIN_MS - Date.now()));
    const end = await counts(m);
    const attemptsBeforeCancel = sentAtCancel - hang.queriesBefore;
    assert.ok(attemptsBeforeCancel >= 1 && attemptsBeforeCancel < ATTEMPTS, `a retry was still due at the cancel (attempts sent: ${attemptsBeforeCancel})`);
    assert.equal(end.sent - start.sent, sentAtCancel, 'the daemon sent no query after the cancel');
    assert.equal(end.knot - start.knot, sentAtCancel, 'Knot received exactly the queries sent before the cancel');
    assert.equal(hop.count(hang.name), attemptsBeforeCancel, `no retry for ${hang.name} reached Knot after the cancel`);
    if (hang.next) assert.equal(hop.count(hang.next), 0, `the next include (${hang.next}) was never asked`);
    assert.equal(end.aborted - start.aborted, 1, 'the pending lookup was dropped (dns_lookups_aborted_total)');
  }

  test('left alone, a lookup that gets no answer is retried: the control', async () => {
    const m = evaluating;
    const start = await counts(m);
    const c = await connectClient(m);
    await c.openSession();
    const final = await c.message('<u@control.cancel.test>', 'QC1');
    assert.deepEqual(final, { type: 'continue' }, 'fail open');
    c.quit();
    await c.waitClosed();
    const end = await counts(m);
    assert.equal(hop.count('c1.hang.test'), ATTEMPTS, 'three attempts for the include that gets no answer');
    assert.equal(hop.count('c2.hang.test'), 0, 'temperror of the first include ends the evaluation');
    assert.equal(end.sent - start.sent, 1 + ATTEMPTS, 'the record, then every attempt');
    assert.equal(end.knot - start.knot, 1 + ATTEMPTS, 'and Knot received them all');
    assert.equal(end.aborted - start.aborted, 0);
    const id = await messageIdOf(m, 'control.cancel.test');
    const judged = await m.daemon.waitFor((l) => l['conn'] === id && l.msg === 'judged', 5000, 'the judged line');
    assert.equal(judged['action'], 'pass', 'fail open');
    assert.equal(judged['result'], 'temperror');
  });

  test('ABORT while a lookup hangs: no further query for it reaches Knot', async () => {
    const m = evaluating;
    const start = await counts(m);
    const c = await connectClient(m);
    await c.openSession();
    await mailRcpt(c, 'u@abort.cancel.test', 'QA1');
    const firstAt = await firstQueryAt('a1.hang.test');
    c.abort();
    const id = await messageIdOf(m, 'abort.cancel.test');
    await m.daemon.waitFor((l) => l['conn'] === id && /assessment cancelled/.test(l.msg ?? ''), 5000, 'the ABORT taken');
    const sentAtCancel = (await sentBy(m)) - start.sent;

    await assertNothingAfterCancel(m, start, { name: 'a1.hang.test', queriesBefore: 1, next: 'a2.hang.test' }, firstAt, sentAtCancel);
    assert.ok(!linesOf(m, id).some((l) => l.msg === 'judged'), `an aborted message is not judged\n${m.daemon.tail()}`);

    // The SMTP session goes on: the next message on the connection is judged as usual.
    assert.deepEqual(await c.message('<u@ok.cancel.test>', 'QA2'), { type: 'continue' });
    const next = await m.daemon.waitFor((l) => l.msg === 'judged' && l['domain'] === 'ok.cancel.test', 5000, 'the next message judged');
    assert.equal(next['result'], 'pass');
    c.quit();
    await c.waitClosed();
  });

  /** Closes the connection while end of message waits for the hanging lookup; checks Knot and the log. */
  async function closeWhileEomWaits(m: Milter, domain: string, hang: { name: string; queriesBefore: number; next?: string }): Promise<void> {
    const start = await counts(m);
    const c = await connectClient(m);
    await c.openSession();
    await mailRcpt(c, `u@${domain}`, 'QB1');
    sendEom(c, 'QB1');
    const firstAt = await firstQueryAt(hang.name);
    // As Postfix and Sendmail do when their milter timeout passes: close, no ABORT.
    c.close();
    const id = await messageIdOf(m, domain);
    const abandoned = await m.daemon.waitFor((l) => l['conn'] === id && /^abandoned by the MTA/.test(l.msg ?? ''), 5000, 'the abandoned line');
    const sentAtCancel = (await sentBy(m)) - start.sent;
    assert.equal(abandoned.msg, 'abandoned by the MTA (connection closed by the MTA): no verdict given');
    assert.equal(abandoned['level'], 'info');

    await assertNothingAfterCancel(m, start, hang, firstAt, sentAtCancel);
    const lines = linesOf(m, id);
    assert.ok(!lines.some((l) => l.msg === 'judged'), `an abandoned message is never judged\n${JSON.stringify(lines)}`);
    assert.ok(!lines.some((l) => /not judged \(fail open\)/.test(l.msg ?? '')), 'nor reported as failing open');
  }

  test('the MTA closes the connection while end of message waits: no further query reaches Knot, logged as abandoned', async () => {
    await closeWhileEomWaits(evaluating, 'close.cancel.test', { name: 'b1.hang.test', queriesBefore: 1, next: 'b2.hang.test' });
  });

  test('the same with SPF_CHECK=regex, the sender\'s own record hanging', async () => {
    await closeWhileEomWaits(regex, 'r1.hang.test', { name: 'r1.hang.test', queriesBefore: 0 });
  });

  test('the assessment deadline fires while slow lookups go on: fail-open verdict at the deadline, no query after it', async (t) => {
    const m = evaluating;
    const start = await counts(m);
    const c = await connectClient(m, DEADLINE_MS + 20_000);
    await c.openSession();
    await mailRcpt(c, 'u@deadline.cancel.test', 'QD1');
    const final = (await c.eom({ i: 'QD1' })).final;
    const sentAtDeadline = (await sentBy(m)) - start.sent;
    assert.deepEqual(final, { type: 'continue' }, 'fail open: the message goes on');

    const id = await messageIdOf(m, 'deadline.cancel.test');
    const reason = `no verdict within ${DEADLINE_MS} ms`;
    const judged = await m.daemon.waitFor((l) => l['conn'] === id && l.msg === 'judged', 5000, 'the judged line');
    assert.equal(judged['action'], 'pass');
    assert.equal(judged['result'], 'temperror');
    assert.equal(judged['reason'], reason);
    assert.ok(Number(judged['latencyMs']) >= DEADLINE_MS, `verdict at the deadline, not before (latencyMs ${String(judged['latencyMs'])})`);
    assert.ok(
      linesOf(m, id).some((l) => l.level === 'warn' && l.msg === `SPF policy of 5321_from_domain=deadline.cancel.test not judged (fail open): ${reason}`),
      'the fail-open warning names the deadline',
    );

    // Past the pending lookup's answer and a whole lookup budget: nothing more was sent.
    await sleep(DNS_TIMEOUT_MS + SLOW_ANSWER_MS + MARGIN_MS);
    const end = await counts(m);
    const slowAsked = hop.count('.slow.test');
    assert.equal(end.sent - start.sent, sentAtDeadline, 'the daemon sent no query after the deadline');
    assert.equal(end.knot - start.knot, sentAtDeadline, 'Knot received exactly the queries sent before the deadline');
    // An answer starts the next query within the same turn of the event loop, so the deadline (a
    // timer) always finds one lookup pending: it must be dropped, not left to finish.
    assert.equal(end.aborted - start.aborted, 1, 'the lookup pending at the deadline was dropped (dns_lookups_aborted_total)');
    assert.equal(end.timeouts - start.timeouts, 0, 'every lookup was answered within DNS_TIMEOUT_MS: the deadline came from slowness, not timeouts');
    assert.ok(slowAsked >= 5, `lookups were going on until the deadline (${slowAsked} slow queries)`);
    assert.ok(slowAsked < SLOW_LOOKUPS, `work remained that the deadline cancelled (${slowAsked} of ${SLOW_LOOKUPS} slow lookups asked)`);
    t.diagnostic(`verdict after ${String(judged['latencyMs'])} ms; ${slowAsked} of ${SLOW_LOOKUPS} slow lookups asked, ${sentAtDeadline} queries in all, none after the deadline`);

    c.quit();
    await c.waitClosed();
    assert.equal(m.daemon.proc.exitCode, null);
  });
});
