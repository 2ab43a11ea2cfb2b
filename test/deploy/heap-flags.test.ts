// V8 reads its heap limits only when node starts: every launcher this project ships must give
// the daemon the same ones (src/daemon/heap-sizing.ts), or its RSS grows with the machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { HEAP_FLAGS, heapLimitWarning, missingHeapFlags } from '../../src/daemon/heap-sizing.js';
import { repoPath } from '../support/paths.js';

const flags = HEAP_FLAGS.join(' ');
const read = (file: string): string => readFileSync(repoPath(file), 'utf8');

test('npm start, the image, the Kubernetes ConfigMap and the systemd unit all give the heap flags', () => {
  const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
  assert.ok(pkg.scripts.start!.includes(`node ${flags} dist/src/cli/main.js`), pkg.scripts.start);
  assert.match(read('Dockerfile'), new RegExp(`NODE_OPTIONS="${flags}"`));
  assert.match(read('deploy/kubernetes/configmap.yaml'), new RegExp(`NODE_OPTIONS: "${flags}"`));
  assert.match(read('deploy/systemd/sos-milter.service'), new RegExp(`^ExecStart=/usr/bin/node ${flags} /opt/sos-milter/dist/src/cli/main.js$`, 'm'));
});

test('missingHeapFlags reads the command line and NODE_OPTIONS as node does', () => {
  assert.deepEqual(missingHeapFlags([], undefined), ['--max-old-space-size', '--max-semi-space-size']);
  assert.deepEqual(missingHeapFlags([...HEAP_FLAGS], undefined), []);
  assert.deepEqual(missingHeapFlags([], flags), []);
  assert.deepEqual(missingHeapFlags(['--max_old_space_size=512'], ' --max-semi-space-size=8 '), [], 'underscores and other values count');
  assert.deepEqual(missingHeapFlags(['--max-old-space-size=192'], '--expose-gc'), ['--max-semi-space-size']);
});

test('the heap limit must leave room for the DNS cache bound', () => {
  const MiB = 1024 * 1024;
  assert.equal(heapLimitWarning(204 * MiB, 32 * MiB), undefined, 'the shipped flags and the default bound');
  const warning = heapLimitWarning(204 * MiB, 128 * MiB);
  assert.match(warning ?? '', /DNS_CACHE_MAX_BYTES=134217728.*--max-old-space-size to at least 320/);
});

/** Starts the daemon, returns its log up to the start-up line, and stops it (bounded: 15 s). */
async function startupLog(nodeArgs: string[]): Promise<string> {
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', MILTER_SOCKET: 'inet:0@127.0.0.1', DNS_SERVERS: '127.0.0.1:9' };
  const child = spawn(process.execPath, [...nodeArgs, repoPath('dist/src/cli/main.js')], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no start-up line within 15 s:\n${out}`)), 15_000);
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (!out.includes('Startup sos-milter')) return;
        clearTimeout(timer);
        resolve();
      });
      child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`exited ${code}:\n${out}`))));
    });
  } finally {
    child.kill('SIGKILL');
  }
  return out;
}

test('the daemon says at start-up when it runs without the heap flags, and not when it has them', async () => {
  assert.match(await startupLog([]), /V8 sizes the heap by the machine's memory \(no --max-old-space-size, --max-semi-space-size\)/);
  assert.doesNotMatch(await startupLog([...HEAP_FLAGS]), /V8 sizes the heap/);
  assert.match(await startupLog(['--max-old-space-size=64', '--max-semi-space-size=4']), /heap limit \(\d+ MiB\) leaves too little room for DNS_CACHE_MAX_BYTES=33554432/);
});
