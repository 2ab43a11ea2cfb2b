/**
 * `sos-milter audit --history` against the real slapd and Knot: three runs with DNS changed
 * between them give exact change sets; each change is notified exactly once, by a recording
 * webhook server and by mail through the SMTP sink; an unchanged run notifies nothing; a
 * failing webhook is retried, reported, and delivered by a later run without blocking the
 * audit; a hostile contact value is refused; kill -9 before and after the commit loses no
 * change and sends nothing twice; an unwritable history path is exit 2. No timing is asserted.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { runAuditCommand } from '../../src/cli/audit-command.js';
import { auditEnv, ESP_INCLUDE, ESP_ZONE, HANG_ZONE, MILTER_DN, MILTER_PW, SEARCH_BASE } from '../support/audit-fixture.js';
import { knotSkipReason, queryCountWhenReady, startKnot, type KnotInstance } from '../support/knot.js';
import { slapdUnavailableReason, startSlapd, type SlapdInstance } from '../support/slapd.js';
import { startSmtpSink, type SmtpSink } from '../support/smtp-sink.js';
import { MAIN_JS } from '../support/paths.js';

const skip = knotSkipReason() ?? slapdUnavailableReason() ?? false;
const ZONE = 'hist.test';
const PASS = `v=spf1 ${ESP_INCLUDE} -all`;
const BROKEN = 'v=spf1 ip4:198.51.100.1 -all';
const DOMAINS = ['a', 'b', 'c', 'd', 'e', 'h'].map((l) => `${l}.${ZONE}`);

function zone(records: Record<string, string>): string {
  const lines = [`$ORIGIN ${ZONE}.`, '$TTL 300', `@ SOA ns.${ZONE}. hostmaster.${ZONE}. 1 3600 600 86400 60`, `@ NS ns.${ZONE}.`, 'ns A 127.0.0.1'];
  for (const [label, text] of Object.entries(records)) lines.push(`${label} TXT "${text}"`);
  return `${lines.join('\n')}\n`;
}

const allPass = Object.fromEntries(['a', 'b', 'c', 'd', 'e', 'h'].map((l) => [l, PASS]));
const V1 = { ...allPass, b: BROKEN, c: BROKEN };
const V2 = { ...allPass, c: BROKEN, d: BROKEN };
const V3 = { ...V2, e: BROKEN };
const V4 = { ...V3, h: BROKEN };

function ldif(): string {
  const base = 'dc=example,dc=test';
  const parts = [
    `dn: ${base}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example ESP\n`,
    `dn: ${SEARCH_BASE}\nobjectClass: organizationalUnit\nou: domains\n`,
    `dn: ou=accounts,${base}\nobjectClass: organizationalUnit\nou: accounts\n`,
    `dn: ${MILTER_DN}\nobjectClass: account\nobjectClass: simpleSecurityObject\nuid: milter\nuserPassword: ${MILTER_PW}\n`,
  ];
  for (const d of DOMAINS) {
    const label = d.split('.')[0]!;
    // h's contact tries header injection (base64 in LDIF: it holds CR LF); a's has two addresses.
    const mail =
      label === 'h'
        ? `mail:: ${Buffer.from(`postmaster@h.${ZONE}\r\nBcc: victim@evil.test`).toString('base64')}\n`
        : label === 'a'
          ? `mail: admin@a.${ZONE}\nmail: second@a.${ZONE}\n`
          : `mail: admin@${d}\n`;
    parts.push(`dn: dc=${d},${SEARCH_BASE}\nobjectClass: domain\nobjectClass: extensibleObject\ndc: ${d}\n${mail}`);
  }
  // Listed only by the kill test's filter: its DNS never answers, so that run is still judging when killed.
  parts.push(`dn: dc=t1.${HANG_ZONE},${SEARCH_BASE}\nobjectClass: domain\ndc: t1.${HANG_ZONE}\n`);
  return parts.join('\n');
}

interface Hook {
  server: Server;
  url: string;
  bodies: Record<string, unknown>[];
  /** 'ok' answers 200, 'fail' 503, 'hang' never answers. */
  mode: 'ok' | 'fail' | 'hang';
  requests: number;
  hung: ServerResponse[];
}

async function startHook(): Promise<Hook> {
  const hook = { bodies: [], mode: 'ok', requests: 0, hung: [] } as unknown as Hook;
  hook.server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      hook.requests++;
      if (hook.mode === 'hang') return void hook.hung.push(res);
      if (hook.mode === 'fail') {
        res.statusCode = 503;
        return void res.end();
      }
      hook.bodies.push(JSON.parse(body) as Record<string, unknown>);
      res.end('ok');
    });
  });
  await new Promise<void>((r) => hook.server.listen(0, '127.0.0.1', r));
  hook.url = `http://127.0.0.1:${(hook.server.address() as { port: number }).port}/hook`;
  return hook;
}

/** The body as a mail client shows it: quoted-printable decoded. */
function decoded(text: string): string {
  return text.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

function sink(): { stream: Writable; text(): string } {
  let text = '';
  return { stream: new Writable({ write: (c: Buffer, _e, cb) => ((text += c.toString()), cb()) }), text: () => text };
}

interface Summary {
  contacts_refused?: { domain: string; reason: string }[];
  changes: Record<string, number>;
  notifications?: { sent: { webhook: number; email: number }; failed: { domain: string; channel: string; error: string }[]; deferred: number; channel_down?: Record<string, string> };
}

describe('audit --history: slapd + Knot, webhook and SMTP sink', { skip, timeout: 240_000 }, () => {
  let slapd: SlapdInstance;
  let knot: KnotInstance | undefined;
  let hook: Hook;
  let smtp: SmtpSink;
  let dir: string;
  let env: NodeJS.ProcessEnv;

  const setDns = async (records: Record<string, string>, hang = false) => {
    await knot?.close();
    knot = await startKnot({ zones: { [ZONE]: zone(records), 'esp.test': ESP_ZONE }, ...(hang ? { timeoutNames: [HANG_ZONE], blackholeTimeoutMs: 3000 } : {}) });
    env = { ...env, DNS_SERVERS: `127.0.0.1:${knot.port}` };
  };

  const audit = async (extra: string[] = []) => {
    const out = sink();
    const err = sink();
    const code = await runAuditCommand(['--json', '--history', join(dir, 'history.sqlite'), ...extra], env, { out: out.stream, err: err.stream });
    const lines = out.text().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const summary = (lines.pop() as { summary: Summary }).summary;
    const byChange = (kind: string) => lines.filter((l) => l.change === kind).map((l) => l.domain as string).sort();
    return { code, err: err.text(), summary, lines, byChange };
  };

  const mailsTo = (domain: string) => smtp.messages.filter((m) => m.text.toLowerCase().includes(`x-sos-domain: ${domain}\r\n`));
  const hooksFor = (domain: string) => hook.bodies.filter((b) => b.domain === domain).map((b) => b.event);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sos-audit-history-'));
    slapd = await startSlapd({ ldif: ldif() });
    hook = await startHook();
    smtp = await startSmtpSink();
    env = {
      ...auditEnv(slapd.url, 0),
      AUDIT_WEBHOOK_URL: hook.url,
      AUDIT_WEBHOOK_SECRET: 'a-secret-of-32-characters-------',
      AUDIT_WEBHOOK_ATTEMPTS: '3',
      AUDIT_WEBHOOK_BACKOFF_MS: '10',
      AUDIT_SMTP_URL: `smtp://127.0.0.1:${smtp.port}`,
      AUDIT_MAIL_FROM: 'hygiene@esp.test',
      AUDIT_CONTACT_ATTRIBUTE: 'mail',
      AUDIT_METRICS_FILE: join(dir, 'audit.prom'),
      LDAP_AUDIT_FILTER: '(objectClass=extensibleObject)',
    };
  });
  after(async () => {
    for (const r of hook?.hung ?? []) r.destroy();
    hook?.server.close();
    await smtp?.close();
    await knot?.close();
    await slapd?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('run 1: the broken domains are newly broken, each notified once by webhook and mail', async () => {
    await setDns(V1);
    const r = await audit();
    assert.equal(r.code, 1, r.err);
    assert.deepEqual(r.byChange('newly-broken'), ['b.hist.test', 'c.hist.test']);
    assert.deepEqual(r.byChange('unchanged'), ['a.hist.test', 'd.hist.test', 'e.hist.test', 'h.hist.test']);
    assert.deepEqual(r.summary.notifications?.sent, { webhook: 2, email: 2 });
    assert.deepEqual(hooksFor('b.hist.test'), ['spf.newly_broken']);
    const body = hook.bodies.find((b) => b.domain === 'b.hist.test')!;
    assert.equal(body.record, BROKEN);
    assert.equal(body.suggested_record, `v=spf1 ip4:198.51.100.1 ${ESP_INCLUDE} -all`);
    assert.deepEqual((body.lookups as { used: number }).used, 0);
    const [mail] = mailsTo('b.hist.test');
    assert.deepEqual(mail?.rcptTo, ['admin@b.hist.test']);
    assert.match(decoded(mail!.text), /\n {4}v=spf1 ip4:198.51.100.1 -all\r\n/);
    assert.match(decoded(mail!.text), /v=spf1 ip4:198\.51\.100\.1 include:_spf\.esp\.test -all/);
  });

  test('run 2: DNS changed: exact fixed, newly broken and still broken sets (with since)', async () => {
    await setDns(V2);
    const r = await audit();
    assert.deepEqual(r.byChange('newly-broken'), ['d.hist.test']);
    assert.deepEqual(r.byChange('fixed'), ['b.hist.test']);
    assert.deepEqual(r.byChange('still-broken'), ['c.hist.test']);
    assert.deepEqual(r.byChange('unchanged'), ['a.hist.test', 'e.hist.test', 'h.hist.test']);
    const c = r.lines.find((l) => l.domain === 'c.hist.test')!;
    assert.ok(typeof c.since === 'string' && Date.parse(c.since) < Date.now());
    assert.deepEqual(r.summary.notifications?.sent, { webhook: 2, email: 2 });
    assert.deepEqual(hooksFor('b.hist.test'), ['spf.newly_broken', 'spf.fixed']);
    assert.match(mailsTo('b.hist.test')[1]!.text, /Subject: SPF record of b\.hist\.test is fixed/);
  });

  test('run 3: nothing changed: nothing notified; --changes-only lists nothing', async () => {
    const before = { hooks: hook.bodies.length, mails: smtp.messages.length };
    const r = await audit(['--changes-only']);
    assert.equal(r.lines.length, 0);
    assert.deepEqual(r.summary.changes, { newly_broken: 0, fixed: 0, still_broken: 2, unchanged: 4, unknown: 0 });
    assert.deepEqual(r.summary.notifications?.sent, { webhook: 0, email: 0 });
    assert.deepEqual({ hooks: hook.bodies.length, mails: smtp.messages.length }, before);
    assert.equal(DOMAINS.filter((d) => hooksFor(d).length > 0).length, 3, 'b, c, d only');
  });

  test('a failing webhook is retried, reported, does not block the mail or the audit, and is delivered once later', async () => {
    await setDns(V3);
    hook.mode = 'fail';
    const requestsBefore = hook.requests;
    const r = await audit();
    assert.equal(r.code, 1);
    assert.deepEqual(r.byChange('newly-broken'), ['e.hist.test']);
    assert.equal(hook.requests - requestsBefore, 3, 'AUDIT_WEBHOOK_ATTEMPTS=3 attempts');
    assert.match(r.summary.notifications?.channel_down?.webhook ?? '', /failed after 3 attempts: HTTP 503/);
    assert.deepEqual(r.summary.notifications?.sent, { webhook: 0, email: 1 });
    hook.mode = 'ok';
    const again = await audit();
    assert.deepEqual(again.byChange('newly-broken'), []);
    assert.deepEqual(again.summary.notifications?.sent, { webhook: 1, email: 0 });
    assert.deepEqual(hooksFor('e.hist.test'), ['spf.newly_broken']);
    assert.equal(mailsTo('e.hist.test').length, 1);
  });

  test('a hostile contact value is refused: no mail to it, the webhook still told', async () => {
    await setDns(V4);
    const mails = smtp.messages.length;
    const r = await audit();
    assert.deepEqual(r.byChange('newly-broken'), ['h.hist.test']);
    assert.deepEqual(r.summary.contacts_refused, [{ domain: 'h.hist.test', reason: 'contains control characters (header injection?)' }]);
    assert.equal(smtp.messages.length, mails, 'no mail at all');
    assert.ok(!smtp.messages.some((m) => m.rcptTo.some((t) => t.includes('evil'))));
    assert.deepEqual(hooksFor('h.hist.test'), ['spf.newly_broken']);
  });

  test('--dry-run prints what would be sent and changes nothing', async () => {
    await setDns({ ...V4, a: BROKEN });
    const counts = { hooks: hook.requests, mails: smtp.messages.length };
    const r = await audit(['--dry-run']);
    assert.deepEqual(r.byChange('newly-broken'), ['a.hist.test']);
    assert.match(r.err, /would POST to http:\/\/127\.0\.0\.1:\d+\/hook: \{"event":"spf\.newly_broken","domain":"a\.hist\.test"/);
    assert.match(r.err, /would mail admin@a\.hist\.test/);
    assert.match(r.err, /would mail second@a\.hist\.test/);
    assert.deepEqual({ hooks: hook.requests, mails: smtp.messages.length }, counts);
    const real = await audit();
    assert.deepEqual(real.byChange('newly-broken'), ['a.hist.test'], 'the dry run recorded nothing');
    assert.equal(mailsTo('a.hist.test').length, 2);
  });

  test('kill -9 before the commit, then after it mid-delivery: no change lost, nothing sent twice', async () => {
    const cli = (extraEnv: NodeJS.ProcessEnv) =>
      spawn(process.execPath, [MAIN_JS, 'audit', '--json', '--history', join(dir, 'history.sqlite')], { env: { PATH: process.env.PATH, ...env, ...extraEnv }, stdio: 'ignore' });
    const killed = (p: ReturnType<typeof spawn>) => new Promise<void>((r) => p.once('exit', () => r()));
    // 1. While judging: a domain whose DNS hangs keeps the run busy; kill -9 before it can commit.
    await setDns({ ...V4, b: BROKEN }, true);
    const hookRequests = hook.requests;
    const baseline = await queryCountWhenReady(knot!);
    const p1 = cli({ LDAP_AUDIT_FILTER: '(objectClass=domain)' });
    // Knot has been asked by the audit: the run is judging, and the hanging domain holds it there.
    for (let i = 0; i < 400 && (await knot!.queryCount().catch(() => baseline)) <= baseline; i++) await new Promise((r) => setTimeout(r, 25));
    assert.ok((await knot!.queryCount()) > baseline, 'the killed run was judging');
    p1.kill('SIGKILL');
    await killed(p1);
    assert.equal(hook.requests, hookRequests, 'killed before any delivery');
    // 2. After the commit: the webhook hangs, kill -9 while it waits.
    hook.mode = 'hang';
    const p2 = cli({});
    const exited = killed(p2);
    for (let i = 0; i < 600 && hook.hung.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(hook.hung.length, 1, 'the run reached the delivery');
    p2.kill('SIGKILL');
    await exited;
    for (const res of hook.hung.splice(0)) res.destroy();
    hook.mode = 'ok';
    // 3. Again: b's change was committed by the killed run (still broken now), its notifications are delivered once.
    const r = await audit();
    assert.deepEqual(r.byChange('still-broken').includes('b.hist.test'), true);
    assert.deepEqual(hooksFor('b.hist.test'), ['spf.newly_broken', 'spf.fixed', 'spf.newly_broken']);
    assert.equal(mailsTo('b.hist.test').length, 3);
    // (Had the first killed run committed, b would not have been newly broken for the second: no third notification.)
    const r2 = await audit();
    assert.deepEqual(r2.summary.notifications?.sent, { webhook: 0, email: 0 });
  });

  test('an unwritable history path: exit 2, a message naming it, nothing sent', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    const counts = { hooks: hook.requests, mails: smtp.messages.length };
    const err = sink();
    const code = await runAuditCommand(['--history', join(file, 'h.sqlite')], env, { out: sink().stream, err: err.stream });
    assert.equal(code, 2);
    assert.match(err.text(), /cannot open the audit history ".*a-file\/h\.sqlite"/);
    assert.deepEqual({ hooks: hook.requests, mails: smtp.messages.length }, counts);
  });
});
