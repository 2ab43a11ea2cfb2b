import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type AddressInfo } from 'node:net';
import { createMetrics } from '../../src/ops/metrics.js';
import { startOpsServer } from '../../src/ops/http-server.js';
import { cachedRender } from '../../src/ops/render-cache.js';
import { sleep } from '../support/wait.js';

test('metrics, liveness and readiness endpoints', async () => {
  const metrics = createMetrics({ defaultMetrics: false, version: '9.9.9', scrapeMaxAgeMs: 0 });
  let ready = false;
  metrics.watchDnsCache(() => ({ hits: 3, misses: 1, inflightJoins: 0, evictions: 0, entries: 2 }));
  metrics.judged({ action: 'reject', check: 'regex', ownership: 'foreign', result: 'restrictive', violation: true });
  // A cache period of 0: every scrape renders, so the body follows the counts at once.
  const ops = await startOpsServer('127.0.0.1', 0, { metrics, live: () => true, ready: () => ready });
  try {
    const base = `http://127.0.0.1:${(ops.server.address() as AddressInfo).port}`;
    const body = await (await fetch(`${base}/metrics`)).text();
    assert.match(body, /^sos_milter_messages_total\{action="reject",check="regex",ownership="foreign"\} 1$/m);
    assert.match(body, /^sos_milter_spf_results_total\{check="regex",result="restrictive"\} 1$/m);
    assert.match(body, /^sos_milter_spf_violations_total\{check="regex",ownership="foreign"\} 1$/m);
    assert.match(body, /^# TYPE sos_milter_dns_cache_hits_total counter$/m);
    assert.match(body, /^sos_milter_dns_cache_hits_total 3$/m);
    assert.match(body, /^sos_milter_dns_cache_entries 2$/m);
    assert.doesNotMatch(body, /sos_milter_dns_cache_bytes/, 'not counted by this cache, so not exported');
    assert.match(body, new RegExp(`^sos_milter_build_info\\{version="9.9.9",node="${process.versions.node}"\\} 1$`, 'm'));
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.equal((await fetch(`${base}/readyz`)).status, 503);
    ready = true;
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    assert.equal((await fetch(`${base}/nothing`)).status, 404);
    assert.equal((await fetch(`${base}/metrics`, { method: 'POST' })).status, 405);
  } finally {
    await ops.close();
  }
});

test('scrapes within the cache period share one render; concurrent scrapes wait for the one running', async () => {
  let clock = 0;
  let renders = 0;
  let release: (() => void) | undefined;
  const cache = cachedRender(
    async () => {
      renders++;
      if (renders === 1) await new Promise<void>((r) => (release = r));
      return `body ${renders}`;
    },
    1000,
    () => clock,
  );
  const first = Array.from({ length: 50 }, () => cache.get());
  await new Promise((r) => setImmediate(r));
  assert.equal(renders, 1, 'one render for 50 concurrent scrapes');
  release!();
  assert.deepEqual(new Set(await Promise.all(first)), new Set(['body 1']));
  clock = 999;
  assert.equal(await cache.get(), 'body 1');
  assert.equal(cache.renders, 1);
  clock = 1000;
  assert.equal(await cache.get(), 'body 2');
  assert.equal(cache.renders, 2);
});

test('a failed render is not cached and does not block the next scrape', async () => {
  let fail = true;
  const cache = cachedRender(() => {
    if (fail) throw new Error('boom');
    return Promise.resolve('ok');
  }, 1000, () => 0);
  await assert.rejects(cache.get(), /boom/);
  fail = false;
  assert.equal(await cache.get(), 'ok');
});

test('/metrics through the HTTP server is rendered once per period, the render count exported', async () => {
  const clock = { now: 0 };
  const metrics = createMetrics({ defaultMetrics: false, now: () => clock.now });
  const ops = await startOpsServer('127.0.0.1', 0, { metrics, live: () => true, ready: () => true });
  try {
    const base = `http://127.0.0.1:${(ops.server.address() as AddressInfo).port}`;
    const bodies = await Promise.all(Array.from({ length: 20 }, async () => (await fetch(`${base}/metrics`)).text()));
    assert.equal(new Set(bodies).size, 1);
    assert.match(bodies[0]!, /^sos_milter_metrics_renders_total 1$/m);
    metrics.judged({ action: 'pass', check: 'regex', ownership: 'foreign' });
    assert.doesNotMatch(await (await fetch(`${base}/metrics`)).text(), /action="pass"/, 'served from the cache');
    clock.now = 1000;
    const fresh = await (await fetch(`${base}/metrics`)).text();
    assert.match(fresh, /action="pass"/);
    assert.match(fresh, /^sos_milter_metrics_renders_total 2$/m);
  } finally {
    await ops.close();
  }
});

test('close() cuts a half-sent request and an idle keep-alive connection instead of waiting for them', async () => {
  const ops = await startOpsServer('127.0.0.1', 0, { live: () => true, ready: () => true }, { requestTimeoutMs: 60_000, keepAliveTimeoutMs: 60_000 });
  const port = (ops.server.address() as AddressInfo).port;
  const open = (): Promise<{ closed: Promise<void>; sock: ReturnType<typeof connect> }> =>
    new Promise((resolve) => {
      const sock = connect(port, '127.0.0.1', () => resolve({ sock, closed: new Promise((r) => sock.once('close', () => r())) }));
      sock.on('error', () => undefined);
      sock.on('data', () => undefined);
    });
  const half = await open();
  half.sock.write('GET /metrics HTTP/1.1\r\nHost: x\r\n');
  const keepAlive = await open();
  keepAlive.sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  await sleep(50);
  // Timeouts of a minute: only close() itself can end these connections within the test's bound.
  await ops.close();
  await Promise.all([half.closed, keepAlive.closed]);
});

test('a request that never completes is cut at the request timeout', async () => {
  const ops = await startOpsServer('127.0.0.1', 0, { live: () => true, ready: () => true }, { requestTimeoutMs: 300 });
  try {
    const port = (ops.server.address() as AddressInfo).port;
    const sock = connect(port, '127.0.0.1');
    sock.on('error', () => undefined);
    const reply: Buffer[] = [];
    sock.on('data', (d: Buffer) => reply.push(d));
    sock.write('GET /metrics HTTP/1.1\r\nHost: x\r\n');
    // Bounded generously: the point is that the server ends it, not how fast.
    const closed = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 10_000);
      sock.once('close', () => {
        clearTimeout(t);
        resolve(true);
      });
    });
    assert.ok(closed, 'the server closed the connection');
    // Node answers 408 at the request timeout, or the socket's inactivity timeout cuts first.
    assert.match(Buffer.concat(reply).toString(), /^$|^HTTP\/1\.1 408/);
  } finally {
    await ops.close();
  }
});

test('mirrored counters follow the part and a second watch replaces the reader', async () => {
  const metrics = createMetrics({ defaultMetrics: false });
  let connected = false;
  let errors = 0;
  const stats = () => ({ lookups: 5, cacheHits: 1, sharedLookups: 0, searches: 4, errors, timeouts: 1, connectAttempts: 2, connectFailures: 1, reconnects: 0, connected });
  metrics.watchLdap(stats);
  let body = await metrics.registry.metrics();
  assert.match(body, /^sos_milter_ldap_connected 0$/m);
  assert.match(body, /^sos_milter_ldap_errors_total\{kind="error"\} 0$/m);
  connected = true;
  errors = 7;
  body = await metrics.registry.metrics();
  assert.match(body, /^sos_milter_ldap_connected 1$/m);
  assert.match(body, /^sos_milter_ldap_errors_total\{kind="error"\} 7$/m);
  assert.match(body, /^sos_milter_ldap_errors_total\{kind="timeout"\} 1$/m);
  metrics.watchLdap(() => ({ ...stats(), searches: 40 }));
  assert.match(await metrics.registry.metrics(), /^sos_milter_ldap_searches_total 40$/m);
});

test('timed lookups record their duration and outcome, and pass answers and errors through', async () => {
  const metrics = createMetrics({ defaultMetrics: false });
  const port = metrics.timeOwnDomainLookups({
    isOwnDomain: (domain) => domain === 'bad.example' ? Promise.reject(new Error('down')) : Promise.resolve({ own: true, source: domain === 'hit.example' ? 'cache' : 'ldap' }),
  });
  assert.deepEqual(await port.isOwnDomain('good.example'), { own: true, source: 'ldap' });
  await port.isOwnDomain('hit.example');
  await port.isOwnDomain('hit.example');
  await assert.rejects(port.isOwnDomain('bad.example'), /down/);
  const body = await metrics.registry.metrics();
  assert.match(body, /^sos_milter_ldap_lookup_duration_seconds_count\{outcome="ldap"\} 1$/m);
  assert.match(body, /^sos_milter_ldap_lookup_duration_seconds_count\{outcome="cache"\} 2$/m);
  assert.match(body, /^sos_milter_ldap_lookup_duration_seconds_count\{outcome="error"\} 1$/m);
});

test("Node's default metrics keep their standard names", async () => {
  const body = await createMetrics().registry.metrics();
  assert.match(body, /^# TYPE process_resident_memory_bytes gauge$/m);
  assert.match(body, /^# TYPE nodejs_eventloop_lag_seconds gauge$/m);
  assert.doesNotMatch(body, /sos_milter_(process|nodejs)_/);
});
