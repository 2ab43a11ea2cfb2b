// Rewrite mode end to end: a real Postfix hands mail to the daemon (MILTER_MODE=rewrite, SPF
// from a private Knot), the rewritten envelope sender reaches a sink SMTP server; SPF for the
// relay's address against the rewritten sender passes (our evaluator, and pyspf when
// installed); a bounce to the SRS address reaches the original sender through the daemon's
// srsdecode socketmap (recipient_canonical_maps); forged and expired SRS addresses are refused
// at RCPT, as unknown users of the SRS domain.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { startDaemon, type Daemon } from '../../src/daemon/run.js';
import { Srs } from '../../src/srs/index.js';
import { knotSkipReason, startKnot, type KnotInstance } from '../support/knot.js';
import { freePort, postfixUnavailableReason, startPostfix, withLogTails, jsonTail, type PostfixInstance } from '../support/postfix.js';
import { openSmtpSession, SmtpClient } from '../support/smtp-client.js';
import { startSmtpSink, type DeliveredMessage, type SmtpSink } from '../support/smtp-sink.js';
import { MAIN_JS, repoPath } from '../support/paths.js';

const skip = postfixUnavailableReason() ?? knotSkipReason() ?? false;
const SRS_DOMAIN = 'bounce.srs.test';
const SECRET = 'postfix-srs-test-secret-0123';
const DELIVERY_TIMEOUT_MS = 15_000;
const DAY_MS = 86_400_000;
const PYTHON = '/usr/bin/python3';

/** pyspf (Debian python3-spf) asking Knot: an SPF implementation independent of ours, or why it cannot run. */
function pyspf(knotPort: number, ip: string, sender: string): { result?: string; skip?: string } {
  if (!existsSync(PYTHON)) return { skip: `${PYTHON} not installed` };
  const script = [
    'import sys',
    'try:',
    '    import DNS, spf',
    'except ImportError as e:',
    '    print("SKIP " + str(e)); sys.exit(0)',
    "DNS.defaults['server'] = ['127.0.0.1']",
    "DNS.defaults['port'] = int(sys.argv[1])",
    'print(spf.check2(i=sys.argv[2], s=sys.argv[3], h="relay.test")[0])',
  ].join('\n');
  const r = spawnSync(PYTHON, ['-c', script, String(knotPort), ip, sender], { encoding: 'utf8', timeout: 20_000 });
  const out = (r.stdout ?? '').trim();
  if (out.startsWith('SKIP')) return { skip: `pyspf not installed (${out}); apt-get install python3-spf` };
  assert.equal(r.status, 0, r.stderr);
  return { result: out };
}

function headersOf(m: DeliveredMessage, name: string): string[] {
  const head = (m.text.split('\r\n\r\n')[0] ?? '').replace(/\r\n[ \t]/g, ' ');
  return head
    .split('\r\n')
    .filter((l) => l.toLowerCase().startsWith(name.toLowerCase() + ':'))
    .map((l) => l.slice(name.length + 1).trim());
}

const bySubject = (subject: string) => (m: DeliveredMessage) => headersOf(m, 'Subject')[0] === subject;

describe('rewrite mode (SRS) through Postfix and Knot', { skip, timeout: 90_000 }, () => {
  let knot: KnotInstance;
  let sink: SmtpSink;
  let postfix: PostfixInstance;
  let daemon: Daemon;
  const log: Record<string, unknown>[] = [];
  const srs = new Srs({ secrets: [SECRET], domain: SRS_DOMAIN, maxAgeDays: 21 });

  before(async () => {
    knot = await startKnot({ zonesDir: repoPath('test/data/dns/srs') });
    sink = await startSmtpSink();
    const socketmapPort = await freePort();
    daemon = await startDaemon(
      {
        MILTER_MODE: 'rewrite',
        MILTER_SOCKET: 'inet:0@127.0.0.1',
        SPF_CHECK: 'evaluate',
        OUTBOUND_IPS: '127.0.0.1',
        DNS_SERVERS: `127.0.0.1:${knot.port}`,
        DNS_TIMEOUT_MS: '1000',
        SRS_DOMAIN,
        SRS_SECRETS: `${SECRET},an-older-secret-still-valid`,
        SRS_SOCKETMAP_LISTEN: `127.0.0.1:${socketmapPort}`,
        LOG_FORMAT: 'json',
        LOG_LEVEL: 'info',
      },
      { logDestination: { write: (line: string) => log.push(JSON.parse(line) as Record<string, unknown>) } },
    );
    const bound = daemon.server.address();
    assert.ok(bound && bound.kind === 'inet');
    postfix = await startPostfix({
      milter: `inet:127.0.0.1:${bound.port}`,
      relayPort: sink.port,
      milterDefaultAction: 'tempfail',
      mainCfExtra: {
        // The SRS domain is a virtual alias domain here: an address the socketmap does not map
        // back, and that is no alias, is an unknown user (550 5.1.1 at RCPT).
        virtual_alias_domains: SRS_DOMAIN,
        virtual_alias_maps: `inline:{ postmaster@${SRS_DOMAIN}=postmaster@fine.srs.test }`,
        recipient_canonical_maps: `socketmap:inet:127.0.0.1:${socketmapPort}:srsdecode`,
        recipient_canonical_classes: 'envelope_recipient',
      },
    });
  });

  after(async () => {
    await postfix?.stop();
    await daemon?.stop();
    await sink?.close();
    await knot?.close();
  });

  const withLogs = (body: () => Promise<void>): Promise<void> =>
    withLogTails(body, [
      ['postfix maillog', () => postfix.logTail(30)],
      ['daemon', () => jsonTail(log, 12)],
    ]);

  const session = (): Promise<SmtpClient> => openSmtpSession(postfix.smtpPort, 'submit.client.test');

  const body = (subject: string): string => `Subject: ${subject}\r\nFrom: news@foreign.srs.test\r\n\r\nHello.\r\n`;
  let srsAddress = '';

  test('a foreign -all sender leaves with MAIL FROM:<SRS0=...@SRS_DOMAIN> and the header; a passing one untouched', () =>
    withLogs(async () => {
      const c = await session();
      const rewritten = await c.sendMail('news+list=x@foreign.srs.test', ['bob@example.net'], body('srs rewritten'));
      const untouched = await c.sendMail('news@fine.srs.test', ['bob@example.net'], body('srs untouched'));
      await c.quit();
      assert.equal(rewritten.data?.code, 250, rewritten.data?.text);
      assert.equal(untouched.data?.code, 250, untouched.data?.text);

      const m = await sink.waitFor(bySubject('srs rewritten'), DELIVERY_TIMEOUT_MS);
      assert.match(m.mailFrom, /^SRS0=[A-Za-z0-9+/]{4}=[A-Z2-7]{2}=foreign\.srs\.test=news\+list=x@bounce\.srs\.test$/);
      assert.deepEqual(headersOf(m, 'X-SOS-Milter'), ['rewritten']);
      srsAddress = m.mailFrom;
      const plain = await sink.waitFor(bySubject('srs untouched'), DELIVERY_TIMEOUT_MS);
      assert.equal(plain.mailFrom, 'news@fine.srs.test');
      assert.deepEqual(headersOf(plain, 'X-SOS-Milter'), []);

      const line = log.find((l) => typeof l.msg === 'string' && l.msg.endsWith('Envelope sender rewritten.'));
      assert.ok(line, 'one line per rewrite');
      assert.match(String(line.msg), /^mode=rewrite client=/);
      assert.equal(line.sender, 'news+list=x@foreign.srs.test');
      assert.equal(line.srs, srsAddress);
      assert.match(String(line.queueId), /^[0-9A-Za-z]+$/);
      assert.ok(!JSON.stringify(log).includes(SECRET), 'the secret is never logged');
      // The start-up check of SRS_DOMAIN's SPF record (an RFC 7208 check of OUTBOUND_IPS).
      assert.ok(log.some((l) => l.msg === `SRS_DOMAIN=${SRS_DOMAIN}: its SPF record authorizes the relays`), 'start-up SPF check of SRS_DOMAIN');
    }));

  test('SPF for the relay against the rewritten sender passes: our evaluator and pyspf', (t) =>
    withLogs(async () => {
      assert.ok(srsAddress, 'needs the rewritten sender of the first test');
      const ours = spawnSync(process.execPath, [MAIN_JS, 'spf', '127.0.0.1', srsAddress], {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', DNS_SERVERS: `127.0.0.1:${knot.port}` },
        encoding: 'utf8',
        timeout: 20_000,
      });
      assert.equal(ours.status, 0, ours.stdout + ours.stderr);
      assert.match(ours.stdout, /^SPF pass for ip=127\.0\.0\.1/);
      // And the original sender fails: the rewrite is what makes it pass.
      const original = spawnSync(process.execPath, [MAIN_JS, 'spf', '127.0.0.1', 'news@foreign.srs.test'], {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', DNS_SERVERS: `127.0.0.1:${knot.port}` },
        encoding: 'utf8',
        timeout: 20_000,
      });
      assert.equal(original.status, 1, original.stdout);
      const independent = pyspf(knot.port, '127.0.0.1', srsAddress);
      if (independent.skip) {
        t.diagnostic(`independent check skipped: ${independent.skip}`);
        return;
      }
      assert.equal(independent.result, 'pass');
      assert.equal(pyspf(knot.port, '127.0.0.1', 'news@foreign.srs.test').result, 'fail');
    }));

  test('a bounce to the SRS address reaches the original sender through the socketmap', () =>
    withLogs(async () => {
      assert.ok(srsAddress, 'needs the rewritten sender of the first test');
      const c = await session();
      // Received folded to lower case, as some receivers do: still decodes.
      const bounce = await c.sendMail('', [srsAddress.toLowerCase()], 'Subject: srs bounce\r\nFrom: MAILER-DAEMON@example.net\r\n\r\nUndeliverable.\r\n');
      await c.quit();
      assert.deepEqual(bounce.rcpt.map((r) => r.code), [250], bounce.rcpt[0]?.text);
      assert.equal(bounce.data?.code, 250, bounce.data?.text);
      const m = await sink.waitFor(bySubject('srs bounce'), DELIVERY_TIMEOUT_MS);
      assert.equal(m.mailFrom, '');
      assert.deepEqual(m.rcptTo, ['news+list=x@foreign.srs.test']);
    }));

  test('forged, expired and malformed SRS addresses are refused at RCPT', () =>
    withLogs(async () => {
      const made = srs.forward('victim@elsewhere.test');
      assert.ok(made.ok);
      const forged = made.address.replace(/^SRS0=(....)/, (_all, hash: string) => `SRS0=${hash === 'AAAA' ? 'BBBB' : 'AAAA'}`);
      const old = srs.forward('victim@elsewhere.test', Date.now() - 30 * DAY_MS);
      assert.ok(old.ok);
      const c = await session();
      assert.equal((await c.mail('')).code, 250);
      for (const rcpt of [forged, old.address, `SRS0=xx@${SRS_DOMAIN}`, `SRS1=abcd=host==x@${SRS_DOMAIN}`]) {
        const reply = await c.rcpt(rcpt);
        assert.equal(reply.code, 550, `${rcpt}: ${reply.text}`);
        assert.match(reply.text, /5\.1\.1/);
      }
      await c.quit();
      assert.equal(sink.messages.filter((m) => m.rcptTo.includes('victim@elsewhere.test')).length, 0, 'never relayed');
    }));
});
