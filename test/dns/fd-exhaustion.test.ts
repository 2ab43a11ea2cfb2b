// Out of file descriptors (the test process's own soft limit lowered to its next free descriptor,
// with util-linux prlimit): a lookup fails as LOCAL_RESOURCE, naming EMFILE, not as a NETWORK
// error or a TIMEOUT; the cache does not remember it, so the next lookup asks again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { CachingResolver } from '../../src/dns/cache.js';
import { StubResolver } from '../../src/dns/stub-resolver.js';
import { DnsError } from '../../src/dns/types.js';
import { reply, startFakeDns } from './fake-dns-server.js';

function openFiles(): { soft: string; hard: string } {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))!;
  return { soft: m[1]!, hard: m[2]! };
}

/**
 * Runs `fn` with no descriptor left: the soft limit at the lowest free descriptor number. A few
 * descriptors are held meanwhile and closed before the limit is raised again, since running
 * prlimit needs some.
 */
async function withoutDescriptors<T>(fn: () => Promise<T>): Promise<T> {
  const { soft, hard } = openFiles();
  const held = Array.from({ length: 8 }, () => openSync('/dev/null', 'r'));
  // The kernel hands out the lowest free descriptor: that is the next one, and the limit.
  const free = openSync('/dev/null', 'r');
  closeSync(free);
  execFileSync('prlimit', [`--pid=${process.pid}`, `--nofile=${free}:${hard}`]);
  try {
    return await fn();
  } finally {
    for (const fd of held) closeSync(fd);
    execFileSync('prlimit', [`--pid=${process.pid}`, `--nofile=${soft}:${hard}`], { stdio: 'ignore' });
  }
}

test('a lookup that finds no descriptor for its socket is LOCAL_RESOURCE (EMFILE), and is not cached', async () => {
  const server = await startFakeDns((q) => [reply(q, { answers: [{ type: 'A', name: 'fd.test', ttl: 60, data: '192.0.2.9' }] })]);
  try {
    const stub = new StubResolver({ servers: [{ host: server.host, port: server.port }], timeoutMs: 1000, retries: 2 });
    const cache = new CachingResolver(stub);
    const err = await withoutDescriptors(() => cache.lookup('fd.test', 'A').then(() => undefined, (e: unknown) => e));
    assert.ok(err instanceof DnsError, String(err));
    assert.equal(err.code, 'LOCAL_RESOURCE');
    assert.equal(err.localFault, true);
    assert.equal(err.temporary, true);
    assert.match(err.message, /too many open files \(EMFILE\)/);
    assert.equal(server.received.length, 0, 'nothing was sent');
    const again = await cache.lookup('fd.test', 'A');
    assert.deepEqual(again.records, ['192.0.2.9']);
  } finally {
    await server.close();
  }
});
