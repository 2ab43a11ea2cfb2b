import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { createMetrics } from '../../src/ops/metrics.js';
import { startOpsServer } from '../../src/ops/http-server.js';

test('metrics, liveness and readiness endpoints', async () => {
  const metrics = createMetrics({ defaultMetrics: false, version: '9.9.9' });
  let ready = false;
  metrics.watchDnsCache(() => ({ hits: 3, misses: 1, inflightJoins: 0, evictions: 0, entries: 2 }));
  metrics.judged({ action: 'reject', check: 'regex', ownership: 'foreign', result: 'restrictive', violation: true });
  const server = await startOpsServer('127.0.0.1', 0, { registry: metrics.registry, live: () => true, ready: () => ready });
  try {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
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
    await new Promise<void>((resolve) => server.close(() => resolve()));
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
