// The whole product end to end: a real Postfix (default macro settings) hands mail to the
// sos-milter daemon, which asks a real Knot for SPF records and a real slapd for own domains.
// One Postfix, two milters chosen by client address (smtpd_milter_maps):
//  - clients from 127.0.0.1 -> the daemon in reject mode, started in-process (inet socket);
//  - clients from 127.0.0.2 -> the daemon in test mode, started as users run it: a child
//    process `node dist/src/cli/main.js` configured by environment, on a UNIX socket it creates.
// Mail to IGNORED_DOMAIN is routed by transport_maps to a second sink whose next hop
// (`[127.0.0.1]:PORT`) is in the reject daemon's IGNORED_NEXT_HOPS.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon, type Daemon } from '../../src/daemon/run.js';
import { knotSkipReason, startKnot, type KnotInstance } from '../support/knot.js';
import { postfixUnavailableReason, startPostfix, withLogTails, jsonTail, type PostfixInstance } from '../support/postfix.js';
import { slapdUnavailableReason, startSlapd, type SlapdInstance } from '../support/slapd.js';
import { openSmtpSession, SmtpClient } from '../support/smtp-client.js';
import { startSmtpSink, type DeliveredMessage, type SmtpSink } from '../support/smtp-sink.js';
import { repoPath, MAIN_JS } from '../support/paths.js';
import { E2E_ZONES_DIR } from '../support/daemon-process.js';

const skip = postfixUnavailableReason() ?? knotSkipReason() ?? slapdUnavailableReason() ?? false;
const LDIF = repoPath('test/data/ldap/e2e.ldif');

const TEST_MODE_CLIENT = '127.0.0.2';
const IGNORED_DOMAIN = 'ignored-hop.example';
// Python `re` syntax as users write it; the look-alike include must not satisfy it.
const SPF_REGEX = String.raw`v=spf1 (?P<before>.*)include:_spf\.esp\.e2e\.test(?:\s|$)`;
const DELIVERY_TIMEOUT_MS = 15_000;
const START_TIMEOUT_MS = 15_000;

/** Unfolded values of every header `name` in a delivered message. */
function headersOf(m: DeliveredMessage, name: string): string[] {
  const head = (m.text.split('\r\n\r\n')[0] ?? '').replace(/\r\n[ \t]/g, ' ');
  return head
    .split('\r\n')
    .filter((l) => l.toLowerCase().startsWith(name.toLowerCase() + ':'))
    .map((l) => l.slice(name.length + 1).trim());
}

const rejectText = (id: string, domain: string): string =>
  `550 5.7.1 sos-milter: ${id} SPF-record (-all) of 5321_from_domain=${domain} does not permit us to relay this message! Security policy violation!`;
const REJECT_RE = /^550 5\.7\.1 sos-milter: ([a-z0-9]{8}) SPF-record/;

function rejectId(text: string | undefined): string {
  const m = REJECT_RE.exec(text ?? '');
  assert.ok(m, `not a sos-milter reject: ${JSON.stringify(text)}`);
  return m[1]!;
}

function bySubject(subject: string): (m: DeliveredMessage) => boolean {
  return (m) => headersOf(m, 'Subject')[0] === subject;
}

/** A child daemon's stdout, line by line, with a way to wait for a line. */
class LineLog {
  readonly lines: string[] = [];
  private partial = '';
  private waiters: { test: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  push(chunk: string): void {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) {
      this.lines.push(line);
      this.waiters = this.waiters.filter((w) => (w.test(line) ? (w.resolve(line), false) : true));
    }
  }
  waitFor(test: (l: string) => boolean, timeoutMs: number, what: string): Promise<string> {
    const found = this.lines.find(test);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no log line ${what} within ${timeoutMs} ms:\n${this.lines.slice(-20).join('\n')}`)), timeoutMs);
      this.waiters.push({ test, resolve: (l) => (clearTimeout(timer), resolve(l)) });
    });
  }
}

describe('sos-milter end to end through Postfix, Knot and slapd', { skip, timeout: 90_000 }, () => {
  let knot: KnotInstance;
  let slapd: SlapdInstance;
  let sink: SmtpSink;
  let ignoredSink: SmtpSink;
  let postfix: PostfixInstance;
  let rejectDaemon: Daemon;
  const rejectLog: Record<string, unknown>[] = [];
  let child: ChildProcess | undefined;
  let childExit: Promise<number | null>;
  const childLog = new LineLog();
  let socketDir = '';
  let socketPath = '';

  function baseEnv(): Record<string, string> {
    return {
      DNS_SERVERS: `127.0.0.1:${knot.port}`,
      DNS_TIMEOUT_MS: '1000',
      SPF_REGEX,
      LDAP_ENABLED: 'yes',
      LDAP_SERVER_URI: slapd.url,
      LDAP_SEARCH_BASE: `ou=domains,${slapd.suffix}`,
      LDAP_QUERY_FILTER: '(dc=%d)',
      LOG_LEVEL: 'info',
    };
  }

  before(async () => {
    knot = await startKnot({ zonesDir: E2E_ZONES_DIR });
    slapd = await startSlapd({ ldif: LDIF });
    sink = await startSmtpSink();
    ignoredSink = await startSmtpSink({ hostname: 'ignored-sink.test.invalid' });

    rejectDaemon = await startDaemon(
      {
        ...baseEnv(),
        MILTER_MODE: 'Reject',
        MILTER_SOCKET: 'inet:0@127.0.0.1',
        LOG_FORMAT: 'json',
        // Entries trimmed and compared without regard to case; the bracketed form is Postfix's {rcpt_host}.
        IGNORED_NEXT_HOPS: ` Relay.Example.invalid:25 ,  [127.0.0.1]:${ignoredSink.port} `,
      },
      { logDestination: { write: (line: string) => rejectLog.push(JSON.parse(line) as Record<string, unknown>) } },
    );
    const bound = rejectDaemon.server.address();
    assert.ok(bound && bound.kind === 'inet');

    // smtpd runs as the postfix user: the socket's directory must be searchable for it. The
    // daemon itself creates the `run/` folder below and the socket in it.
    socketDir = mkdtempSync(join(tmpdir(), 'sos-e2e-'));
    chmodSync(socketDir, 0o755);
    socketPath = join(socketDir, 'run', 'sos.sock');
    const proc = spawn(process.execPath, [MAIN_JS], {
      // A clean environment: only what a user's unit file would set (and PATH).
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...baseEnv(), MILTER_MODE: 'test', MILTER_SOCKET: socketPath },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    childExit = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
    proc.stdout.setEncoding('utf8').on('data', (d: string) => childLog.push(d));
    proc.stderr.setEncoding('utf8').on('data', (d: string) => childLog.push(d));
    await childLog.waitFor((l) => l.includes('Startup sos-milter@socket:'), START_TIMEOUT_MS, 'Startup');

    postfix = await startPostfix({
      milter: `inet:127.0.0.1:${bound.port}`,
      relayPort: sink.port,
      milterMaps: { [`${TEST_MODE_CLIENT}/32`]: `unix:${socketPath}` },
      mainCfExtra: { transport_maps: `inline:{ ${IGNORED_DOMAIN}=relay:[127.0.0.1]:${ignoredSink.port} }` },
      // A milter that is not there must show as an error, not as silently accepted mail.
      milterDefaultAction: 'tempfail',
    });
  });

  after(async () => {
    await postfix?.stop();
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await childExit;
    }
    await rejectDaemon?.stop();
    await sink?.close();
    await ignoredSink?.close();
    await slapd?.close();
    await knot?.close();
    if (socketDir) rmSync(socketDir, { recursive: true, force: true });
  });

  /** Runs a test body; on failure the Postfix and daemon logs are appended to the error. */
  const withLogs = (body: () => Promise<void>): Promise<void> =>
    withLogTails(body, [
      ['postfix maillog', () => postfix.logTail(30)],
      ['test-mode daemon', () => childLog.lines.slice(-15).join('\n')],
      ['reject daemon', () => jsonTail(rejectLog, 10)],
    ]);

  const session = (localAddress?: string): Promise<SmtpClient> => openSmtpSession(postfix.smtpPort, 'submit.client.test', { localAddress });

  const body = (subject: string): string => `Subject: ${subject}\r\nFrom: someone@example.org\r\n\r\nHello.\r\n`;

  test('reject mode: the SMTP client sees the 550 text at end of DATA; a passing sender is delivered', () =>
    withLogs(async () => {
      const c = await session();
      const foreign = await c.sendMail('news@foreign.e2e.test', ['bob@example.net'], body('e2e reject foreign'));
      const own = await c.sendMail('Info@OWN.e2e.test', ['bob@example.net'], body('e2e reject own'));
      const pass = await c.sendMail('news@pass.e2e.test', ['bob@example.net'], body('e2e reject pass'));
      await c.quit();

      // Refused only at end of DATA: MAIL and RCPT were accepted.
      assert.equal(foreign.mail.code, 250);
      assert.deepEqual(foreign.rcpt.map((r) => r.code), [250]);
      const id = rejectId(foreign.data?.text);
      assert.equal(foreign.data?.text, rejectText(id, 'foreign.e2e.test'));
      // The domain is compared without regard to case and shown in lower case; LDAP is not asked in reject mode.
      const ownId = rejectId(own.data?.text);
      assert.equal(own.data?.text, rejectText(ownId, 'own.e2e.test'));
      assert.notEqual(id, ownId, 'a new id for every message');

      assert.equal(pass.data?.code, 250, pass.data?.text);
      const delivered = await sink.waitFor(bySubject('e2e reject pass'), DELIVERY_TIMEOUT_MS);
      assert.equal(delivered.mailFrom, 'news@pass.e2e.test');
      assert.deepEqual(headersOf(delivered, 'X-SOS-Milter'), []);

      // The daemon's log line carries the same id as the reply and the client from Postfix's connect information.
      const line = rejectLog.find((l) => l['conn'] === id && typeof l['msg'] === 'string' && l['msg'].startsWith('mode=reject'));
      assert.ok(line, `no reject log line for ${id}`);
      assert.equal(line['msg'], 'mode=reject client=127.0.0.1 SPF-record (-all) of 5321_from_domain=foreign.e2e.test does not permit us to relay this message!');
      assert.match(String(line['queueId']), /^[0-9A-Za-z]+$/, 'log line carries the Postfix queue id');
      const summaries = rejectLog.filter((l) => l['msg'] === 'judged' && (l['conn'] === id || l['conn'] === ownId));
      assert.deepEqual(summaries.map((l) => [l['domain'], l['action'], l['own']]), [
        ['foreign.e2e.test', 'reject', 'not-asked'],
        ['own.e2e.test', 'reject', 'not-asked'],
      ]);
    }));

  test('reject mode: several messages in one SMTP session are judged independently; a null sender passes', () =>
    withLogs(async () => {
      const c = await session();
      const results: Awaited<ReturnType<SmtpClient["sendMail"]>>[] = [];
      const cases = [
        ['news@pass.e2e.test', 'e2e multi 1 pass'],
        ['news@redirected.e2e.test', 'e2e multi 2 redirect'],
        ['', 'e2e multi 3 null'],
        ['news@lookalike.e2e.test', 'e2e multi 4 lookalike'],
        ['news@soft.e2e.test', 'e2e multi 5 soft'],
        ['no-domain', 'e2e multi 6 no domain'],
        ['news@foreign.e2e.test', 'e2e multi 7 foreign'],
        ['news@pass.e2e.test', 'e2e multi 8 pass again'],
      ] as const;
      for (const [from, subject] of cases) results.push(await c.sendMail(from, ['carol@example.net'], body(subject)));
      await c.quit();

      const codes = results.map((r) => r.data?.code);
      assert.deepEqual(codes, [250, 550, 250, 550, 250, 250, 550, 250], results.map((r) => r.data?.text).join('\n'));
      // Redirect: the domain judged is the sender's, the restrictive record is the redirect target's.
      assert.equal(results[1]!.data?.text, rejectText(rejectId(results[1]!.data?.text), 'redirected.e2e.test'));
      assert.equal(results[3]!.data?.text, rejectText(rejectId(results[3]!.data?.text), 'lookalike.e2e.test'));
      assert.equal(results[6]!.data?.text, rejectText(rejectId(results[6]!.data?.text), 'foreign.e2e.test'));
      const ids = [1, 3, 6].map((i) => rejectId(results[i]!.data?.text));
      assert.equal(new Set(ids).size, 3);

      for (const [from, subject] of cases.filter((_, i) => codes[i] === 250)) {
        const m = await sink.waitFor(bySubject(subject), DELIVERY_TIMEOUT_MS);
        assert.equal(m.mailFrom, from === 'no-domain' ? `no-domain@${postfix.myhostname}` : from, subject);
      }
      const nullSender = sink.messages.find(bySubject('e2e multi 3 null'));
      assert.equal(nullSender?.mailFrom, '');
    }));

  test('reject mode: a violating message passes when every next hop is ignored, not when one is not', () =>
    withLogs(async () => {
      const c = await session();
      const allIgnored = await c.sendMail('news@foreign.e2e.test', [`a@${IGNORED_DOMAIN}`, `b@${IGNORED_DOMAIN}`], body('e2e hop ignored'));
      const mixed = await c.sendMail('news@foreign.e2e.test', [`c@${IGNORED_DOMAIN}`, 'dave@example.net'], body('e2e hop mixed'));
      const mixedReversed = await c.sendMail('news@foreign.e2e.test', ['erin@example.net', `f@${IGNORED_DOMAIN}`], body('e2e hop mixed reversed'));
      await c.quit();

      assert.equal(allIgnored.data?.code, 250, allIgnored.data?.text);
      const m = await ignoredSink.waitFor(bySubject('e2e hop ignored'), DELIVERY_TIMEOUT_MS);
      assert.deepEqual([...m.rcptTo].sort(), [`a@${IGNORED_DOMAIN}`, `b@${IGNORED_DOMAIN}`]);
      assert.deepEqual(headersOf(m, 'X-SOS-Milter'), [], 'passes unchanged');
      // The original looked at the last recipient only: both orders must be refused.
      assert.equal(mixed.data?.text, rejectText(rejectId(mixed.data?.text), 'foreign.e2e.test'));
      assert.equal(mixedReversed.data?.text, rejectText(rejectId(mixedReversed.data?.text), 'foreign.e2e.test'));
      const passLine = rejectLog.find((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('Passing message due to ignored next-hop='));
      assert.equal(passLine?.['msg'], `Passing message due to ignored next-hop=[127.0.0.1]:${ignoredSink.port},[127.0.0.1]:${ignoredSink.port}`);
    }));

  test('test mode (child process, UNIX socket): an own domain is tagged, a foreign violator and a passing sender are not', () =>
    withLogs(async () => {
      const st = statSync(socketPath);
      assert.ok(st.isSocket(), 'the daemon created its UNIX socket (and the folder for it)');
      assert.equal(st.mode & 0o777, 0o666, 'default socket mode lets the postfix user connect');

      const c = await session(TEST_MODE_CLIENT);
      const own = await c.sendMail('news@own.e2e.test', ['bob@example.net'], body('e2e test own'));
      const foreign = await c.sendMail('news@foreign.e2e.test', ['bob@example.net'], body('e2e test foreign'));
      const pass = await c.sendMail('news@pass.e2e.test', ['bob@example.net'], body('e2e test pass'));
      const nul = await c.sendMail('', ['bob@example.net'], body('e2e test null'));
      await c.quit();
      for (const r of [own, foreign, pass, nul]) assert.equal(r.data?.code, 250, r.data?.text);

      const ownMsg = await sink.waitFor(bySubject('e2e test own'), DELIVERY_TIMEOUT_MS);
      assert.deepEqual(headersOf(ownMsg, 'X-SOS-Milter'), ['failed SPF-expectation']);
      for (const subject of ['e2e test foreign', 'e2e test pass', 'e2e test null']) {
        const m = await sink.waitFor(bySubject(subject), DELIVERY_TIMEOUT_MS);
        assert.deepEqual(headersOf(m, 'X-SOS-Milter'), [], `${subject}: no header`);
      }

      // The original's key phrases, text format, `<name>: <id>/<queue id>:` on each line.
      const prefix = String.raw`^\S+ INFO sos-milter: [a-z0-9]{8}/[0-9A-Za-z]+: `;
      const sentence = (d: string) => `mode=test client=${TEST_MODE_CLIENT} SPF-record \\(-all\\) of 5321_from_domain=${d.replace(/\./g, '\\.')} does not permit us to relay this message!`;
      await childLog.waitFor((l) => new RegExp(prefix + sentence('own.e2e.test') + '$').test(l), 5000, 'mode=test own');
      await childLog.waitFor((l) => new RegExp(prefix + sentence('foreign.e2e.test') + '$').test(l), 5000, 'mode=test foreign');
      await childLog.waitFor((l) => new RegExp(prefix + String.raw`5321_from_domain=own\.e2e\.test \(LDAP\) has a broken SPF-record!$`).test(l), 5000, 'LDAP broken');
      assert.ok(!childLog.lines.some((l) => l.includes('5321_from_domain=foreign.e2e.test (LDAP)')), 'a foreign domain is not called own');
      // Buffered stdout: a line may arrive up to the logger's flush interval after the delivery it led to.
      const judged = (...parts: string[]) => childLog.waitFor((l) => / judged /.test(l) && parts.every((p) => l.includes(p)), 5000, `judged ${parts.join(' ')}`);
      await judged('domain=own.e2e.test', 'own=own', 'action=tag');
      await judged('domain=foreign.e2e.test', 'own=foreign', 'action=log');
      await judged('domain=pass.e2e.test', 'action=pass');
    }));

  test('the child daemon stops on SIGTERM with exit status 0 and removes its socket', () =>
    withLogs(async () => {
      assert.ok(child);
      child.kill('SIGTERM');
      const code = await childExit;
      assert.equal(code, 0);
      assert.equal(existsSync(socketPath), false, 'socket file removed on shutdown');
      assert.ok(childLog.lines.some((l) => l.includes('Shutdown sos-milter')));
    }));
});
