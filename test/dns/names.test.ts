import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalName } from '../../src/dns/names.js';
import { DnsError } from '../../src/dns/types.js';

test('canonical names: lower case, one trailing dot stripped, root kept', () => {
  assert.equal(canonicalName('Example.COM.', 'TXT'), 'example.com');
  assert.equal(canonicalName('example.com', 'TXT'), 'example.com');
  assert.equal(canonicalName('.', 'TXT'), '.');
  assert.equal(canonicalName('_spf.x-y.test', 'TXT'), '_spf.x-y.test');
  const label63 = 'a'.repeat(63);
  assert.equal(canonicalName(`${label63}.test`, 'A'), `${label63}.test`);
  const name253 = `${'a'.repeat(61)}.`.repeat(4) + 'b'.repeat(5);
  assert.equal(name253.length, 253);
  assert.equal(canonicalName(name253 + '.', 'A'), name253);
});

test('names that cannot be sent are BADNAME (permanent)', () => {
  const bad = ['', 'a..b', '.a', 'a.b..', `${'a'.repeat(64)}.test`, `${'a'.repeat(61)}.`.repeat(4) + 'b'.repeat(6), `${'é'.repeat(32)}.test`];
  for (const name of bad) {
    assert.throws(
      () => canonicalName(name, 'TXT'),
      (e: unknown) => e instanceof DnsError && e.code === 'BADNAME' && !e.temporary,
      JSON.stringify(name),
    );
  }
  // 21 two-octet characters are 42 octets: fine.
  assert.equal(canonicalName(`${'É'.repeat(21)}.test`, 'TXT'), `${'é'.repeat(21)}.test`);
});
