import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import * as packet from 'dns-packet';
import { StubResolver } from '../../src/dns/stub-resolver.js';
import { DnsError } from '../../src/dns/types.js';
import { reply, soa, startFakeDns, type FakeDnsServer, type Handler } from './fake-dns-server.js';
import { sleep, waitFor } from '../support/wait.js';

async function withServer(handler: Handler, fn: (s: FakeDnsServer) => Promise<void>): Promise<void> {
  const server = await startFakeDns(handler);
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

function stub(s: FakeDnsServer, timeoutMs = 1000, retries = 1): StubResolver {
  return new StubResolver({ servers: [{ host: s.host, port: s.port }], timeoutMs, retries });
}

const isDnsError = (code: string) => (e: unknown) => e instanceof DnsError && e.code === code;

test('TXT strings come back split as sent, latin1-decoded, with the minimum TTL', async () => {
  await withServer(
    (q) => [
      reply(q, {
        answers: [
          { type: 'TXT', name: 'example.test', ttl: 300, data: [Buffer.from('v=spf1 ip4:192.0.2.0/24 '), Buffer.from('-all')] },
          { type: 'TXT', name: 'example.test', ttl: 120, data: [Buffer.from([0x68, 0xe9, 0xff, 0x00])] },
        ],
      }),
    ],
    async (s) => {
      const r = await stub(s).lookup('Example.Test.', 'TXT');
      assert.deepEqual(r.records, [['v=spf1 ip4:192.0.2.0/24 ', '-all'], ['h\u00e9\u00ff\u0000']]);
      assert.equal(r.ttl, 120);
      assert.equal(r.nxdomain, false);
      assert.equal(s.received[0].name, 'example.test');
      assert.equal(s.received[0].edns, true, 'EDNS0 OPT record sent');
    },
  );
});

test('query carries RD, EDNS0 payload 1232 and varying ids from varying source ports', async () => {
  const seen: { id: number; rd: boolean; payload: number | undefined }[] = [];
  const ports = new Set<number>();
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
  udp.on('message', (msg, rinfo) => {
    const q = packet.decode(msg);
    const opt = (q.additionals ?? []).find((a) => a.type === 'OPT') as packet.OptAnswer | undefined;
    seen.push({ id: q.id ?? -1, rd: q.flag_rd, payload: opt?.udpPayloadSize });
    ports.add(rinfo.port);
    udp.send(packet.encode(reply(q, { answers: [{ type: 'A', name: 'a.test', ttl: 5, data: '192.0.2.1' }] })), rinfo.port, rinfo.address);
  });
  try {
    const r = new StubResolver({ servers: [{ host: '127.0.0.1', port: udp.address().port }], timeoutMs: 1000 });
    for (let i = 0; i < 8; i++) assert.deepEqual((await r.lookup('a.test', 'A')).records, ['192.0.2.1']);
    assert.ok(seen.every((q) => q.rd && q.payload === 1232));
    assert.ok(new Set(seen.map((q) => q.id)).size > 1, 'ids vary');
    assert.ok(ports.size > 1, 'source ports vary');
  } finally {
    udp.close();
  }
});

test('packets with a wrong id or question are ignored; the real answer is taken', async () => {
  await withServer(
    (q) => {
      const good = reply(q, { answers: [{ type: 'A', name: 'x.test', ttl: 60, data: '192.0.2.9' }] });
      const wrongId = { ...reply(q, { answers: [{ type: 'A', name: 'x.test', ttl: 60, data: '6.6.6.6' }] }), id: ((q.id ?? 0) + 1) & 0xffff };
      const wrongName = reply(q, { answers: [{ type: 'A', name: 'evil.test', ttl: 60, data: '6.6.6.6' }] });
      wrongName.questions = [{ type: 'A', name: 'evil.test', class: 'IN' }];
      const wrongType = reply(q, { answers: [] });
      wrongType.questions = [{ type: 'AAAA', name: 'x.test', class: 'IN' }];
      return [wrongId, wrongName, wrongType, Buffer.from([0xde, 0xad]), good];
    },
    async (s) => {
      const r = await stub(s).lookup('x.test', 'A');
      assert.deepEqual(r.records, ['192.0.2.9']);
    },
  );
});

test('a truncated UDP answer is retried over TCP', async () => {
  const big = Array.from({ length: 40 }, (_, i) => ({ type: 'TXT' as const, name: 'big.test', ttl: 60, data: `record-${i}-${'x'.repeat(60)}` }));
  await withServer(
    (q, transport) =>
      transport === 'udp' ? [{ ...reply(q), flags: packet.TRUNCATED_RESPONSE | packet.RECURSION_DESIRED }] : [reply(q, { answers: big })],
    async (s) => {
      const resolver = stub(s);
      const r = await resolver.lookup('big.test', 'TXT');
      assert.equal(r.records.length, 40);
      assert.deepEqual(r.records[7], [`record-7-${'x'.repeat(60)}`]);
      assert.deepEqual(
        s.received.map((q) => q.transport),
        ['udp', 'tcp'],
      );
      assert.equal(resolver.stats.truncated, 1);
      assert.equal(resolver.stats.tcpQueries, 1);
    },
  );
});

test('silence ends in TIMEOUT after the configured attempts', async () => {
  await withServer(
    () => [],
    async (s) => {
      const resolver = stub(s, 300, 2);
      await assert.rejects(resolver.lookup('slow.test', 'TXT'), isDnsError('TIMEOUT'));
      assert.equal(s.received.length, 3, 'one try plus two retries');
      assert.equal(resolver.stats.timeouts, 3);
    },
  );
});

test('retries rotate through the servers', async () => {
  const silent = await startFakeDns(() => []);
  const good = await startFakeDns((q) => [reply(q, { answers: [{ type: 'A', name: 'r.test', ttl: 60, data: '192.0.2.3' }] })]);
  try {
    const resolver = new StubResolver({
      servers: [
        { host: silent.host, port: silent.port },
        { host: good.host, port: good.port },
      ],
      timeoutMs: 600,
      retries: 1,
    });
    assert.deepEqual((await resolver.lookup('r.test', 'A')).records, ['192.0.2.3']);
    assert.equal(silent.received.length, 1);
    assert.equal(good.received.length, 1);
  } finally {
    await silent.close();
    await good.close();
  }
});

test('SERVFAIL and REFUSED are DnsErrors; another server is tried, the same one is not re-asked', async () => {
  for (const [rcode, code] of [
    [2, 'SERVFAIL'],
    [5, 'REFUSED'],
  ] as const) {
    await withServer(
      (q) => [reply(q, { rcode })],
      async (s) => {
        await assert.rejects(stub(s, 1000, 2).lookup('bad.test', 'TXT'), isDnsError(code));
        assert.equal(s.received.length, 1);
      },
    );
  }
  const failing = await startFakeDns((q) => [reply(q, { rcode: 2 })]);
  const good = await startFakeDns((q) => [reply(q, { answers: [{ type: 'A', name: 'f.test', ttl: 60, data: '192.0.2.4' }] })]);
  try {
    const resolver = new StubResolver({
      servers: [
        { host: failing.host, port: failing.port },
        { host: good.host, port: good.port },
      ],
      timeoutMs: 1000,
    });
    assert.deepEqual((await resolver.lookup('f.test', 'A')).records, ['192.0.2.4']);
  } finally {
    await failing.close();
    await good.close();
  }
});

test('FORMERR to an EDNS query is retried once without EDNS', async () => {
  await withServer(
    (q) => {
      const edns = (q.additionals ?? []).some((a) => a.type === 'OPT');
      return [edns ? reply(q, { rcode: 1 }) : reply(q, { answers: [{ type: 'A', name: 'old.test', ttl: 60, data: '192.0.2.5' }] })];
    },
    async (s) => {
      assert.deepEqual((await stub(s).lookup('old.test', 'A')).records, ['192.0.2.5']);
      assert.deepEqual(
        s.received.map((r) => r.edns),
        [true, false],
      );
    },
  );
  await withServer(
    (q) => [reply(q, { rcode: 1 })],
    async (s) => {
      await assert.rejects(stub(s).lookup('old.test', 'A'), isDnsError('FORMERR'));
    },
  );
});

test('NXDOMAIN and NODATA carry the negative TTL from the SOA (min of TTL and MINIMUM)', async () => {
  await withServer(
    (q) => {
      const name = q.questions?.[0].name;
      if (name === 'missing.test') return [reply(q, { rcode: 3, authorities: [soa('test', 900, 120)] })];
      if (name === 'empty.test') return [reply(q, { authorities: [soa('test', 45, 3600)] })];
      return [reply(q, { rcode: 3 })];
    },
    async (s) => {
      const r = stub(s);
      assert.deepEqual(await r.lookup('missing.test', 'TXT'), { records: [], nxdomain: true, ttl: 120 });
      assert.deepEqual(await r.lookup('empty.test', 'TXT'), { records: [], nxdomain: false, ttl: 45 });
      const noSoa = await r.lookup('nosoa.test', 'TXT');
      assert.equal(noSoa.nxdomain, true);
      assert.equal(noSoa.ttl, r.defaultNegativeTtl);
    },
  );
});

test('CNAME chains inside the answer are followed; loops are bounded', async () => {
  await withServer(
    (q) => {
      const name = q.questions?.[0].name;
      if (name === 'alias.test') {
        return [
          reply(q, {
            answers: [
              { type: 'CNAME', name: 'alias.test', ttl: 30, data: 'Middle.Test' },
              { type: 'CNAME', name: 'middle.test', ttl: 300, data: 'target.test' },
              { type: 'MX', name: 'target.test', ttl: 300, data: { preference: 10, exchange: 'mx.target.test' } },
            ],
          }),
        ];
      }
      if (name === 'dangling.test') {
        return [reply(q, { answers: [{ type: 'CNAME', name: 'dangling.test', ttl: 30, data: 'elsewhere.test' }], authorities: [soa('test', 600, 600)] })];
      }
      return [
        reply(q, {
          answers: [
            { type: 'CNAME', name: 'loop.test', ttl: 30, data: 'loop2.test' },
            { type: 'CNAME', name: 'loop2.test', ttl: 30, data: 'loop.test' },
          ],
        }),
      ];
    },
    async (s) => {
      const r = stub(s);
      assert.deepEqual(await r.lookup('alias.test', 'MX'), { records: [{ priority: 10, exchange: 'mx.target.test' }], nxdomain: false, ttl: 30 });
      assert.deepEqual(await r.lookup('dangling.test', 'MX'), { records: [], nxdomain: false, ttl: 30 });
      await assert.rejects(r.lookup('loop.test', 'MX'), isDnsError('FORMERR'));
    },
  );
});

test('A, AAAA and PTR records are returned as strings', async () => {
  await withServer(
    (q) => {
      const { name, type } = q.questions![0];
      const data = type === 'A' ? '192.0.2.1' : type === 'AAAA' ? '2001:db8::1' : 'host.example.test';
      return [reply(q, { answers: [{ type: type as 'A', name, ttl: 60, data }] })];
    },
    async (s) => {
      const r = stub(s);
      assert.deepEqual((await r.lookup('h.test', 'A')).records, ['192.0.2.1']);
      assert.deepEqual((await r.lookup('h.test', 'AAAA')).records, ['2001:db8::1']);
      assert.deepEqual((await r.lookup('1.2.0.192.in-addr.arpa', 'PTR')).records, ['host.example.test']);
    },
  );
});

test('names that cannot be sent are BADNAME, without a query', async () => {
  await withServer(
    () => [],
    async (s) => {
      const r = stub(s);
      for (const bad of ['a..test', '.test', '', `${'a'.repeat(64)}.test`, `${'abcdefghi.'.repeat(26)}test`]) {
        await assert.rejects(r.lookup(bad, 'TXT'), isDnsError('BADNAME'), bad);
      }
      assert.equal(s.received.length, 0);
    },
  );
});

test('an unreachable port is a NETWORK error, not a long wait', async () => {
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
  const port = udp.address().port;
  udp.close();
  const r = new StubResolver({ servers: [{ host: '127.0.0.1', port }], timeoutMs: 2000, retries: 1 });
  await assert.rejects(r.lookup('x.test', 'A'), isDnsError('NETWORK'));
});

test('a late answer to the first attempt is accepted while retries are out, within DNS_TIMEOUT_MS', async () => {
  // Budget 900 ms over 3 attempts: retries go out at 300 and 600 ms. The server answers only
  // the first query, 450 ms late (past timeout/3, within the timeout), and ignores the retries.
  let first = true;
  await withServer(
    (q) => {
      if (!first) return [];
      first = false;
      return [{ delayMs: 450, message: reply(q, { answers: [{ type: 'TXT', name: 'late.test', ttl: 60, data: 'v=spf1 -all' }] }) }];
    },
    async (s) => {
      const resolver = stub(s, 900, 2);
      const started = Date.now();
      const r = await resolver.lookup('late.test', 'TXT');
      assert.deepEqual(r.records, [['v=spf1 -all']]);
      assert.ok(Date.now() - started < 900, 'answered before the overall deadline');
      assert.ok(s.received.length >= 2, 'a retry went out while the first attempt still listened');
      assert.equal(resolver.stats.lateAnswers, 1);
      assert.equal(resolver.stats.timeouts, 0);
    },
  );
});

test('an answer after the overall deadline is not waited for', async () => {
  await withServer(
    (q) => [{ delayMs: 700, message: reply(q, { answers: [{ type: 'A', name: 'slow.test', ttl: 60, data: '192.0.2.1' }] }) }],
    async (s) => {
      const started = Date.now();
      await assert.rejects(stub(s, 300, 2).lookup('slow.test', 'A'), isDnsError('TIMEOUT'));
      assert.ok(Date.now() - started < 650, 'gave up at the deadline');
    },
  );
});

test('an aborted lookup rejects with ABORTED at once and sends nothing more', async () => {
  await withServer(
    () => [],
    async (s) => {
      const resolver = stub(s, 3000, 2);
      const controller = new AbortController();
      const pending = resolver.lookup('hang.test', 'TXT', { signal: controller.signal });
      await sleep(100);
      const started = Date.now();
      controller.abort();
      await assert.rejects(pending, (e: unknown) => e instanceof DnsError && e.code === 'ABORTED' && !e.temporary);
      assert.ok(Date.now() - started < 100);
      assert.equal(s.received.length, 1);
      await sleep(1200); // past the moment of the first retry (1000 ms)
      assert.equal(s.received.length, 1, 'no retry after the abort');
      assert.equal(resolver.stats.aborted, 1);
      await assert.rejects(resolver.lookup('x.test', 'TXT', { signal: controller.signal }), isDnsError('ABORTED'));
      assert.equal(s.received.length, 1, 'an already aborted signal sends nothing');
    },
  );
});

test('while a truncated answer comes over TCP, no UDP retry goes out', async () => {
  await withServer(
    (q, transport) =>
      transport === 'udp'
        ? [{ ...reply(q), flags: packet.TRUNCATED_RESPONSE | packet.RECURSION_DESIRED }]
        : [{ delayMs: 500, message: reply(q, { answers: [{ type: 'TXT', name: 'tc.test', ttl: 60, data: 'v=spf1 -all' }] }) }],
    async (s) => {
      const resolver = stub(s, 900, 2); // retries would be due at 300 and 600 ms
      assert.deepEqual((await resolver.lookup('tc.test', 'TXT')).records, [['v=spf1 -all']]);
      assert.deepEqual(
        s.received.map((q) => q.transport),
        ['udp', 'tcp'],
      );
    },
  );
});

test('a silent first server is counted, marked down after three unanswered queries, skipped, probed and back', async () => {
  let silentAnswers = false;
  const silent = await startFakeDns((q) => (silentAnswers ? [reply(q, { answers: [{ type: 'A', name: q.questions![0].name, ttl: 60, data: '192.0.2.7' }] })] : []));
  const good = await startFakeDns((q) => [reply(q, { answers: [{ type: 'A', name: q.questions![0].name, ttl: 60, data: '192.0.2.8' }] })]);
  const clock = { now: 0 };
  const changes: { index: number; up: boolean }[] = [];
  try {
    const resolver = new StubResolver({
      servers: [
        { host: silent.host, port: silent.port },
        { host: good.host, port: good.port },
      ],
      timeoutMs: 900, // attempts 300 ms apart
      retries: 2,
      health: { now: () => clock.now, reprobeMs: 10_000, onChange: (c) => changes.push({ index: c.index, up: c.up }) },
    });
    // Each lookup asks the silent server first, then the good one once the spacing has passed.
    for (let i = 0; i < 3; i++) assert.deepEqual((await resolver.lookup(`n${i}.test`, 'A')).records, ['192.0.2.8']);
    assert.equal(silent.received.length, 3);
    assert.equal(resolver.stats.timeouts, 3, 'each query the silent server left unanswered is a timeout');
    assert.equal(resolver.stats.serversDown, 1);
    assert.deepEqual(changes, [{ index: 0, up: false }]);

    // Down: lookups go straight to the good server.
    for (let i = 0; i < 5; i++) await resolver.lookup(`m${i}.test`, 'A');
    assert.equal(silent.received.length, 3, 'a down server is not asked');
    assert.equal(resolver.stats.timeouts, 3);

    // The interval passes: one lookup takes the silent server along as a probe, still unanswered.
    clock.now += 10_000;
    assert.deepEqual((await resolver.lookup('p1.test', 'A')).records, ['192.0.2.8'], 'the probe does not hold the lookup up');
    await resolver.lookup('p2.test', 'A');
    assert.equal(silent.received.length, 4, 'one probe per interval');
    await waitFor(() => resolver.stats.timeouts === 4, { timeoutMs: 5000, intervalMs: 10, what: 'the probe to time out' });
    assert.equal(resolver.stats.serversDown, 1);

    // It answers again: the next probe brings it back, and lookups ask it first again.
    silentAnswers = true;
    clock.now += 10_000;
    await resolver.lookup('p3.test', 'A');
    await waitFor(() => resolver.stats.serversDown === 0, { timeoutMs: 5000, intervalMs: 10, what: 'the server to be back' });
    assert.deepEqual(changes, [
      { index: 0, up: false },
      { index: 0, up: true },
    ]);
    assert.deepEqual((await resolver.lookup('b.test', 'A')).records, ['192.0.2.7']);
    assert.equal(resolver.stats.timeouts, 4);
  } finally {
    await silent.close();
    await good.close();
  }
});

test('when every server is down, a lookup still asks them all', async () => {
  const a = await startFakeDns(() => []);
  const b = await startFakeDns(() => []);
  try {
    const resolver = new StubResolver({
      servers: [
        { host: a.host, port: a.port },
        { host: b.host, port: b.port },
      ],
      timeoutMs: 300,
      retries: 1,
      health: { downAfter: 1 },
    });
    await assert.rejects(resolver.lookup('x.test', 'A'), isDnsError('TIMEOUT'));
    assert.equal(resolver.stats.serversDown, 2);
    await assert.rejects(resolver.lookup('y.test', 'A'), isDnsError('TIMEOUT'));
    assert.equal(a.received.length + b.received.length, 4, 'both asked again although both are down');
    assert.equal(resolver.stats.timeouts, 4);
  } finally {
    await a.close();
    await b.close();
  }
});

test('a query abandoned before the retry spacing is not a timeout and says nothing about its server', async () => {
  const slow = await startFakeDns((q) => [{ delayMs: 2000, message: reply(q, { answers: [{ type: 'A', name: 'q.test', ttl: 60, data: '192.0.2.1' }] }) }]);
  try {
    const resolver = new StubResolver({ servers: [{ host: slow.host, port: slow.port }], timeoutMs: 3000, retries: 2 });
    const controller = new AbortController();
    const pending = resolver.lookup('q.test', 'A', { signal: controller.signal });
    await waitFor(() => slow.received.length === 1, { timeoutMs: 5000, intervalMs: 10, what: 'the query' });
    controller.abort();
    await assert.rejects(pending, isDnsError('ABORTED'));
    assert.equal(resolver.stats.timeouts, 0, 'abandoned before the retry spacing: not a timeout');
  } finally {
    await slow.close();
  }
});
