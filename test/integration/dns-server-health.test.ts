// Issue 14, item 1, through the real daemon (`node dist/src/cli/main.js`, reject mode,
// SPF_CHECK=evaluate): DNS_SERVERS=<dead>,<Knot>, where <dead> is a bound loopback UDP socket that
// takes every query and answers none. A sender whose `v=spf1 mx -all` names ten MX hosts, none of
// them the outbound IP, must get the 550 verdict (before the fix: every lookup paid one retry
// spacing at the dead server, the message hit the 4 × DNS_TIMEOUT_MS deadline and passed as
// temperror). Every query the dead server got is counted in dns_errors_total{kind="timeout"};
// once it is marked down it is asked no more, and the daemon says so in one WARN line.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { knotSkipReason, startKnot, type KnotInstance } from '../support/knot.js';
import { listeningPort, startDaemonProcess, type DaemonProcess } from '../support/daemon-process.js';
import { MilterTestClient } from '../support/milter-client.js';
import { freePort } from '../support/ports.js';

const DNS_TIMEOUT_MS = 2000; // the default: attempts 666 ms apart, a message's deadline 8000 ms
const OUTBOUND_IP = '192.0.2.1';
const MX_HOSTS = 10;
/** Senders, each with its own MX set, so that every message's lookups miss the cache. */
const SENDERS = ['first', 'second', 'third'];

const ZONE = [
  '$ORIGIN health.test.',
  '$TTL 60',
  '@ SOA ns hostmaster 1 3600 600 86400 60',
  '@ NS ns',
  'ns A 127.0.0.1',
  ...SENDERS.flatMap((s, k) => [
    `${s} TXT "v=spf1 mx -all"`,
    ...Array.from({ length: MX_HOSTS }, (_, h) => [`${s} MX ${10 + h} mx${h + 1}.${s}`, `mx${h + 1}.${s} A 198.51.100.${k * MX_HOSTS + h + 1}`]).flat(),
  ]),
  '',
].join('\n');

/** A loopback UDP socket that receives every query and answers none. */
interface DeadServer {
  port: number;
  received: number;
  close(): Promise<void>;
}

async function startDeadServer(): Promise<DeadServer> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  const dead = {
    port: socket.address().port,
    received: 0,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
  socket.on('message', () => dead.received++);
  return dead;
}

describe('a dead first DNS server', { skip: knotSkipReason() ?? false, timeout: 90_000 }, () => {
  let knot: KnotInstance;
  let dead: DeadServer;
  let daemon: DaemonProcess;
  let port: number;
  let metricsPort: number;

  before(async () => {
    knot = await startKnot({ zones: { 'health.test': ZONE } });
    dead = await startDeadServer();
    metricsPort = await freePort();
    daemon = await startDaemonProcess({
      MILTER_SOCKET: 'inet:0@127.0.0.1',
      MILTER_MODE: 'reject',
      SPF_CHECK: 'evaluate',
      OUTBOUND_IPS: OUTBOUND_IP,
      DNS_SERVERS: `127.0.0.1:${dead.port},${knot.host}:${knot.port}`,
      DNS_TIMEOUT_MS: String(DNS_TIMEOUT_MS),
      METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
      LOG_LEVEL: 'info',
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
    await dead?.close();
    await knot?.close();
  });

  /** A series of the daemon's /metrics (0 while it has no sample). */
  async function metric(series: string): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`sos_milter_${series} `));
    return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
  }

  /** One message from `sender`'s domain on a fresh connection; its final reply and how long end of message took. */
  async function send(sender: string, queueId: string): Promise<{ final: unknown; ms: number }> {
    const c = await MilterTestClient.connect({ port, host: '127.0.0.1' }, 20_000);
    await c.openSession();
    const started = performance.now();
    const final = await c.message(`<news@${sender}.health.test>`, queueId);
    const ms = Math.round(performance.now() - started);
    c.quit();
    await c.waitClosed();
    return { final, ms };
  }

  function assertRejected(final: unknown, sender: string): void {
    assert.equal((final as { type?: string } | undefined)?.type, 'replyCode', `${sender}: ${JSON.stringify(final)}\n${daemon.tail()}`);
    assert.match((final as { text: string }).text, /^550 5\.7\.1 /);
  }

  test('mx -all with ten MX hosts is rejected; the dead server is counted, marked down once, then skipped', async (t) => {
    const first = await send(SENDERS[0], 'QH1');
    assertRejected(first.final, SENDERS[0]);
    const judged = await daemon.waitFor((l) => l.msg === 'judged' && l['domain'] === `${SENDERS[0]}.health.test`, 5000, 'the judged line');
    assert.equal(judged['result'], 'fail');
    assert.equal(judged['action'], 'reject');

    const down = await daemon.waitFor((l) => /^DNS server 127\.0\.0\.1:\d+ marked down/.test(l.msg ?? ''), 5000, 'the marked-down line');
    assert.equal(down['level'], 'warn');
    assert.equal(down['server'], `127.0.0.1:${dead.port}`);
    const timeouts = await metric('dns_errors_total{kind="timeout"}');
    assert.ok(dead.received >= 3, `the dead server was asked until marked down (${dead.received})`);
    assert.equal(timeouts, dead.received, 'every query the dead server left unanswered is a timeout');
    assert.equal(await metric('dns_servers_down'), 1);

    // Marked down: the next messages' lookups (all cache misses) go straight to Knot.
    const askedBefore = dead.received;
    const later = [];
    for (const [i, sender] of SENDERS.slice(1).entries()) {
      const r = await send(sender, `QH${i + 2}`);
      assertRejected(r.final, sender);
      later.push(r.ms);
    }
    assert.equal(dead.received, askedBefore, 'a down server is not asked');
    assert.equal(await metric('dns_errors_total{kind="timeout"}'), timeouts);
    assert.equal(daemon.lines.filter((l) => /^DNS server .* marked down/.test(l.msg ?? '')).length, 1, 'one line for the outage, not one per query');
    t.diagnostic(`end of message: first ${first.ms} ms (dead server still asked), later ${later.join(', ')} ms; dead server asked ${askedBefore} times`);
  });
});
