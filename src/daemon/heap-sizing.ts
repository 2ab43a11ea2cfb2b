/**
 * V8's heap limits for the daemon. V8 reads them only when it starts, so every launcher this
 * project ships gives them to `node` (`npm start`, the Dockerfile's and the Kubernetes
 * ConfigMap's NODE_OPTIONS, the systemd unit); test/deploy checks that they all do.
 *
 * Left to its defaults V8 sizes the heap by the machine's memory: the young generation grows to
 * 2 × 16 MiB and the old generation is collected late, so RSS settles at 95-110 MiB after
 * 100,000 messages (Node 24: 250 MiB and more) around a live heap of 10-15 MiB. With these
 * flags: 70-74 MiB (`npm run bench`, both servers run with them). The old-space cap is far above
 * the largest live heap the daemon's bounds allow with their defaults (the DNS cache's 32 MiB,
 * the memos, 1000 sessions); a larger DNS_CACHE_MAX_BYTES needs a larger cap (see heapLimitWarning).
 */
export const HEAP_FLAGS = ['--max-old-space-size=192', '--max-semi-space-size=4'] as const;

/** The flag names of HEAP_FLAGS that neither the command line nor NODE_OPTIONS gives. */
export function missingHeapFlags(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const given = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].map((arg) => arg.split('=')[0]!.replace(/_/g, '-'));
  return HEAP_FLAGS.map((flag) => flag.split('=')[0]!).filter((name) => !given.includes(name));
}

/**
 * Why the heap limit is too small for the DNS cache bound, or undefined. The cache's estimate
 * runs close to the heap it really takes (src/dns/cache.ts, entryBytes); twice that plus 64 MiB
 * leaves room for everything else and for garbage between collections.
 */
export function heapLimitWarning(heapLimitBytes: number, dnsCacheMaxBytes: number): string | undefined {
  const needed = 2 * dnsCacheMaxBytes + 64 * 1024 * 1024;
  if (heapLimitBytes >= needed) return undefined;
  const mib = (n: number): number => Math.ceil(n / (1024 * 1024));
  return `V8's heap limit (${mib(heapLimitBytes)} MiB) leaves too little room for DNS_CACHE_MAX_BYTES=${dnsCacheMaxBytes}: raise --max-old-space-size to at least ${mib(needed)}, or lower DNS_CACHE_MAX_BYTES`;
}
