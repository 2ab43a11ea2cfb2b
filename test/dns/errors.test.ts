import { test } from 'node:test';
import assert from 'node:assert/strict';
import { abortedError, DnsError, type DnsErrorCode } from '../../src/dns/types.js';

// What each code means to its callers: temporary errors become SPF temperror, BADNAME a
// permanent "no match", ABORTED neither (not an answer); only LOCAL_RESOURCE is this host's fault.
const CODES: Record<DnsErrorCode, { temporary: boolean; localFault: boolean }> = {
  SERVFAIL: { temporary: true, localFault: false },
  REFUSED: { temporary: true, localFault: false },
  TIMEOUT: { temporary: true, localFault: false },
  NETWORK: { temporary: true, localFault: false },
  LOCAL_RESOURCE: { temporary: true, localFault: true },
  FORMERR: { temporary: true, localFault: false },
  BADNAME: { temporary: false, localFault: false },
  ABORTED: { temporary: false, localFault: false },
};

test('every DnsError code is classified as temporary or not, and as a local fault or not', () => {
  for (const [code, expected] of Object.entries(CODES) as [DnsErrorCode, (typeof CODES)[DnsErrorCode]][]) {
    const e = new DnsError(code, 'x.example', 'TXT');
    assert.deepEqual({ temporary: e.temporary, localFault: e.localFault }, expected, code);
  }
});

test('a DnsError names the query and its code; abortedError is an ABORTED one', () => {
  const e = new DnsError('SERVFAIL', 'x.example', 'MX', 'from 192.0.2.53');
  assert.ok(e instanceof Error);
  assert.equal(e.name, 'DnsError');
  assert.equal(e.message, 'DNS MX x.example: SERVFAIL (from 192.0.2.53)');
  assert.deepEqual([e.code, e.qname, e.qtype], ['SERVFAIL', 'x.example', 'MX']);
  assert.equal(new DnsError('TIMEOUT', 'y.example', 'A').message, 'DNS A y.example: TIMEOUT');
  const aborted = abortedError('z.example', 'TXT');
  assert.deepEqual([aborted.code, aborted.temporary, aborted.message], ['ABORTED', false, 'DNS TXT z.example: ABORTED (abandoned by the caller)']);
});
