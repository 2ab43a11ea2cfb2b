/**
 * Notifications on loopback: the webhook's HMAC and retries against a recording HTTP server,
 * mail through the SMTP sink, hostile contact values refused, an unreachable relay and
 * webhook reported without blocking, the rate limit, and the customer text.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkAddress } from '../../src/notify/address.js';
import { renderNotification } from '../../src/notify/render.js';
import { createWebhookSender } from '../../src/notify/webhook.js';
import { createMailSender } from '../../src/notify/email.js';
import { deliverOutbox } from '../../src/notify/deliver.js';
import { openHistory } from '../../src/history/open.js';
import type { NotificationPayload, OutboxEntry } from '../../src/history/types.js';
import { startSmtpSink } from '../support/smtp-sink.js';
import { freePort } from '../support/slapd.js';

const payload: NotificationPayload = {
  event: 'spf.newly_broken',
  domain: 'customer.test',
  status: 'fail',
  result: 'fail',
  since: '2026-12-01T03:00:00.000Z',
  record: 'v=spf1 ip4:198.51.100.1 -all',
  suggested_record: 'v=spf1 ip4:198.51.100.1 include:_spf.esp.test -all',
  remedy: 'add include:_spf.esp.test before -all',
  reason: 'fail for 192.0.2.10',
  lookups: { used: 0, limit: 10 },
};

function entry(id: number, over: Partial<OutboxEntry> = {}): OutboxEntry {
  return { id, runId: 1, domain: 'customer.test', channel: 'webhook', recipient: '', kind: 'newly-broken', payload, attempts: 0, createdAt: '', ...over };
}

async function recordingServer(statuses: number[]): Promise<{ server: Server; url: string; requests: { headers: IncomingMessage['headers']; body: string }[] }> {
  const requests: { headers: IncomingMessage['headers']; body: string }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      requests.push({ headers: req.headers, body });
      res.statusCode = statuses[requests.length - 1] ?? 200;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { server, url: `http://127.0.0.1:${port}/hook`, requests };
}

test('webhook: HMAC-signed JSON, retried with backoff on 5xx, the same delivery id each time', async () => {
  const rec = await recordingServer([503, 500, 200]);
  const pauses: number[] = [];
  try {
    const sender = createWebhookSender({ url: rec.url, secret: 's3cret', timeoutMs: 5000, attempts: 4, backoffMs: 100, sleep: (ms) => (pauses.push(ms), Promise.resolve()) });
    const result = await sender.send(entry(7));
    assert.deepEqual(result, { ok: true, attempts: 3 });
    assert.deepEqual(pauses, [100, 200]);
    assert.equal(rec.requests.length, 3);
    for (const r of rec.requests) {
      assert.equal(r.headers['x-sos-delivery'], '7');
      const expected = createHmac('sha256', 's3cret').update(`${r.headers['x-sos-timestamp'] as string}.${r.body}`).digest('hex');
      assert.equal(r.headers['x-sos-signature'], `sha256=${expected}`);
      const body = JSON.parse(r.body) as Record<string, unknown>;
      assert.equal(body.domain, 'customer.test');
      assert.equal(body.suggested_record, payload.suggested_record);
      assert.deepEqual(body.lookups, { used: 0, limit: 10 });
    }
  } finally {
    rec.server.close();
  }
});

test('webhook: a 4xx is final, an unreachable one is reported as down after its attempts', async () => {
  const rec = await recordingServer([400]);
  try {
    const sender = createWebhookSender({ url: rec.url, secret: 's', timeoutMs: 5000, attempts: 3, backoffMs: 1, sleep: () => Promise.resolve() });
    const r = await sender.send(entry(1));
    assert.equal(r.ok, false);
    assert.ok(!r.ok && r.permanent && !r.channelDown);
    assert.equal(rec.requests.length, 1);
  } finally {
    rec.server.close();
  }
  const port = await freePort();
  const down = createWebhookSender({ url: `http://127.0.0.1:${port}/`, secret: 's', timeoutMs: 2000, attempts: 3, backoffMs: 1, sleep: () => Promise.resolve() });
  const r = await down.send(entry(2));
  assert.ok(!r.ok && r.channelDown && !r.permanent && r.attempts === 3, JSON.stringify(r));
  assert.match(!r.ok ? r.error : '', /ECONNREFUSED/);
});

test('contact addresses: plain addresses pass; header injection, lists and quotes are refused', () => {
  assert.deepEqual(checkAddress(' Admin@Customer.TEST '), { ok: true, address: 'Admin@customer.test' });
  for (const bad of ['a@b.test\r\nBcc: victim@x.test', 'a@b.test\nSubject: x', 'a@b.test, c@d.test', '<a@b.test>', '"a b"@b.test', 'a@b@c.test', 'a@localhost', 'a@b.test\u0085x', '', 'a'.repeat(65) + '@b.test']) {
    assert.equal(checkAddress(bad).ok, false, JSON.stringify(bad));
  }
});

test('the customer text shows the current record, the suggested one and why', () => {
  const m = renderNotification(payload, { serviceName: 'Example Mail' });
  assert.equal(m.subject, 'Action needed: SPF record of customer.test');
  assert.match(m.text, /Since 2026-12-01 03:00:00 UTC it does not let Example Mail send mail for customer\.test/);
  assert.match(m.text, /\n {4}v=spf1 ip4:198\.51\.100\.1 -all\n/);
  assert.match(m.text, /\n {4}v=spf1 ip4:198\.51\.100\.1 include:_spf\.esp\.test -all\n/);
  assert.match(m.text, /What changes: add include:_spf\.esp\.test before -all/);
  assert.match(m.text, /Why: fail for 192\.0\.2\.10/);
  const hostile = renderNotification({ ...payload, record: 'v=spf1 -all\r\nX-Evil: 1\u202e' });
  assert.ok(!hostile.text.includes('\r') && !hostile.text.includes('\u202e'));
  const fixed = renderNotification({ ...payload, event: 'spf.fixed', status: 'pass' });
  assert.equal(fixed.subject, 'SPF record of customer.test is fixed');
});

test('mail through the SMTP sink; hostile recipients never reach the relay; an unreachable relay is reported', async () => {
  const sink = await startSmtpSink();
  try {
    const mail = await createMailSender({ url: `smtp://127.0.0.1:${sink.port}`, from: 'hygiene@esp.test', requireTls: false, timeoutMs: 5000 });
    const ok = await mail.send(entry(11, { channel: 'email', recipient: 'admin@customer.test' }));
    assert.deepEqual(ok, { ok: true, attempts: 1 });
    const m = await sink.waitFor(() => true, 5000);
    assert.deepEqual(m.rcptTo, ['admin@customer.test']);
    assert.equal(m.mailFrom, 'hygiene@esp.test');
    assert.match(m.text, /Subject: Action needed: SPF record of customer\.test/);
    assert.match(m.text, /Message-ID: <sos-audit-11@esp\.test>/i);
    const bad = await mail.send(entry(12, { channel: 'email', recipient: 'admin@customer.test\r\nBcc: victim@evil.test' }));
    assert.ok(!bad.ok && bad.permanent && !bad.channelDown);
    const badDomain = await mail.send(entry(13, { channel: 'email', recipient: 'a@b.test', domain: 'x.test\r\nBcc: v@evil.test' }));
    assert.ok(!badDomain.ok && badDomain.permanent);
    assert.equal(sink.messages.length, 1);
    mail.close?.();
  } finally {
    await sink.close();
  }
  const port = await freePort();
  const down = await createMailSender({ url: `smtp://127.0.0.1:${port}`, from: 'hygiene@esp.test', requireTls: false, timeoutMs: 2000 });
  const r = await down.send(entry(14, { channel: 'email', recipient: 'admin@customer.test' }));
  assert.ok(!r.ok && r.channelDown && !r.permanent, JSON.stringify(r));
});

test('delivery: rate limit per run, a down channel deferred, sent ones never again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sos-notify-'));
  const store = await openHistory(join(dir, 'h.sqlite'));
  try {
    const outcomes = Array.from({ length: 5 }, (_, i) => ({ domain: `d${i}.test`, status: 'fail' as const, result: 'fail', unknown: false, record: null, reason: 'r', suggested: null, remedy: null, lookups: null, contacts: [] }));
    await store.commitRun({ startedAt: new Date(), finishedAt: new Date(), outcomes, recipients: () => [{ channel: 'webhook', recipient: '' }, { channel: 'email', recipient: 'a@b.test' }] });
    const sent: number[] = [];
    const ok = { send: (e: OutboxEntry) => (sent.push(e.id), Promise.resolve({ ok: true as const, attempts: 1 })) };
    const down = { send: () => Promise.resolve({ ok: false as const, attempts: 3, error: 'down', permanent: false, channelDown: true }) };
    const r1 = await deliverOutbox(store, { maxPerRun: 4, senders: { webhook: ok, email: down } });
    // ids 1..5 webhook? order is by id: webhook and email interleave per domain.
    assert.equal(r1.sent.webhook + r1.failed.length, 4);
    assert.equal(r1.failed.length, 1, 'the email channel is tried once, then deferred');
    assert.equal(r1.deferred, 6);
    const r2 = await deliverOutbox(store, { maxPerRun: 100, senders: { webhook: ok, email: ok } });
    assert.equal(r2.sent.webhook + r1.sent.webhook, 5);
    assert.equal(r2.sent.email, 5);
    assert.equal(new Set(sent).size, sent.length, 'nothing sent twice');
    const r3 = await deliverOutbox(store, { maxPerRun: 100, senders: { webhook: ok, email: ok } });
    assert.deepEqual(r3.sent, { webhook: 0, email: 0 });
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
