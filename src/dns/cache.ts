import { LRUCache } from 'lru-cache';
import { abortedError, DnsError, type LookupOptions, type LookupResult, type RecordTypeMap, type Resolver, type RRType, type TxtRecord } from './types.js';
import { canonicalName } from './names.js';
import { boundTxtAnswer } from './txt-bound.js';

export interface CacheOptions {
  /** Lower bound for any cached TTL, seconds (default 5): a burst of mail for a TTL-0 domain costs one query. */
  minTtl?: number;
  /** Upper bound for any cached TTL, seconds (default 86400). */
  maxTtl?: number;
  /**
   * Seconds to remember a temporary DnsError (SERVFAIL, TIMEOUT, ...) so that an outage does
   * not multiply upstream queries (default 5; 0 disables).
   */
  errorTtl?: number;
  /**
   * Bound on the estimated memory of all entries, bytes (DNS_CACHE_MAX_BYTES, default 32 MiB).
   * The least recently used entries go first.
   */
  maxBytes?: number;
  /** Answers estimated larger than this are returned but not kept (default maxBytes / 8). */
  maxEntryBytes?: number;
  /** How often expired entries are dropped without being asked for, ms (default 10000; an unref'd timer). */
  purgeIntervalMs?: number;
  /** Clock in milliseconds, injectable for tests (default: performance.now, which never jumps). */
  now?: () => number;
}

export interface CacheStats {
  /** Lookups answered from the cache (positive, negative or remembered error). */
  hits: number;
  /** Lookups not in the cache: they either started an upstream query or joined one. */
  misses: number;
  upstreamQueries: number;
  /** Misses that shared an identical upstream query already in flight. */
  inflightJoins: number;
  /** Entries dropped to stay within maxBytes. */
  evictions: number;
  /** Entries dropped because their TTL ran out (by the purge timer or when asked for). */
  expired: number;
  /** Upstream queries cancelled because every lookup waiting for them was abandoned. */
  cancelled: number;
  /** Entries held now. */
  entries: number;
  /** Estimated bytes held now (see entryBytes); never above maxBytes. */
  bytes: number;
  maxBytes: number;
  /** Upstream queries in flight now. */
  inflight: number;
}

export const DEFAULT_CACHE_OPTIONS = { minTtl: 5, maxTtl: 86400, errorTtl: 5, maxBytes: 32 * 1024 * 1024, purgeIntervalMs: 10_000 } as const;

/** A cached answer, or a remembered temporary error. */
type Entry = LookupResult<unknown> | DnsError;

/** An upstream query and the lookups waiting for it. */
interface Flight {
  promise: Promise<LookupResult<unknown>>;
  controller: AbortController;
  /** Lookups still waiting; when the last one with a signal is abandoned, the query is cancelled. */
  waiters: number;
}

type Counters = Omit<CacheStats, 'entries' | 'bytes' | 'maxBytes' | 'inflight'>;

/**
 * A cache in front of any Resolver, bounded in bytes (estimated, see entryBytes), with per-entry
 * TTLs, expired entries purged by an unref'd timer, TXT answers cut to what SPF and DMARC can use
 * (txt-bound.ts), and one upstream query per question in flight.
 *
 * Storage is lru-cache, in place of the former hand-written LRU list: measured with the warm
 * evaluation of bench/spf-bench.ts (11 cached lookups), interleaved on the shared 2-core VM
 * (load 12), the medians were 16-23 µs with the hand-written cache and 20-26 µs with lru-cache,
 * about 0.3 µs per lookup. The daemon makes one or two cached lookups per message in regex
 * mode, so the library costs under 1 µs per message: too little to keep a cache of our own.
 *
 * The in-flight sharing is kept here because it must outlive any one
 * waiter: a lookup abandoned through its signal stops waiting at once, while the query goes on
 * for the other lookups that share it, and is cancelled only when no one waits any more
 * (lru-cache's fetch() ties the query to the first caller's signal).
 *
 * Cached results are shared, so callers must not mutate them; the `ttl` of a cached result is
 * the clamped TTL as received, not the time left.
 */
export class CachingResolver implements Resolver {
  readonly upstream: Resolver;
  private readonly counters: Counters = { hits: 0, misses: 0, upstreamQueries: 0, inflightJoins: 0, evictions: 0, expired: 0, cancelled: 0 };
  private readonly minTtl: number;
  private readonly maxTtl: number;
  private readonly errorTtl: number;
  private readonly maxBytes: number;
  private readonly entries: LRUCache<string, Entry>;
  private readonly inflight = new Map<string, Flight>();
  private purgeTimer: NodeJS.Timeout | undefined;

  constructor(upstream: Resolver, options: CacheOptions = {}) {
    this.upstream = upstream;
    this.minTtl = options.minTtl ?? DEFAULT_CACHE_OPTIONS.minTtl;
    this.maxTtl = options.maxTtl ?? DEFAULT_CACHE_OPTIONS.maxTtl;
    this.errorTtl = options.errorTtl ?? DEFAULT_CACHE_OPTIONS.errorTtl;
    this.maxBytes = options.maxBytes ?? DEFAULT_CACHE_OPTIONS.maxBytes;
    const purgeIntervalMs = options.purgeIntervalMs ?? DEFAULT_CACHE_OPTIONS.purgeIntervalMs;
    if (this.minTtl < 0 || this.maxTtl < this.minTtl) throw new RangeError('cache TTLs need 0 <= minTtl <= maxTtl');
    if (this.errorTtl < 0) throw new RangeError('cache errorTtl must not be negative');
    const maxEntryBytes = options.maxEntryBytes ?? Math.floor(this.maxBytes / 8);
    if (!Number.isSafeInteger(this.maxBytes) || this.maxBytes < 1) throw new RangeError('cache maxBytes must be a positive integer');
    if (!Number.isSafeInteger(maxEntryBytes) || maxEntryBytes < 1 || maxEntryBytes > this.maxBytes) {
      throw new RangeError('cache maxEntryBytes must be an integer from 1 to maxBytes');
    }
    if (!(purgeIntervalMs > 0)) throw new RangeError('cache purgeIntervalMs must be positive');
    this.entries = new LRUCache<string, Entry>({
      maxSize: this.maxBytes,
      // One answer may not push out much of the cache; larger ones are not kept.
      maxEntrySize: maxEntryBytes,
      // lru-cache's default, ttlResolution 1, arms a 1 ms timer each time it reads the clock to
      // save reading it again: about one timer (and one more wake-up) per message at 1000
      // messages/s. Reading the clock is cheaper (`npm run bench`, paced).
      ttlResolution: 0,
      ...(options.now ? { perf: { now: options.now } } : {}),
      dispose: (_value, _key, reason) => {
        if (reason === 'evict') this.counters.evictions++;
        else if (reason === 'expire') this.counters.expired++;
      },
    });
    // One timer for the whole cache (lru-cache's ttlAutopurge would arm one per entry). It holds
    // the cache weakly, so a cache dropped without close() is still collected.
    const self = new WeakRef<CachingResolver>(this);
    const timer: NodeJS.Timeout = setInterval(() => {
      const cache = self.deref();
      if (cache) cache.purgeExpired();
      else clearInterval(timer);
    }, purgeIntervalMs);
    timer.unref();
    this.purgeTimer = timer;
  }

  /** Counters and what the cache holds now (entries, estimated bytes, the bound). */
  stats(): CacheStats {
    return { ...this.counters, entries: this.entries.size, bytes: this.entries.calculatedSize, maxBytes: this.maxBytes, inflight: this.inflight.size };
  }

  get size(): number {
    return this.entries.size;
  }

  /** Drops every expired entry now; returns how many went. The purge timer calls this. */
  purgeExpired(): number {
    const before = this.counters.expired;
    this.entries.purgeStale();
    return this.counters.expired - before;
  }

  clear(): void {
    this.entries.clear();
  }

  /** Stops the purge timer (it is unref'd, so this is only needed to drop a cache early). */
  close(): void {
    clearInterval(this.purgeTimer);
    this.purgeTimer = undefined;
    this.entries.clear();
  }

  lookup<T extends RRType>(name: string, type: T, options?: LookupOptions): Promise<LookupResult<RecordTypeMap[T]>> {
    const signal = options?.signal;
    let key: string;
    try {
      if (signal?.aborted) throw abortedError(name, type);
      key = `${type} ${canonicalName(name, type)}`;
    } catch (e) {
      return Promise.reject(e);
    }
    const entry = this.entries.get(key);
    if (entry !== undefined) {
      this.counters.hits++;
      if (entry instanceof DnsError) return Promise.reject(entry);
      return Promise.resolve(entry as LookupResult<RecordTypeMap[T]>);
    }
    this.counters.misses++;
    let flight = this.inflight.get(key);
    if (flight !== undefined) this.counters.inflightJoins++;
    else flight = this.startFlight(key, name, type);
    if (signal === undefined) {
      // Never abandoned: the query runs to its end whoever else gives up.
      flight.waiters++;
      return flight.promise as Promise<LookupResult<RecordTypeMap[T]>>;
    }
    return this.wait(key, flight, signal, name, type) as Promise<LookupResult<RecordTypeMap[T]>>;
  }

  cachedAnswer<T extends RRType>(name: string, type: T): LookupResult<RecordTypeMap[T]> | undefined {
    let key: string;
    try {
      key = `${type} ${canonicalName(name, type)}`;
    } catch {
      return undefined;
    }
    const entry = this.entries.get(key);
    if (entry === undefined || entry instanceof DnsError) return undefined;
    // An answer given is a hit, however it was asked for.
    this.counters.hits++;
    return entry as LookupResult<RecordTypeMap[T]>;
  }

  private startFlight(key: string, name: string, type: RRType): Flight {
    const controller = new AbortController();
    const flight: Flight = { promise: undefined as unknown as Flight['promise'], controller, waiters: 0 };
    flight.promise = this.query(key, name, type, controller.signal).finally(() => {
      if (this.inflight.get(key) === flight) this.inflight.delete(key);
    });
    // Rejections reach every waiter through their own chains; an abandoned flight has none.
    flight.promise.catch(() => {});
    this.inflight.set(key, flight);
    return flight;
  }

  private wait(key: string, flight: Flight, signal: AbortSignal, name: string, type: RRType): Promise<LookupResult<unknown>> {
    flight.waiters++;
    return new Promise((resolve, reject) => {
      let waiting = true;
      const onAbort = (): void => {
        if (!waiting) return;
        waiting = false;
        reject(abortedError(name, type));
        if (--flight.waiters === 0) {
          // No one else wants the answer: stop the query (no more retries), and let the next
          // lookup of this question start afresh.
          if (this.inflight.get(key) === flight) this.inflight.delete(key);
          this.counters.cancelled++;
          flight.controller.abort();
        }
      };
      signal.addEventListener('abort', onAbort, { once: true });
      const done = (): boolean => {
        signal.removeEventListener('abort', onAbort);
        if (!waiting) return false;
        waiting = false;
        flight.waiters--;
        return true;
      };
      flight.promise.then(
        (result) => done() && resolve(result),
        (e: unknown) => done() && reject(e),
      );
    });
  }

  private async query(key: string, name: string, type: RRType, signal: AbortSignal): Promise<LookupResult<unknown>> {
    this.counters.upstreamQueries++;
    try {
      let result: LookupResult<unknown> = await this.upstream.lookup(name, type, { signal });
      if (type === 'TXT') result = boundTxtAnswer(result as LookupResult<TxtRecord>);
      const ttl = Math.min(this.maxTtl, Math.max(this.minTtl, result.ttl));
      const stored = ttl === result.ttl ? result : { ...result, ttl };
      if (ttl > 0) this.entries.set(key, stored, { ttl: ttl * 1000, size: entryBytes(key, stored) });
      return stored;
    } catch (e) {
      // A local fault (no file descriptor) says nothing about the name: the next lookup may succeed.
      if (e instanceof DnsError && e.temporary && !e.localFault && this.errorTtl > 0) {
        this.entries.set(key, e, { ttl: this.errorTtl * 1000, size: entryBytes(key, e) });
      }
      throw e;
    }
  }
}

/**
 * Estimated heap bytes of one entry, counted generously: a one-byte string is ~24 octets of
 * header and padding plus its characters; an array 16 plus 8 per slot; an object ~40. ENTRY
 * adds lru-cache's per-entry slots and index map, the result object and its records array.
 * TXT text counts five times: the SPF evaluator keeps the parsed record of a cached answer
 * beside it (an AST of several objects per term). Addresses count the octets the evaluator
 * parses them into (a Uint8Array, ~100 bytes with its buffer). Checked against the heap: 40,000
 * entries (cut wildcard TXT answers with their parsed records, and two-address A answers) were
 * estimated at 500 bytes each and took 392 (heapUsed after gc, Node 20).
 */
const ENTRY = 200;
const STRING = 24;

export function entryBytes(key: string, entry: Entry): number {
  let n = ENTRY + STRING + key.length;
  if (entry instanceof DnsError) return n + 2 * STRING + entry.message.length + entry.qname.length;
  for (const r of entry.records as unknown[]) {
    if (typeof r === 'string') n += 8 + STRING + r.length + 100;
    else if (Array.isArray(r)) {
      n += 16 + 8 * r.length;
      for (const s of r as string[]) n += STRING + 5 * s.length;
    } else {
      const mx = r as { exchange: string };
      n += 8 + 40 + STRING + mx.exchange.length;
    }
  }
  if (entry.omitted) n += 40;
  return n;
}
