import { DnsError, type LookupResult, type RecordTypeMap, type Resolver, type RRType } from './types.js';
import { canonicalName } from './names.js';

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
  /** Bound on cached entries; the least recently used one is evicted first (default 10000). */
  maxEntries?: number;
  /** Clock in milliseconds, injectable for tests (default Date.now). */
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
  /** Entries dropped to respect maxEntries (expired entries are not counted). */
  evictions: number;
}

interface Entry {
  expires: number;
  result: LookupResult<unknown> | undefined;
  error: DnsError | undefined;
}

export const DEFAULT_CACHE_OPTIONS = { minTtl: 5, maxTtl: 86400, errorTtl: 5, maxEntries: 10000 } as const;

/**
 * A bounded LRU cache in front of any Resolver. A hit is one Map lookup plus a re-insert
 * to keep LRU order; cached results are shared, so callers must not mutate them. The
 * `ttl` of a cached result is the clamped TTL as received, not the time left.
 */
export class CachingResolver implements Resolver {
  readonly upstream: Resolver;
  readonly stats: CacheStats = { hits: 0, misses: 0, upstreamQueries: 0, inflightJoins: 0, evictions: 0 };
  private readonly minTtl: number;
  private readonly maxTtl: number;
  private readonly errorTtl: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<LookupResult<unknown>>>();

  constructor(upstream: Resolver, options: CacheOptions = {}) {
    this.upstream = upstream;
    this.minTtl = options.minTtl ?? DEFAULT_CACHE_OPTIONS.minTtl;
    this.maxTtl = options.maxTtl ?? DEFAULT_CACHE_OPTIONS.maxTtl;
    this.errorTtl = options.errorTtl ?? DEFAULT_CACHE_OPTIONS.errorTtl;
    this.maxEntries = options.maxEntries ?? DEFAULT_CACHE_OPTIONS.maxEntries;
    this.now = options.now ?? Date.now;
    if (this.minTtl < 0 || this.maxTtl < this.minTtl) throw new RangeError('cache TTLs need 0 <= minTtl <= maxTtl');
    if (this.errorTtl < 0) throw new RangeError('cache errorTtl must not be negative');
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1) throw new RangeError('cache maxEntries must be a positive integer');
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }

  lookup<T extends RRType>(name: string, type: T): Promise<LookupResult<RecordTypeMap[T]>> {
    let key: string;
    try {
      key = type + ' ' + canonicalName(name, type);
    } catch (e) {
      return Promise.reject(e);
    }
    const entry = this.entries.get(key);
    if (entry !== undefined) {
      if (entry.expires > this.now()) {
        this.stats.hits++;
        // Re-insert to mark as most recently used (Map keeps insertion order).
        this.entries.delete(key);
        this.entries.set(key, entry);
        if (entry.error !== undefined) return Promise.reject(entry.error);
        return Promise.resolve(entry.result as LookupResult<RecordTypeMap[T]>);
      }
      this.entries.delete(key);
    }
    this.stats.misses++;
    const pending = this.inflight.get(key);
    if (pending !== undefined) {
      this.stats.inflightJoins++;
      return pending as Promise<LookupResult<RecordTypeMap[T]>>;
    }
    // The cleanup runs as a microtask, so it always follows the set() below, even when the
    // upstream throws synchronously.
    const query: Promise<LookupResult<RecordTypeMap[T]>> = this.query(key, name, type).finally(() => {
      if (this.inflight.get(key) === query) this.inflight.delete(key);
    });
    this.inflight.set(key, query);
    return query;
  }

  private async query<T extends RRType>(key: string, name: string, type: T): Promise<LookupResult<RecordTypeMap[T]>> {
    this.stats.upstreamQueries++;
    try {
      const result = await this.upstream.lookup(name, type);
      const ttl = Math.min(this.maxTtl, Math.max(this.minTtl, result.ttl));
      const stored = ttl === result.ttl ? result : { records: result.records, nxdomain: result.nxdomain, ttl };
      if (ttl > 0) this.store(key, { expires: this.now() + ttl * 1000, result: stored, error: undefined });
      return stored;
    } catch (e) {
      if (e instanceof DnsError && e.temporary && this.errorTtl > 0) {
        this.store(key, { expires: this.now() + this.errorTtl * 1000, result: undefined, error: e });
      }
      throw e;
    }
  }

  private store(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.entries.set(key, entry);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
      this.stats.evictions++;
    }
  }
}
