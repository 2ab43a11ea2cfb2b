// A verdict that takes longer than the MTA's milter reply timeout: a real Postfix with
// milter_content_timeout = 2s, the daemon in reject mode asking Knot through a hop that returns
// the senders' SPF records only after SLOW_ANSWER_MS. With progress packets (every 500 ms) Postfix
// keeps waiting and the message gets its verdict (550 / delivered); the same daemon with
// MILTER_PROGRESS_INTERVAL_MS=0 shows the timeout is real: Postfix gives up, applies its
// milter_default_action (tempfail, 451) and the daemon logs the message as abandoned.
// One Postfix, two daemons chosen by client address (smtpd_milter_maps).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startDaemon, type Daemon } from '../../src/daemon/run.js';
import { E2E_ZONES_DIR } from '../support/daemon-process.js';
import { startDnsPathProxy, type DnsPathProxy } from '../support/dns-path-proxy.js';
import { knotSkipReason, startKnot, type KnotInstance } from '../support/knot.js';
import { postfixUnavailableReason, startPostfix, withLogTails, jsonTail, type PostfixInstance } from '../support/postfix.js';
import { SmtpClient } from '../support/smtp-client.js';
import { startSmtpSink, type DeliveredMessage, type SmtpSink } from '../support/smtp-sink.js';
import { waitFor } from '../support/wait.js';

const skip = postfixUnavailableReason() ?? knotSkipReason() ?? false;

/** Postfix's reply timeout for end of message, far below the verdict's wait. */
const CONTENT_TIMEOUT = '2s';
/**
 * How late the hop returns a slow sender's record. The verdict comes this long after MAIL; the
 * SMTP client reaches end of data within a few ms on loopback, so Postfix waits about three
 * times its content timeout, enough that a loaded machine cannot make the control case pass.
 */
const SLOW_ANSWER_MS = 6000;
/** Above SLOW_ANSWER_MS: the slow answer to the first query counts (the deadline is 4x this). */
const DNS_TIMEOUT_MS = 10_000;
const PROGRESS_MS = 500;
const CONTROL_CLIENT = '127.0.0.2';
const SPF_REGEX = String.raw`v=spf1 (?P<before>.*)include:_spf\.esp\.e2e\.test(?:\s|$)`;
const REJECT_RE = /^550 5\.7\.1 sos-milter: [a-z0-9]{8} SPF-record \(-all\) of 5321_from_domain=foreign\.e2e\.test /;

type Line = Record<string, unknown>;

function bySubject(subject: string): (m: DeliveredMessage) => boolean {
  return (m) => m.text.includes(`\r\nSubject: ${subject}\r\n`) || m.text.startsWith(`Subject: ${subject}\r\n`);
}

const body = (subject: string): string => `Subject: ${subject}\r\nFrom: someone@example.org\r\n\r\nHello.\r\n`;

describe('progress packets keep Postfix waiting for a slow verdict', { skip, timeout: 90_000 }, () => {
  let knot: KnotInstance;
  let hop: DnsPathProxy;
  let sink: SmtpSink;
  let postfix: PostfixInstance;
  let withProgress: Daemon;
  let withoutProgress: Daemon;
  const progressLog: Line[] = [];
  const controlLog: Line[] = [];

  async function daemon(progressMs: number, log: Line[]): Promise<Daemon> {
    return startDaemon(
      {
        MILTER_MODE: 'reject',
        MILTER_SOCKET: 'inet:0@127.0.0.1',
        MILTER_PROGRESS_INTERVAL_MS: String(progressMs),
        DNS_SERVERS: `${hop.host}:${hop.port}`,
        DNS_TIMEOUT_MS: String(DNS_TIMEOUT_MS),
        SPF_REGEX,
        LOG_LEVEL: 'info',
        LOG_FORMAT: 'json',
      },
      { logDestination: { write: (line: string) => log.push(JSON.parse(line) as Line) } },
    );
  }

  function port(d: Daemon): number {
    const a = d.server.address();
    assert.ok(a && a.kind === 'inet');
    return a.port;
  }

  before(async () => {
    knot = await startKnot({ zonesDir: E2E_ZONES_DIR });
    hop = await startDnsPathProxy({
      upstream: { host: knot.host, port: knot.port },
      pathFor: (name) => (name === 'foreign.e2e.test' || name === 'pass.e2e.test' ? { delayMs: SLOW_ANSWER_MS } : undefined),
    });
    sink = await startSmtpSink();
    withProgress = await daemon(PROGRESS_MS, progressLog);
    withoutProgress = await daemon(0, controlLog);
    postfix = await startPostfix({
      milter: `inet:127.0.0.1:${port(withProgress)}`,
      milterMaps: { [`${CONTROL_CLIENT}/32`]: `inet:127.0.0.1:${port(withoutProgress)}` },
      relayPort: sink.port,
      mainCfExtra: { milter_content_timeout: CONTENT_TIMEOUT },
      milterDefaultAction: 'tempfail',
    });
  });

  after(async () => {
    await postfix?.stop();
    await withProgress?.stop();
    await withoutProgress?.stop();
    await sink?.close();
    await hop?.close();
    await knot?.close();
  });

  const withLogs = (body: () => Promise<void>): Promise<void> =>
    withLogTails(body, [
      ['postfix maillog', () => postfix.logTail(30)],
      ['daemon with progress', () => jsonTail(progressLog, 8)],
      ['daemon without progress', () => jsonTail(controlLog, 8)],
    ]);

  test('with progress: a violator is refused with the 550 verdict, a passing sender delivered, both long after the content timeout', () =>
    withLogs(async () => {
      const c = await SmtpClient.connect(postfix.smtpPort, { timeoutMs: 30_000 });
      assert.equal((await c.ehlo('submit.client.test')).code, 250);
      const [foreign, pass] = [
        await c.sendMail('news@foreign.e2e.test', ['bob@example.net'], body('progress foreign')),
        await c.sendMail('news@pass.e2e.test', ['bob@example.net'], body('progress pass')),
      ];
      await c.quit();
      assert.match(foreign.data?.text ?? '', REJECT_RE, 'the verdict, not Postfix\'s timeout action');
      assert.equal(pass.data?.code, 250, pass.data?.text);
      const delivered = await sink.waitFor(bySubject('progress pass'), 15_000);
      assert.equal(delivered.mailFrom, 'news@pass.e2e.test');

      const judged = progressLog.filter((l) => l['msg'] === 'judged').map((l) => [l['domain'], l['action']]);
      assert.deepEqual(judged, [
        ['foreign.e2e.test', 'reject'],
        ['pass.e2e.test', 'pass'],
      ]);
      // Both records came through the slow hop: the verdicts waited for them.
      assert.ok(hop.count('foreign.e2e.test') >= 1 && hop.count('pass.e2e.test') >= 1, JSON.stringify(hop.forwarded));
      assert.ok(withProgress.server.stats().progressPackets >= 2, `progress packets sent: ${withProgress.server.stats().progressPackets}`);
      assert.equal(withProgress.server.stats().messages, 2);
    }));

  test('without progress (the control): Postfix gives up at its content timeout and applies milter_default_action', () =>
    withLogs(async () => {
      const c = await SmtpClient.connect(postfix.smtpPort, { localAddress: CONTROL_CLIENT, timeoutMs: 30_000 });
      assert.equal((await c.ehlo('submit.client.test')).code, 250);
      const foreign = await c.sendMail('news@foreign.e2e.test', ['bob@example.net'], body('control foreign'));
      await c.quit();
      assert.equal(foreign.data?.code, 451, foreign.data?.text);
      assert.match(foreign.data?.text ?? '', /^451 4\.7\.1 /);
      assert.equal(withoutProgress.server.stats().progressPackets, 0);
      const abandoned = await waitFor(() => controlLog.find((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('abandoned by the MTA')), { timeoutMs: 10_000, intervalMs: 50, what: 'the log line abandoned by the MTA' });
      assert.equal(abandoned['domain'], 'foreign.e2e.test');
      assert.ok(!controlLog.some((l) => l['msg'] === 'judged'), 'no verdict was given');
    }));
});
