// DMARC_CHECK=on end to end: a real Postfix hands mail to two sos-milter daemons (reject mode
// for clients from 127.0.0.1, test mode for 127.0.0.2 via smtpd_milter_maps) that ask a real
// Knot for SPF and DMARC records. The envelope sender's SPF passes in every case; what differs
// is the From: field: a p=reject domain nothing aligns with is refused 550 (reject mode) or
// delivered with `X-SOS-Milter: failed DMARC-expectation` (test mode); an aligned one passes
// untagged.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startDaemon, type Daemon } from '../../src/daemon/run.js';
import { knotSkipReason, startKnot, type KnotInstance } from '../support/knot.js';
import { postfixUnavailableReason, startPostfix, withLogTails, jsonTail, type PostfixInstance } from '../support/postfix.js';
import { openSmtpSession, SmtpClient } from '../support/smtp-client.js';
import { startSmtpSink, type DeliveredMessage, type SmtpSink } from '../support/smtp-sink.js';
import { E2E_ZONES_DIR } from '../support/daemon-process.js';

const skip = postfixUnavailableReason() ?? knotSkipReason() ?? false;
const TEST_MODE_CLIENT = '127.0.0.2';
const DELIVERY_TIMEOUT_MS = 15_000;

function headersOf(m: DeliveredMessage, name: string): string[] {
  const head = (m.text.split('\r\n\r\n')[0] ?? '').replace(/\r\n[ \t]/g, ' ');
  return head
    .split('\r\n')
    .filter((l) => l.toLowerCase().startsWith(name.toLowerCase() + ':'))
    .map((l) => l.slice(name.length + 1).trim());
}

const bySubject =
  (subject: string) =>
  (m: DeliveredMessage): boolean =>
    headersOf(m, 'Subject')[0] === subject;

const message = (from: string, subject: string): string => `Subject: ${subject}\r\nFrom: ${from}\r\n\r\nHello.\r\n`;

describe('DMARC_CHECK=on end to end through Postfix and Knot', { skip, timeout: 90_000 }, () => {
  let knot: KnotInstance;
  let sink: SmtpSink;
  let postfix: PostfixInstance;
  let rejectDaemon: Daemon;
  let testDaemon: Daemon;
  const rejectLog: Record<string, unknown>[] = [];
  const testLog: Record<string, unknown>[] = [];

  async function daemon(mode: string, log: Record<string, unknown>[]): Promise<{ daemon: Daemon; port: number }> {
    const d = await startDaemon(
      {
        DNS_SERVERS: `127.0.0.1:${knot.port}`,
        DNS_TIMEOUT_MS: '1000',
        SPF_REGEX: String.raw`v=spf1 .*include:_spf\.esp\.e2e\.test`,
        MILTER_MODE: mode,
        MILTER_SOCKET: 'inet:0@127.0.0.1',
        LOG_FORMAT: 'json',
        LOG_LEVEL: 'info',
        DMARC_CHECK: 'on',
      },
      { logDestination: { write: (line: string) => log.push(JSON.parse(line) as Record<string, unknown>) } },
    );
    const bound = d.server.address();
    assert.ok(bound && bound.kind === 'inet');
    return { daemon: d, port: bound.port };
  }

  before(async () => {
    knot = await startKnot({ zonesDir: E2E_ZONES_DIR });
    sink = await startSmtpSink();
    const r = await daemon('reject', rejectLog);
    rejectDaemon = r.daemon;
    const t = await daemon('test', testLog);
    testDaemon = t.daemon;
    postfix = await startPostfix({
      milter: `inet:127.0.0.1:${r.port}`,
      relayPort: sink.port,
      milterMaps: { [`${TEST_MODE_CLIENT}/32`]: `inet:127.0.0.1:${t.port}` },
      milterDefaultAction: 'tempfail',
    });
  });

  after(async () => {
    await postfix?.stop();
    await rejectDaemon?.stop();
    await testDaemon?.stop();
    await sink?.close();
    await knot?.close();
  });

  const withLogs = (body: () => Promise<void>): Promise<void> =>
    withLogTails(body, [
      ['postfix maillog', () => postfix.logTail(30)],
      ['reject daemon', () => jsonTail(rejectLog, 8)],
      ['test daemon', () => jsonTail(testLog, 8)],
    ]);

  const session = (localAddress?: string): Promise<SmtpClient> => openSmtpSession(postfix.smtpPort, 'submit.client.test', { localAddress });

  test('reject mode: a p=reject From: domain nothing aligns with is refused 550 at end of DATA; an aligned one is delivered untagged', () =>
    withLogs(async () => {
      const c = await session();
      const unaligned = await c.sendMail('bounce@pass.e2e.test', ['bob@example.net'], message('Alice <alice@dmarc-reject.e2e.test>', 'dmarc reject unaligned'));
      const aligned = await c.sendMail('bounce@dmarc-aligned.e2e.test', ['bob@example.net'], message('alice@dmarc-aligned.e2e.test', 'dmarc reject aligned'));
      await c.quit();

      assert.equal(unaligned.mail.code, 250);
      assert.equal(unaligned.data?.code, 550, unaligned.data?.text);
      assert.match(
        unaligned.data?.text ?? '',
        /^550 5\.7\.1 sos-milter: [a-z0-9]{8} DMARC policy \(reject\) of 5322_from_domain=dmarc-reject\.e2e\.test is not met: neither SPF nor DKIM will align! The From: domain's DMARC policy would not let this message through\.$/,
      );
      assert.equal(aligned.data?.code, 250, aligned.data?.text);
      const delivered = await sink.waitFor(bySubject('dmarc reject aligned'), DELIVERY_TIMEOUT_MS);
      assert.deepEqual(headersOf(delivered, 'X-SOS-Milter'), []);
      assert.equal(sink.messages.find(bySubject('dmarc reject unaligned')), undefined);
      assert.ok(rejectLog.some((l) => l['dmarc'] === 'violation' && l['action'] === 'reject'));
    }));

  test('test mode: the unaligned message is delivered tagged `failed DMARC-expectation`; the aligned one untagged', () =>
    withLogs(async () => {
      const c = await session(TEST_MODE_CLIENT);
      const unaligned = await c.sendMail('bounce@pass.e2e.test', ['bob@example.net'], message('alice@dmarc-reject.e2e.test', 'dmarc test unaligned'));
      const aligned = await c.sendMail('bounce@dmarc-aligned.e2e.test', ['bob@example.net'], message('alice@dmarc-aligned.e2e.test', 'dmarc test aligned'));
      await c.quit();
      assert.equal(unaligned.data?.code, 250, unaligned.data?.text);
      assert.equal(aligned.data?.code, 250, aligned.data?.text);

      const tagged = await sink.waitFor(bySubject('dmarc test unaligned'), DELIVERY_TIMEOUT_MS);
      assert.deepEqual(headersOf(tagged, 'X-SOS-Milter'), ['failed DMARC-expectation']);
      const clean = await sink.waitFor(bySubject('dmarc test aligned'), DELIVERY_TIMEOUT_MS);
      assert.deepEqual(headersOf(clean, 'X-SOS-Milter'), []);
    }));
});
