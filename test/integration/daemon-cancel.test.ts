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
import net from 'node:net';
import { knotSkipReason, startKnot, type KnotInstance } from '../support/knot.js';
import { listeningPort, startDaemonProcess, type DaemonProcess, type LogLine } from '../support/daemon-process.js';
import { MilterTestClient } from '../support/milter-client.js';
import { startDnsPathProxy, type DnsPathProxy } from '../support/dns-path-proxy.js';

// Three attempts per lookup, started DNS_TIMEOUT_MS / 3 apart, each listening until DNS_TIMEOUT_MS.
const DNS_TIMEOUT_MS = 2000;
const ATTEMPTS = 3;
/** src/daemon/policy-parts.ts assessmentTimeoutMs() without LDAP. */
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

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitUntil(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('the daemon cancels abandoned and expired SPF work, counted at Knot', { skip: knotSkipReason() ?? false, timeout: 90_000 }, () => {
  let knot: KnotInstance;
  let hop: DnsPathProxy;
  let daemon: DaemonProcess;
  let port = 0;
  let metricsPort = 0;

  before(async () => {
    knot = await startKnot({ zones: { 'cancel.test': CANCEL_ZONE, 'hang.test': HANG_ZONE, 'slow.test': SLOW_ZONE } });
    hop = await startDnsPathProxy({
      upstream: { host: knot.host, port: knot.port },
      pathFor: (name) => (name.endsWith('.hang.test') ? 'drop' : name.endsWith('.slow.test') ? { delayMs: SLOW_ANSWER_MS } : undefined),
    });
    metricsPort = await freePort();
    daemon = await startDaemonProcess({
      MILTER_SOCKET: 'inet:0@127.0.0.1',
      MILTER_MODE: 'reject',
      SPF_CHECK: 'evaluate',
      OUTBOUND_IPS: OUTBOUND_IP,
      DNS_SERVERS: `${hop.host}:${hop.port}`,
      DNS_TIMEOUT_MS: String(DNS_TIMEOUT_MS),
      METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
      LOG_LEVEL: 'debug',
    });
    port = await listeningPort(daemon);
  });

  after(async () => {
    if (daemon) {
      daemon.proc.kill('SIGTERM');
      const code = await daemon.waitExit(15_000);
      await daemon.kill();
      assert.equal(code, 0, daemon.tail());
    }
    await hop?.close();
    await knot?.close();
  });

  /** Queries Knot has answered (knotc may find no control socket just after start: retried, bounded). */
  async function knotCount(): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await knot.queryCount();
      } catch (e) {
        if (attempt >= 50) throw e;
        await sleep(100);
      }
    }
  }

  /** A counter of the daemon's /metrics (0 while it has no sample). */
  async function metric(series: string): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`sos_milter_${series} `));
    return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
  }
  const sentByDaemon = (): Promise<number> => metric('dns_queries_total{transport="udp"}');

  /** Knot's and the daemon's counts, to measure one case against. */
  async function counts(): Promise<{ knot: number; sent: number; aborted: number; timeouts: number }> {
    return {
      knot: await knotCount(),
      sent: await sentByDaemon(),
      aborted: await metric('dns_lookups_aborted_total'),
      timeouts: await metric('dns_errors_total{kind="timeout"}'),
    };
  }

  const connectClient = (timeoutMs = 10_000): Promise<MilterTestClient> => MilterTestClient.connect({ port, host: '127.0.0.1' }, timeoutMs);

  /** MAIL and RCPT as Postfix sends them (neither is answered: the daemon negotiated NR_MAIL/NR_RCPT). */
  async function mailRcpt(c: MilterTestClient, sender: string, queueId: string): Promise<void> {
    await c.mail(`<${sender}>`, [], { i: queueId, '{mail_addr}': sender });
    await c.rcpt('<rcpt@example.net>', [], { i: queueId, '{rcpt_host}': 'mx.example.net', '{rcpt_addr}': 'rcpt@example.net' });
  }

  /** The message id (`conn`) the daemon gave the message from `domain`, from its debug line at MAIL. */
  async function messageIdOf(domain: string): Promise<unknown> {
    const line = await daemon.waitFor((l) => l.msg === `5321_from_domain=${domain}`, 5000, `the MAIL line of ${domain}`);
    return line['conn'];
  }
  const linesOf = (id: unknown): LogLine[] => daemon.lines.filter((l) => l['conn'] === id);

  /** When the first query for `name` reached Knot (bounded wait). */
  async function firstQueryAt(name: string): Promise<number> {
    await waitUntil(() => hop.count(name) > 0, 10_000, `the first query for ${name}`);
    return hop.forwarded.find((q) => q.name === name)!.at;
  }

  /**
   * After the cancel: past the hanging lookup's last retry moment and its whole budget, the
   * daemon has sent nothing more, Knot has received exactly what was sent before the cancel,
   * and the hanging name got fewer attempts than a lookup left alone makes.
   */
  async function assertNothingAfterCancel(start: Awaited<ReturnType<typeof counts>>, hangName: string, nextName: string, firstAt: number, sentAtCancel: number): Promise<void> {
    await sleep(Math.max(0, firstAt + DNS_TIMEOUT_MS + MARGIN_MS - Date.now()));
    const end = await counts();
    const attemptsBeforeCancel = sentAtCancel - 1; // the sender's record, then the include's attempts
    assert.ok(attemptsBeforeCancel >= 1 && attemptsBeforeCancel < ATTEMPTS, `a retry was still due at the cancel (attempts sent: ${attemptsBeforeCancel})`);
    assert.equal(end.sent - start.sent, sentAtCancel, 'the daemon sent no query after the cancel');
    assert.equal(end.knot - start.knot, sentAtCancel, 'Knot received exactly the queries sent before the cancel');
    assert.equal(hop.count(hangName), attemptsBeforeCancel, `no retry for ${hangName} reached Knot after the cancel`);
    assert.equal(hop.count(nextName), 0, `the next include (${nextName}) was never asked`);
    assert.ok(end.aborted - start.aborted >= 1, 'the pending lookup was abandoned (dns_lookups_aborted_total)');
  }

  test('left alone, a lookup that gets no answer is retried: the control', async () => {
    const start = await counts();
    const c = await connectClient();
    await c.openSession();
    const final = await c.message('<u@control.cancel.test>', 'QC1');
    assert.deepEqual(final, { type: 'continue' }, 'fail open');
    c.quit();
    await c.waitClosed();
    const end = await counts();
    assert.equal(hop.count('c1.hang.test'), ATTEMPTS, 'three attempts for the include that gets no answer');
    assert.equal(hop.count('c2.hang.test'), 0, 'temperror of the first include ends the evaluation');
    assert.equal(end.sent - start.sent, 1 + ATTEMPTS, 'the record, then every attempt');
    assert.equal(end.knot - start.knot, 1 + ATTEMPTS, 'and Knot received them all');
    const id = await messageIdOf('control.cancel.test');
    const judged = await daemon.waitFor((l) => l['conn'] === id && l.msg === 'judged', 5000, 'the judged line');
    assert.equal(judged['action'], 'pass', 'fail open');
    assert.equal(judged['result'], 'temperror');
  });

  test('ABORT while a lookup hangs: no further query for it reaches Knot', async () => {
    const start = await counts();
    const c = await connectClient();
    await c.openSession();
    await mailRcpt(c, 'u@abort.cancel.test', 'QA1');
    const firstAt = await firstQueryAt('a1.hang.test');
    c.abort();
    const id = await messageIdOf('abort.cancel.test');
    await daemon.waitFor((l) => l['conn'] === id && /assessment cancelled/.test(l.msg ?? ''), 5000, 'the ABORT taken');
    const sentAtCancel = (await sentByDaemon()) - start.sent;

    await assertNothingAfterCancel(start, 'a1.hang.test', 'a2.hang.test', firstAt, sentAtCancel);
    assert.ok(!linesOf(id).some((l) => l.msg === 'judged'), `an aborted message is not judged\n${daemon.tail()}`);

    // The SMTP session goes on: the next message on the connection is judged as usual.
    assert.deepEqual(await c.message('<u@ok.cancel.test>', 'QA2'), { type: 'continue' });
    const next = await daemon.waitFor((l) => l.msg === 'judged' && l['domain'] === 'ok.cancel.test', 5000, 'the next message judged');
    assert.equal(next['result'], 'pass');
    c.quit();
    await c.waitClosed();
  });

  test('the MTA closes the connection while end of message waits: no further query reaches Knot, logged as abandoned', async () => {
    const start = await counts();
    const c = await connectClient();
    await c.openSession();
    await mailRcpt(c, 'u@close.cancel.test', 'QB1');
    c.sendMacros('eob', { i: 'QB1' });
    c.send({ type: 'eob', data: Buffer.alloc(0) });
    const firstAt = await firstQueryAt('b1.hang.test');
    // As Postfix and Sendmail do when their milter timeout passes: close, no ABORT.
    c.close();
    const id = await messageIdOf('close.cancel.test');
    const abandoned = await daemon.waitFor((l) => l['conn'] === id && /^abandoned by the MTA/.test(l.msg ?? ''), 5000, 'the abandoned line');
    const sentAtCancel = (await sentByDaemon()) - start.sent;
    assert.equal(abandoned.msg, 'abandoned by the MTA (connection closed by the MTA): no verdict given');
    assert.equal(abandoned['level'] === undefined ? 'info' : abandoned['level'], 'info');

    await assertNothingAfterCancel(start, 'b1.hang.test', 'b2.hang.test', firstAt, sentAtCancel);
    const lines = linesOf(id);
    assert.ok(!lines.some((l) => l.msg === 'judged'), `an abandoned message is never judged\n${JSON.stringify(lines)}`);
    assert.ok(!lines.some((l) => /not judged \(fail open\)/.test(l.msg ?? '')), 'nor reported as failing open');
  });

  test('the assessment deadline fires while slow lookups go on: fail-open verdict at the deadline, no query after it', async () => {
    const start = await counts();
    const c = await connectClient(DEADLINE_MS + 20_000);
    await c.openSession();
    await mailRcpt(c, 'u@deadline.cancel.test', 'QD1');
    const final = (await c.eom({ i: 'QD1' })).final;
    const sentAtDeadline = (await sentByDaemon()) - start.sent;
    assert.deepEqual(final, { type: 'continue' }, 'fail open: the message goes on');

    const id = await messageIdOf('deadline.cancel.test');
    const reason = `no verdict within ${DEADLINE_MS} ms`;
    const judged = await daemon.waitFor((l) => l['conn'] === id && l.msg === 'judged', 5000, 'the judged line');
    assert.equal(judged['action'], 'pass');
    assert.equal(judged['result'], 'temperror');
    assert.equal(judged['reason'], reason);
    assert.ok(Number(judged['latencyMs']) >= DEADLINE_MS, `verdict at the deadline, not before (latencyMs ${String(judged['latencyMs'])})`);
    assert.ok(
      linesOf(id).some((l) => l.msg === `SPF policy of 5321_from_domain=deadline.cancel.test not judged (fail open): ${reason}`),
      'the fail-open line names the deadline',
    );

    // Past the pending lookup's answer and a whole lookup budget: nothing more was sent.
    await sleep(DNS_TIMEOUT_MS + SLOW_ANSWER_MS + MARGIN_MS);
    const end = await counts();
    const slowAsked = hop.count('.slow.test');
    assert.equal(end.sent - start.sent, sentAtDeadline, 'the daemon sent no query after the deadline');
    assert.equal(end.knot - start.knot, sentAtDeadline, 'Knot received exactly the queries sent before the deadline');
    // The answers come within microtasks of the next query going out, so the deadline (a timer)
    // always finds one lookup pending: it must be dropped, not left to finish.
    assert.equal(end.aborted - start.aborted, 1, 'the lookup pending at the deadline was dropped (dns_lookups_aborted_total)');
    assert.equal(end.timeouts - start.timeouts, 0, 'every lookup was answered within DNS_TIMEOUT_MS: the deadline came from slowness, not timeouts');
    assert.ok(slowAsked >= 5, `lookups were going on until the deadline (${slowAsked} slow queries)`);
    assert.ok(slowAsked < SLOW_LOOKUPS, `work remained that the deadline cancelled (${slowAsked} of ${SLOW_LOOKUPS} slow lookups asked)`);

    c.quit();
    await c.waitClosed();
    assert.equal(daemon.proc.exitCode, null);
  });
});
