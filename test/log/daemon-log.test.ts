/**
 * Log forgery and line bounds through the real daemon (startDaemon, a milter client on
 * loopback, DNS from an in-process server): a sender, an SMTP client name, a queue id and an
 * SPF record carrying line breaks and terminal controls (NEL, CSI, U+2028, raw bytes 0x85/0x9B
 * in TXT data) end up escaped in every line, text and JSON, and a 10 KB SPF record (within the 16 KiB the cache keeps) does not
 * make a line longer than LINE_MAX_BYTES.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as packet from 'dns-packet';
import { startDaemon } from '../../src/daemon/run.js';
import { LINE_MAX_BYTES } from '../../src/log/index.js';
import { FORBIDDEN } from '../support/log-capture.js';
import { MilterTestClient, POSTFIX_OFFER } from '../support/milter-client.js';
import { reply, startFakeDns, type FakeDnsServer } from '../dns/fake-dns-server.js';

// A TXT record whose bytes, decoded as latin1 by the resolver, hold NEL, CSI and a newline.
const HOSTILE_TXT = Buffer.concat([Buffer.from('v=spf1 ip4:198.51.100.0/24 '), Buffer.from([0x85, 0x9b, 0x33, 0x31, 0x6d, 0x0a]), Buffer.from('2026 INFO forged -all')]);
const LONG_RECORD = `v=spf1 ${'ip4:192.0.2.1 '.repeat(700)}-all`;

function txtStrings(record: string): Buffer[] {
  const bytes = Buffer.from(record);
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 255) out.push(bytes.subarray(i, i + 255));
  return out;
}

let dns: FakeDnsServer;
before(async () => {
  dns = await startFakeDns((q, transport) => {
    const name = q.questions?.[0]?.name.toLowerCase();
    if (q.questions?.[0]?.type !== 'TXT') return [reply(q)];
    if (name === 'forged.example') return [reply(q, { answers: [{ type: 'TXT', name, ttl: 60, data: [HOSTILE_TXT] }] })];
    if (name === 'long.example') {
      // Too large for UDP: truncated there, whole over TCP, as a real server answers.
      if (transport === 'udp') return [reply(q, { flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE | packet.TRUNCATED_RESPONSE })];
      return [reply(q, { answers: [{ type: 'TXT', name, ttl: 60, data: txtStrings(LONG_RECORD) }] })];
    }
    return [reply(q, { rcode: 3 })];
  });
});
after(async () => {
  await dns.close();
});

async function runDaemon(format: 'text' | 'json'): Promise<string[]> {
  const lines: string[] = [];
  const daemon = await startDaemon(
    { MILTER_SOCKET: 'inet:0@127.0.0.1', DNS_SERVERS: `127.0.0.1:${dns.port}`, DNS_TIMEOUT_MS: '2000', LOG_LEVEL: 'debug', LOG_FORMAT: format },
    { logDestination: { write: (l: string) => lines.push(l) } },
  );
  try {
    const client = await MilterTestClient.connect(daemon.server.address()!);
    await client.negotiate(POSTFIX_OFFER);
    await client.connectCmd('evil\u2028host\u0085.example', '203.0.113.5', 40000, { j: 'mx.esp.example' });
    await client.helo('helo\u009b[2J.example');
    const messages = [
      { from: '<a\u0085b\u2028c@forged.example>', queueId: 'Q\u0085\u2028\u009b1' },
      { from: '<d@long.example>', queueId: 'Q2' },
    ];
    for (const m of messages) {
      await client.mail(m.from, [], { '{mail_addr}': m.from.slice(1, -1) });
      await client.rcpt('<r@dest.example>', [], { '{rcpt_addr}': 'r@dest.example', '{rcpt_host}': 'dest.example', i: m.queueId });
      await client.eom({ i: m.queueId });
      client.abort();
    }
    client.quit();
  } finally {
    await daemon.stop();
  }
  return lines;
}

for (const format of ['text', 'json'] as const) {
  test(`through the daemon (${format}): every line is one line, escaped and bounded`, async () => {
    const lines = await runDaemon(format);
    const judged = lines.filter((l) => l.includes(format === 'text' ? ': judged ' : '"msg":"judged"'));
    assert.equal(judged.length, 2, lines.join(''));
    for (const line of lines) {
      assert.ok(line.endsWith('\n'));
      const raw = FORBIDDEN.exec(line.slice(0, -1));
      assert.equal(raw, null, `raw U+${raw?.[0]!.charCodeAt(0).toString(16)} in ${JSON.stringify(line)}`);
      assert.ok(Buffer.byteLength(line) <= LINE_MAX_BYTES + 1, `line of ${Buffer.byteLength(line)} bytes`);
      if (format === 'json') JSON.parse(line);
    }
    const forged = judged[0]!;
    const long = judged[1]!;
    if (format === 'text') {
      assert.match(forged, / INFO sos-milter: [a-z0-9]+\/"Q\\u0085\\u2028\\u009b1": judged domain=forged\.example /);
      assert.ok(forged.includes('record="v=spf1 ip4:198.51.100.0/24 \\u0085\\u009b31m\\n2026 INFO forged -all"'), forged);
      assert.match(long, /record="v=spf1 (ip4:192\.0\.2\.1 )+.*\.\.\.\[\d+ bytes cut\]"/);
    } else {
      const record = JSON.parse(forged) as Record<string, string>;
      assert.equal(record.queueId, 'Q\u0085\u2028\u009b1');
      assert.equal(record.record, HOSTILE_TXT.toString('latin1'));
      const longRecord = (JSON.parse(long) as Record<string, string>).record!;
      assert.match(longRecord, /\.\.\.\[\d+ bytes cut\]$/);
      assert.ok(LONG_RECORD.startsWith(longRecord.replace(/\.\.\.\[\d+ bytes cut\]$/, '')));
    }
    // The sender, in the debug line of MAIL FROM: the same escapes in both formats.
    assert.ok(lines.some((l) => l.includes('a\\u0085b\\u2028c@forged.example')), lines.join(''));
  });
}
