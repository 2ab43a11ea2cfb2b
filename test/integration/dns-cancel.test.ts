// Issue 7: the deadline cancels the work behind it. An SPF evaluation whose includes lead to
// names that never get an answer (Knot forwards them to a silent server) is abandoned through
// its AbortSignal; the queries Knot receives are counted: none arrive after the abort, while
// the same evaluation left alone keeps retrying.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { knotSkipReason, startKnot, type KnotInstance } from '../support/knot.js';
import { CachingResolver } from '../../src/dns/cache.js';
import { StubResolver } from '../../src/dns/stub-resolver.js';
import { EvaluationAbortedError, SpfEvaluator } from '../../src/spf/index.js';
import { sleep, waitFor } from '../support/wait.js';

// Three attempts, 1000 ms apart, each listening until 3000 ms.
const DNS_TIMEOUT_MS = 3000;
// Knot's proxy gives up after this and then answers SERVFAIL, so it must outlast the client's
// budget. Knot counts a query in mod-stats once it has answered it: a forwarded query counts
// when the proxy gives up, so counts are read after that has passed for every query.
const PROXY_TIMEOUT_MS = DNS_TIMEOUT_MS + 500;
const SETTLE_MS = PROXY_TIMEOUT_MS + 500;

const ZONE = [
  '$ORIGIN cancel.test.',
  '$TTL 60',
  '@ SOA ns hostmaster 1 3600 600 86400 60',
  '@ NS ns',
  'ns A 127.0.0.1',
  '@ TXT "v=spf1 include:a.hang.test include:b.hang.test include:c.hang.test -all"',
  'control TXT "v=spf1 include:d.hang.test include:e.hang.test -all"',
  '',
].join('\n');

describe('a deadline cancels its DNS queries, counted at Knot', { skip: knotSkipReason(), timeout: 60_000 }, () => {
  let knot: KnotInstance;
  let stub: StubResolver;
  let spf: SpfEvaluator;

  before(async () => {
    knot = await startKnot({ zones: { 'cancel.test': ZONE }, timeoutNames: ['hang.test'], blackholeTimeoutMs: PROXY_TIMEOUT_MS });
    stub = new StubResolver({ servers: [{ host: knot.host, port: knot.port }], timeoutMs: DNS_TIMEOUT_MS, retries: 2 });
    spf = new SpfEvaluator({ resolver: new CachingResolver(stub) });
  });
  after(async () => {
    await knot?.close();
  });

  /** Queries Knot has answered so far (knotc may find no control socket just after start: retried). */
  async function queryCount(): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await knot.queryCount();
      } catch (e) {
        if (attempt >= 50) throw e;
        await sleep(100);
      }
    }
  }

  /** Queries Knot has answered so far, once every query sent until now has settled. */
  async function settledCount(): Promise<number> {
    await sleep(SETTLE_MS);
    return queryCount();
  }

  test('after the abort no further query reaches Knot', async () => {
    const start = await queryCount(); // nothing forwarded yet: every count has settled
    const deadline = new AbortController();
    const pending = spf.checkHostForIps('u@cancel.test', 'h.example', ['192.0.2.1', '2001:db8::1'], { signal: deadline.signal });
    // Wait until the record's query and the first query for a.hang.test are out (bounded), then
    // abandon the evaluation; its first retry would be due 1000 ms after that query.
    await waitFor(() => stub.stats.udpQueries, { timeoutMs: 10_000, intervalMs: 10, what: 'two queries out', until: (n) => n >= 2 });
    deadline.abort(new Error('assessment deadline'));
    const sentBeforeAbort = stub.stats.udpQueries;
    assert.ok(sentBeforeAbort >= 2, `queries sent: ${sentBeforeAbort}`);
    await assert.rejects(pending, (e: unknown) => e instanceof EvaluationAbortedError && e.code === 'ABORTED');
    // Past both retry moments and the whole DNS budget, with every query sent until then settled.
    await sleep(DNS_TIMEOUT_MS);
    const total = (await settledCount()) - start;
    assert.equal(stub.stats.udpQueries, sentBeforeAbort, 'nothing sent after the abort');
    assert.equal(total, sentBeforeAbort, 'Knot received exactly the queries sent before the abort: no retry, no further include');
    assert.equal(stub.stats.aborted, 1);
  });

  test('left alone, the same kind of evaluation keeps asking (the control)', async () => {
    const start = await queryCount(); // the first test waited until its queries settled
    const sentBefore = stub.stats.udpQueries;
    const deadline = new AbortController();
    const pending = spf.checkHostForIps('u@control.cancel.test', 'h.example', ['192.0.2.1'], { signal: deadline.signal });
    pending.catch(() => {});
    // The record, then the first attempt for d.hang.test and its retries 1000 and 2000 ms later.
    await waitFor(() => stub.stats.udpQueries - sentBefore, { timeoutMs: 10_000, intervalMs: 10, what: 'four queries out', until: (n) => n >= 4 });
    deadline.abort();
    await assert.rejects(pending, EvaluationAbortedError);
    const sent = stub.stats.udpQueries - sentBefore;
    assert.equal(sent, 4, 'record + three attempts for d.hang.test');
    assert.equal((await settledCount()) - start, sent, 'and Knot received them all');
  });
});
