import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DnsError } from '../src/dns/types.js';

test('DnsError classifies BADNAME as permanent and SERVFAIL as temporary', () => {
  assert.equal(new DnsError('BADNAME', 'x', 'A').temporary, false);
  assert.equal(new DnsError('SERVFAIL', 'x', 'A').temporary, true);
});
