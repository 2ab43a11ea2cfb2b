// The milter library behind a real Postfix (private instance on loopback): mail submitted over
// SMTP, verdicts of a test application seen as SMTP replies, added headers seen in the delivered
// message. One Postfix for the whole file; the application's rules change per test.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MilterServer } from '../../src/milter/index.js';
import { postfixUnavailableReason, startPostfix, withLogTails, type PostfixInstance } from '../support/postfix.js';
import { openSmtpSession, SmtpClient } from '../support/smtp-client.js';
import { startSmtpSink, type DeliveredMessage, type SmtpSink } from '../support/smtp-sink.js';
import { createTestMilterApp, type TestMilterApp } from '../support/test-milter-app.js';

const skip = postfixUnavailableReason() ?? false;
const DELIVERY_TIMEOUT_MS = 15_000;
// Clients from this address get the milter on the UNIX socket (smtpd_milter_maps).
const UNIX_CLIENT = '127.0.0.2';
const ROUTED_DOMAIN = 'routed.example';

/** Unfolded value of the first header `name` in a delivered message. */
function headerOf(m: DeliveredMessage, name: string): string | undefined {
  const head = m.text.split('\r\n\r\n')[0] ?? '';
  const unfolded = head.replace(/\r\n[ \t]/g, ' ');
  const line = unfolded.split('\r\n').find((l) => l.toLowerCase().startsWith(name.toLowerCase() + ':'));
  return line?.slice(name.length + 1).trim();
}

function queueIdOf(reply: { text: string }): string {
  const m = /queued as ([0-9A-Za-z]+)/.exec(reply.text);
  assert.ok(m, `no queue id in ${JSON.stringify(reply.text)}`);
  return m[1]!;
}

describe('Postfix with the milter library', { skip }, () => {
  let app: TestMilterApp;
  let unixApp: TestMilterApp;
  let inet: MilterServer;
  let unix: MilterServer;
  let sink: SmtpSink;
  let postfix: PostfixInstance;
  let socketDir = '';

  before(async () => {
    app = createTestMilterApp();
    unixApp = createTestMilterApp();
    inet = new MilterServer(app.app, { socket: 'inet:0@127.0.0.1' });
    const bound = await inet.listen();
    assert.equal(bound.kind, 'inet');
    // smtpd runs as the postfix user: the socket's directory must be searchable for it.
    socketDir = mkdtempSync(join(tmpdir(), 'sos-milter-sock-'));
    chmodSync(socketDir, 0o755);
    const socketPath = join(socketDir, 'milter.sock');
    unix = new MilterServer(unixApp.app, { socket: `unix:${socketPath}` });
    await unix.listen();
    sink = await startSmtpSink();
    postfix = await startPostfix({
      milter: `inet:127.0.0.1:${bound.kind === 'inet' ? bound.port : 0}`,
      relayPort: sink.port,
      milterMaps: { [`${UNIX_CLIENT}/32`]: `unix:${socketPath}` },
      mainCfExtra: { transport_maps: `inline:{ ${ROUTED_DOMAIN}=relay:127.0.0.1:${sink.port} }` },
    });
  });

  after(async () => {
    await postfix?.stop();
    await sink?.close();
    await inet?.close({ deadlineMs: 1000 });
    await unix?.close({ deadlineMs: 1000 });
    if (socketDir) rmSync(socketDir, { recursive: true, force: true });
  });

  /** Runs a test body; on failure the Postfix log is appended to the error. */
  const withLog = (body: () => Promise<void>): Promise<void> => withLogTails(body, [['postfix maillog', () => postfix.logTail(30)]]);

  const session = (localAddress?: string): Promise<SmtpClient> => openSmtpSession(postfix.smtpPort, 'client.example.test', { localAddress });

  test('an accepted message is delivered with the headers added at end of message; macros arrive with Postfix defaults', () =>
    withLog(async () => {
      app.reset();
      const c = await session();
      const r = await c.sendMail('alice@example.org', ['bob@example.net', 'carol@example.com'], 'Subject: hello\r\n\r\nHello.\r\n.leading dot\r\n');
      await c.quit();
      assert.equal(r.mail.text, '250 2.1.0 Ok');
      assert.deepEqual(r.rcpt.map((x) => x.code), [250, 250]);
      assert.equal(r.data?.code, 250, r.data?.text);
      const qid = queueIdOf(r.data!);

      const m = await sink.waitFor((d) => headerOf(d, 'X-Test-Queue-Id') === qid, DELIVERY_TIMEOUT_MS);
      assert.equal(m.mailFrom, 'alice@example.org');
      assert.deepEqual([...m.rcptTo].sort(), ['bob@example.net', 'carol@example.com']);
      assert.equal(headerOf(m, 'Subject'), 'hello');
      assert.equal(headerOf(m, 'X-Test-Milter'), 'msg=1');
      assert.equal(headerOf(m, 'X-Test-Client'), '127.0.0.1');
      // The added headers come after the message's own headers, in the order they were added.
      assert.match(m.text, /\r\nX-Test-Milter: msg=1\r\nX-Test-Queue-Id: \S+\r\nX-Test-Client: 127\.0\.0\.1\r\nX-Test-Rcpt-Host: .*\r\n\r\nHello\.\r\n\.leading dot\r\n$/);

      const [s] = app.sessions;
      assert.ok(s, 'the milter saw the SMTP session');
      assert.equal(app.sessions.length, 1);
      // CONNECT packet: smtpd_peername_lookup = no, so the name is "[addr]".
      assert.equal(s.connect?.hostname, '[127.0.0.1]');
      assert.equal(s.connect?.family, 'inet');
      assert.equal(s.connect?.address, '127.0.0.1');
      assert.equal(s.helo, 'client.example.test');
      const cm = s.connect?.macros ?? {};
      assert.equal(cm['client_addr'], '127.0.0.1', 'requested {client_addr} arrives at connect');
      assert.equal(cm['j'], postfix.myhostname);
      assert.equal(cm['v'], `Postfix ${postfix.version}`);
      assert.equal(cm['daemon_addr'], '127.0.0.1');
      assert.equal(cm['_'], 'unknown [127.0.0.1]');

      const [msg] = s.messages;
      assert.ok(msg);
      assert.equal(msg.sender, '<alice@example.org>');
      assert.equal(msg.mailMacros['mail_addr'], 'alice@example.org');
      assert.equal(msg.mailMacros['i'], undefined, 'no queue id at MAIL');
      assert.deepEqual(
        msg.rcpts.map((x) => [x.address, x.macros['rcpt_addr'], x.macros['i']]),
        [
          ['<bob@example.net>', 'bob@example.net', undefined],
          ['<carol@example.com>', 'carol@example.com', qid],
        ],
        'queue id from the second RCPT on',
      );
      // {rcpt_host} is the next hop of address resolution: here the relayhost, verbatim.
      for (const x of msg.rcpts) {
        assert.equal(x.macros['rcpt_host'], `[127.0.0.1]:${sink.port}`);
        assert.equal(x.macros['rcpt_mailer'], 'relay');
      }
      assert.equal(headerOf(m, 'X-Test-Rcpt-Host'), `[127.0.0.1]:${sink.port},[127.0.0.1]:${sink.port}`);
      assert.equal(msg.eomMacros?.['i'], qid, 'queue id at end of message');
      assert.equal(headerOf(m, 'X-Test-Queue-Id'), qid);
      // Postfix shows the milter the headers it added itself, but not its own Received:.
      assert.deepEqual(
        msg.headers.map(([n]) => n),
        ['Subject', 'Message-Id', 'Date', 'From'],
      );
      // Dot-stuffed by the client, unstuffed by Postfix, restuffed to the sink and unstuffed there.
      assert.equal(msg.bodyBytes, Buffer.byteLength('Hello.\r\n.leading dot\r\n'));
    }));

  test('{rcpt_host} is the transport_maps next hop for a routed domain', () =>
    withLog(async () => {
      app.reset();
      const c = await session();
      const r = await c.sendMail('alice@example.org', [`dave@${ROUTED_DOMAIN}`], 'Subject: routed\r\n\r\nx\r\n');
      await c.quit();
      assert.equal(r.data?.code, 250, r.data?.text);
      const m = await sink.waitFor((d) => headerOf(d, 'X-Test-Queue-Id') === queueIdOf(r.data!), DELIVERY_TIMEOUT_MS);
      const rcpt = app.messages()[0]?.rcpts[0];
      // Verbatim from transport_maps (no brackets there, none here), not the relayhost.
      assert.equal(rcpt?.macros['rcpt_host'], `127.0.0.1:${sink.port}`);
      assert.equal(rcpt?.macros['rcpt_mailer'], 'relay');
      assert.equal(headerOf(m, 'X-Test-Rcpt-Host'), `127.0.0.1:${sink.port}`);
    }));

  test('reject, tempfail and custom replies at MAIL reach the client', () =>
    withLog(async () => {
      app.reset();
      const c = await session();
      assert.equal((await c.mail('reject-mail@example.org')).text, '550 5.7.1 Command rejected');
      assert.equal((await c.mail('tempfail-mail@example.org')).text, '451 4.7.1 Service unavailable - try again later');
      // The application's "%" travels doubled and reaches the client single.
      assert.equal((await c.mail('reply-mail@example.org')).text, '550 5.7.1 Sender refused by test milter: 100% sure');
      assert.equal((await c.mail('fine@example.org')).code, 250, 'session still usable after refusals');
      await c.quit();
      assert.deepEqual(
        app.messages().map((m) => m.verdict?.verdict.kind ?? 'none'),
        ['reject', 'tempfail', 'reply', 'none'],
      );
    }));

  test('reject, tempfail and custom multi-line replies at RCPT refuse only that recipient', () =>
    withLog(async () => {
      app.reset();
      const c = await session();
      assert.equal((await c.mail('alice@example.org')).code, 250);
      assert.equal((await c.rcpt('reject-rcpt@example.net')).text, '550 5.7.1 Command rejected');
      assert.equal((await c.rcpt('tempfail-rcpt@example.net')).text, '451 4.7.1 Service unavailable - try again later');
      const multi = await c.rcpt('reply-rcpt@example.net');
      assert.equal(multi.code, 450);
      assert.deepEqual(multi.lines, ['450-4.2.0 Recipient deferred by test milter', '450 4.2.0 please try again later']);
      assert.equal((await c.rcpt('fine@example.net')).code, 250);
      const data = await c.data('Subject: rcpt test\r\n\r\nx\r\n');
      await c.quit();
      assert.equal(data.code, 250, data.text);
      const m = await sink.waitFor((d) => headerOf(d, 'X-Test-Queue-Id') === queueIdOf(data), DELIVERY_TIMEOUT_MS);
      assert.deepEqual(m.rcptTo, ['fine@example.net']);
    }));

  test('reject, tempfail and custom replies at end of message reach the client', () =>
    withLog(async () => {
      app.reset();
      const c = await session();
      const eom = async (subject: string) => (await c.sendMail('alice@example.org', ['bob@example.net'], `Subject: ${subject}\r\n\r\nx\r\n`)).data;
      assert.equal((await eom('reject-eom'))?.text, '550 5.7.1 Command rejected');
      assert.equal((await eom('tempfail-eom'))?.text, '451 4.7.1 Service unavailable - try again later');
      assert.equal((await eom('reply-eom'))?.text, '554 5.7.0 Message refused by test milter (100% sure)');
      assert.deepEqual((await eom('reply-multi-eom'))?.lines, [
        '554-5.7.0 Message refused by test milter',
        '554-5.7.0 second line with 50% off',
        '554 5.7.0 last line',
      ]);
      await c.quit();
      assert.deepEqual(
        app.messages().map((m) => m.added.length),
        [0, 0, 0, 0],
        'no headers added to refused messages',
      );
    }));

  test('several messages in one SMTP session are judged independently', () =>
    withLog(async () => {
      app.reset();
      const c = await session();
      const body = (s: string): string => `Subject: ${s}\r\n\r\nbody ${s}\r\n`;
      const first = await c.sendMail('a@example.org', ['r1@example.net'], body('first'));
      const second = await c.sendMail('b@example.org', ['r2@example.net'], body('second reject-eom'));
      const third = await c.sendMail('reject-mail@example.org', ['r3@example.net'], body('third'));
      const fourth = await c.sendMail('d@example.org', ['r4@example.net'], body('fourth'));
      await c.quit();
      assert.equal(first.data?.code, 250);
      assert.equal(second.data?.text, '550 5.7.1 Command rejected');
      assert.equal(third.mail.text, '550 5.7.1 Command rejected');
      assert.equal(third.data, undefined);
      assert.equal(fourth.data?.code, 250);

      const m1 = await sink.waitFor((d) => headerOf(d, 'X-Test-Queue-Id') === queueIdOf(first.data!), DELIVERY_TIMEOUT_MS);
      const m4 = await sink.waitFor((d) => headerOf(d, 'X-Test-Queue-Id') === queueIdOf(fourth.data!), DELIVERY_TIMEOUT_MS);
      assert.equal(headerOf(m1, 'X-Test-Milter'), 'msg=1');
      assert.equal(headerOf(m4, 'X-Test-Milter'), 'msg=4');
      assert.deepEqual(m4.rcptTo, ['r4@example.net']);
      assert.notEqual(queueIdOf(first.data!), queueIdOf(fourth.data!));
      // One milter connection for the whole SMTP session.
      assert.equal(app.sessions.length, 1);
      assert.deepEqual(
        app.sessions[0]?.messages.map((m) => [m.sender, m.verdict?.stage ?? 'accepted']),
        [
          ['<a@example.org>', 'accepted'],
          ['<b@example.org>', 'eom'],
          ['<reject-mail@example.org>', 'envfrom'],
          ['<d@example.org>', 'accepted'],
        ],
      );
      assert.equal(app.sessions[0]?.messages[2]?.aborted, true, 'Postfix aborts after a MAIL refusal');
    }));

  test('verdicts and added headers also work over a UNIX socket', () =>
    withLog(async () => {
      app.reset();
      unixApp.reset();
      const c = await session(UNIX_CLIENT);
      assert.equal((await c.mail('reject-mail@example.org')).text, '550 5.7.1 Command rejected');
      const r = await c.sendMail('alice@example.org', ['bob@example.net'], 'Subject: via unix\r\n\r\nx\r\n');
      await c.quit();
      assert.equal(r.data?.code, 250, r.data?.text);
      const m = await sink.waitFor((d) => headerOf(d, 'X-Test-Queue-Id') === queueIdOf(r.data!), DELIVERY_TIMEOUT_MS);
      assert.equal(headerOf(m, 'X-Test-Client'), UNIX_CLIENT);
      assert.equal(headerOf(m, 'X-Test-Milter'), 'msg=2');
      assert.equal(unixApp.sessions.length, 1, 'the UNIX-socket milter handled the session');
      assert.equal(unixApp.sessions[0]?.connect?.address, UNIX_CLIENT);
      assert.equal(app.sessions.length, 0, 'the inet milter was not used for this client');
    }));
});
