/** Where the benchmark's milter child listens: loopback TCP (default) or a UNIX socket (MILTER_BENCH_SOCKET=unix). */
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type BenchSocketKind = 'inet' | 'unix';

/** How the load client reaches the child. */
export type BenchAddress = { port: number; path?: undefined } | { path: string; port?: undefined };

export function benchSocketKind(): BenchSocketKind {
  const v = process.env['MILTER_BENCH_SOCKET'] ?? 'inet';
  if (v !== 'inet' && v !== 'unix') throw new Error(`MILTER_BENCH_SOCKET must be inet or unix, not ${v}`);
  return v;
}

/** A fresh socket path in a private temp dir, removed when the process exits. */
export function benchUnixPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'milter-bench-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'milter.sock');
}

/** Listens a plain net.Server the way the milter server would (used by the floor child). */
export function benchListen(server: Server, kind: BenchSocketKind): Promise<BenchAddress> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    if (kind === 'unix') {
      const path = benchUnixPath();
      server.listen({ path, backlog: 2048 }, () => resolve({ path }));
    } else {
      server.listen({ port: 0, host: '127.0.0.1', backlog: 2048 }, () => {
        const a = server.address();
        resolve({ port: typeof a === 'object' && a ? a.port : 0 });
      });
    }
  });
}
