import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { createMetrics } from '../../src/ops/metrics.js';
import { startOpsServer } from '../../src/ops/http-server.js';

test('metrics, liveness and readiness endpoints', async () => {
  const metrics = createMetrics({ defaultMetrics: false });
  let ready = false;
  metrics.addStatsSource('dns_cache', 'DNS cache counters', () => ({ hits: 3, connected: true }));
  metrics.messages.inc({ action: 'reject', check: 'regex', ownership: 'not-asked' });
  const server = await startOpsServer('127.0.0.1', 0, { registry: metrics.registry, live: () => true, ready: () => ready });
  try {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const body = await (await fetch(`${base}/metrics`)).text();
    assert.match(body, /sos_milter_messages_total\{action="reject",check="regex",ownership="not-asked"\} 1/);
    assert.match(body, /sos_milter_dns_cache\{key="hits"\} 3/);
    assert.match(body, /sos_milter_dns_cache\{key="connected"\} 1/);
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
