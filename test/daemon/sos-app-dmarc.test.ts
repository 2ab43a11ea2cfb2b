/**
 * DMARC_CHECK=on in the application over a real loopback milter connection: headers are
 * negotiated (never the body), From: is read at the header stage, and a From: domain whose
 * p=reject policy neither SPF nor DKIM will meet is refused (reject mode) or tagged (test mode).
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/log/index.js';
import { MilterServer, ProtoFlag, type BoundAddress } from '../../src/milter/index.js';
import { IgnoredNextHops, type PolicySettings } from '../../src/policy/index.js';
import { SpfEvaluator, type SpfResult } from '../../src/spf/index.js';
import { ZoneResolver } from '../support/spf/zone-resolver.js';
import { compileSpfRegex } from '../../src/config/index.js';
import { createSosMilterApp } from '../../src/daemon/sos-app.js';
import { MilterTestClient, POSTFIX_OFFER } from '../support/milter-client.js';
import type { LookupOptions, LookupResult, RecordTypeMap, RRType } from '../../src/dns/index.js';
import { waitFor } from '../support/wait.js';

const zone = {
  'bounce.esp.example': [{ TXT: 'v=spf1 include:_spf.esp.example -all' }],
  'customer.example': [{ TXT: 'v=spf1 include:_spf.esp.example -all' }],
  '_spf.esp.example': [{ TXT: 'v=spf1 ip4:192.0.2.0/24 -all' }],
  '_dmarc.customer.example': [{ TXT: 'v=DMARC1; p=reject' }],
  '_dmarc.signed.example': [{ TXT: 'v=DMARC1; p=reject; adkim=s' }],
};

interface Harness {
  resolver: ZoneResolver;
  server: MilterServer;
  address: BoundAddress;
  lines: string[];
}

/** A resolver whose `_dmarc` queries never answer until their signal fires (then they reject like the stub resolver). */
class HangingDmarc extends ZoneResolver {
  /** `_dmarc` queries asked so far. */
  asked = 0;
  override lookup<T extends RRType>(name: string, type: T, options?: LookupOptions): Promise<LookupResult<RecordTypeMap[T]>> {
    if (!name.startsWith('_dmarc.')) return super.lookup(name, type);
    this.asked++;
    return new Promise((_resolve, reject) => {
      const signal = options?.signal;
      if (!signal) return;
      signal.addEventListener('abort', () => reject(new Error(`aborted: ${String(signal.reason)}`)), { once: true });
    });
  }
}

async function startApp(mode: 'test' | 'reject', signingDomains: string[] = [], hang = false, assessmentTimeoutMs = 2000): Promise<Harness> {
  const lines: string[] = [];
  const logger = createLogger({ name: 'sos-milter', level: 'info', format: 'text', destination: { write: (l) => lines.push(l) } });
  const settings: PolicySettings = { mode, check: 'regex', spfRegex: compileSpfRegex('.*include:_spf\\.esp\\.example'), outboundIps: [], violationResults: new Set<SpfResult>(['fail']) };
  const resolver = hang ? new HangingDmarc(zone) : new ZoneResolver(zone);
  const app = createSosMilterApp({
    settings,
    milterName: 'sos-milter',
    rejectMessage: 'Security policy violation!',
    tmpfailMessage: 'later',
    ignoredNextHops: new IgnoredNextHops([]),
    spf: new SpfEvaluator({ resolver }),
    logger,
    assessmentTimeoutMs,
    dmarc: { resolver, signingDomains, rejectMessage: 'Align SPF or DKIM with your From: domain.' },
  });
  const server = new MilterServer(app, { socket: 'inet:0@127.0.0.1' });
  return { resolver, server, address: await server.listen(), lines };
}

async function message(h: Harness, mailFrom: string, headers: [string, string][]) {
  const client = await MilterTestClient.connect(h.address);
  const neg = await client.negotiate(POSTFIX_OFFER);
  await client.connectCmd('[203.0.113.5]', '203.0.113.5', 40000, {});
  await client.helo('client.example');
  await client.mail(mailFrom, [], {});
  await client.rcpt('<r@dest.example>', [], { '{rcpt_host}': 'dest.example' });
  for (const [n, v] of headers) await client.header(n, v);
  const reply = await client.eom({ i: 'Q1' });
  client.quit();
  return { neg, reply };
}

let reject: Harness;
let testMode: Harness;
let signer: Harness;
before(async () => {
  reject = await startApp('reject');
  testMode = await startApp('test');
  signer = await startApp('reject', ['signed.example']);
});
after(async () => {
  for (const h of [reject, testMode, signer]) await h.server.close({ deadlineMs: 500 });
});

test('headers are negotiated, without waiting for their answers, and the body is not', async () => {
  const { neg } = await message(reject, '<a@customer.example>', [['From', 'a@customer.example']]);
  assert.equal(neg.protocol & ProtoFlag.NOHDRS, 0);
  assert.ok(neg.protocol & ProtoFlag.NOBODY);
  assert.ok(neg.protocol & ProtoFlag.NR_HDR);
});

test('reject mode: p=reject, envelope at the ESP bounce domain, no DKIM: 550 with the DMARC text', async () => {
  const { reply } = await message(reject, '<b@bounce.esp.example>', [['From', ' "CEO" <ceo@customer.example>']]);
  const text = (reply.final as { text?: string }).text ?? '';
  assert.match(text, /^550 5\.7\.1 sos-milter: [a-z0-9]{8} DMARC policy \(reject\) of 5322_from_domain=customer\.example is not met: neither SPF nor DKIM will align! Align SPF or DKIM with your From: domain\.$/);
});

test('an aligned message passes: the envelope is the From: domain and SPF passes', async () => {
  const { reply } = await message(reject, '<ceo@customer.example>', [['From', 'ceo@customer.example']]);
  assert.equal(reply.final?.type, 'continue');
  // One line per message: the DMARC judgement is on the judged line.
  assert.ok(reject.lines.some((l) => l.includes(': judged ') && l.includes('domain=customer.example') && l.includes('dmarc=pass')), reject.lines.join('\n'));
});

test('test mode tags the message instead', async () => {
  const { reply } = await message(testMode, '<b@bounce.esp.example>', [['From', 'ceo@customer.example']]);
  assert.ok(reply.modifications.some((m) => m.type === 'addHeader' && m.name === 'X-SOS-Milter' && m.value === 'failed DMARC-expectation'), JSON.stringify(reply));
});

test('DKIM aligns through DKIM_SIGNING_DOMAINS or a DKIM-Signature already present', async () => {
  const viaConfig = await message(signer, '<b@bounce.esp.example>', [['From', 'x@signed.example']]);
  assert.equal(viaConfig.reply.final?.type, 'continue');
  const viaHeader = await message(reject, '<b@bounce.esp.example>', [
    ['DKIM-Signature', 'v=1; a=rsa-sha256; d=customer.example; s=s1; b=abc'],
    ['From', 'ceo@customer.example'],
  ]);
  assert.equal(viaHeader.reply.final?.type, 'continue');
});

test('several From: fields are not applicable: no action, logged', async () => {
  const { reply } = await message(reject, '<b@bounce.esp.example>', [
    ['From', 'ceo@customer.example'],
    ['From', 'other@customer.example'],
  ]);
  assert.equal(reply.final?.type, 'continue');
  assert.ok(reject.lines.some((l) => l.includes('not-applicable') && l.includes('2 From: fields')));
});

test('the DMARC work is bounded by the assessment timeout: a policy lookup that never answers is unknown and passes', async () => {
  const h = await startApp('reject', [], true, 300);
  try {
    const { reply } = await message(h, '<b@bounce.esp.example>', [['From', 'ceo@customer.example']]);
    assert.equal(reply.final?.type, 'continue');
    assert.ok(h.lines.some((l) => l.includes(': judged ') && l.includes('dmarc=unknown') && l.includes('no DMARC judgement within 300 ms')), h.lines.join('\n'));
  } finally {
    await h.server.close({ deadlineMs: 500 });
  }
});

test('the MTA closing the connection during the DMARC step stops its work: no verdict, the abandoned line, no judged line', async () => {
  const h = await startApp('reject', [], true, 60_000);
  try {
    const client = await MilterTestClient.connect(h.address);
    await client.negotiate(POSTFIX_OFFER);
    await client.connectCmd('[203.0.113.5]', '203.0.113.5', 40000, {});
    await client.helo('client.example');
    await client.mail('<b@bounce.esp.example>', [], {});
    await client.rcpt('<r@dest.example>', [], { '{rcpt_host}': 'dest.example' });
    await client.header('From', 'ceo@customer.example');
    void client.eom({ i: 'Q1' }).catch(() => undefined);
    // The DMARC step waits on its policy lookup.
    await waitFor(() => (h.resolver as HangingDmarc).asked > 0, { timeoutMs: 5000, what: 'a _dmarc query' });
    client.close();
    const line = await waitFor(() => h.lines.find((l) => l.includes('no verdict given')), { timeoutMs: 5000, what: 'the abandoned line' });
    assert.match(line, /abandoned by the MTA \(connection closed by the MTA\)/);
    assert.ok(!h.lines.some((l) => l.includes(': judged ')), 'no judged line for an abandoned message');
  } finally {
    await h.server.close({ deadlineMs: 500 });
  }
});
