import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DnsServersError, parseResolvConf, parseServers, serversFromEnv, systemServers } from '../../src/dns/servers.js';

test('parses IPv4 with and without port, trimming whitespace', () => {
  assert.deepEqual(parseServers(' 127.0.0.1 , 10.0.0.2:5353'), [
    { host: '127.0.0.1', port: 53 },
    { host: '10.0.0.2', port: 5353 },
  ]);
});

test('parses bracketed and bare IPv6', () => {
  assert.deepEqual(parseServers('[::1]:5353,::1,[2001:db8::53]'), [
    { host: '::1', port: 5353 },
    { host: '::1', port: 53 },
    { host: '2001:db8::53', port: 53 },
  ]);
});

test('rejects bad entries with a typed error naming the entry', () => {
  const cases: [string, RegExp][] = [
    ['', /no servers/],
    ['127.0.0.1,', /empty entry/],
    ['127.0.0.1:0', /out of range/],
    ['127.0.0.1:65536', /out of range/],
    ['127.0.0.1:abc', /not a number/],
    ['dns.example.com', /not an IPv4 address/],
    ['[::1', /missing closing bracket/],
    ['[::1]5353', /expected ":port"/],
    ['[127.0.0.1]:53', /not an IPv6 address/],
    ['1:2:3', /not an IPv6 address/],
    ['300.1.1.1', /not an IPv4 address/],
  ];
  for (const [input, message] of cases) {
    assert.throws(
      () => parseServers(input),
      (e: unknown) => e instanceof DnsServersError && message.test(e.message),
      `input ${JSON.stringify(input)}`,
    );
  }
  assert.throws(() => parseServers('1.2.3.4, bogus'), (e: unknown) => e instanceof DnsServersError && e.entry === 'bogus');
});

test('resolv.conf nameservers are read, other lines and hostnames ignored', () => {
  const text = '# comment\nsearch example.com\nnameserver 192.0.2.1\nnameserver  2001:db8::1\nnameserver not-an-ip\noptions ndots:2\n';
  assert.deepEqual(parseResolvConf(text), [
    { host: '192.0.2.1', port: 53 },
    { host: '2001:db8::1', port: 53 },
  ]);
});

test('system servers come from the given resolv.conf, else from node:dns', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sos-dns-'));
  try {
    const path = join(dir, 'resolv.conf');
    writeFileSync(path, 'nameserver 192.0.2.7\n');
    assert.deepEqual(systemServers(path), [{ host: '192.0.2.7', port: 53 }]);
    const fallback = systemServers(join(dir, 'missing'));
    assert.ok(Array.isArray(fallback));
    for (const s of fallback) assert.equal(typeof s.port, 'number');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('DNS_SERVERS wins over the system default when set', () => {
  assert.deepEqual(serversFromEnv('127.0.0.2:53'), [{ host: '127.0.0.2', port: 53 }]);
  assert.deepEqual(serversFromEnv(undefined), systemServers());
});
