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

/** A cached answer or error, linked into the LRU list (head = most recently used). */
interface Entry {
  name: string;
  type: RRType;
  expires: number;
  result: LookupResult<unknown> | undefined;
  error: DnsError | undefined;
  prev: Entry | undefined;
  next: Entry | undefined;
}

export const DEFAULT_CACHE_OPTIONS = { minTtl: 5, maxTtl: 86400, errorTtl: 5, maxEntries: 10000 } as const;

type PerType<V> = Record<RRType, Map<string, V>>;
function perType<V>(): PerType<V> {
  return { TXT: new Map(), A: new Map(), AAAA: new Map(), MX: new Map(), PTR: new Map() };
}

/**
 * A bounded LRU cache in front of any Resolver. The hit path allocates nothing: one Map
 * lookup per type keyed by the canonical name (for already canonical names, the caller's
 * own string) and a few pointer moves in the LRU list. Cached results are shared, so callers
 * must not mutate them; the `ttl` of a cached result is the clamped TTL as received, not the
 * time left.
 */
export class CachingResolver implements Resolver {
  readonly upstream: Resolver;
  readonly stats: CacheStats = { hits: 0, misses: 0, upstreamQueries: 0, inflightJoins: 0, evictions: 0 };
  private readonly minTtl: number;
  private readonly maxTtl: number;
  private readonly errorTtl: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  private readonly entries = perType<Entry>();
  private readonly inflight = perType<Promise<LookupResult<unknown>>>();
  private head: Entry | undefined;
  private tail: Entry | undefined;
  private count = 0;

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
    return this.count;
  }

  clear(): void {
    for (const map of Object.values(this.entries)) map.clear();
    this.head = this.tail = undefined;
    this.count = 0;
  }

  lookup<T extends RRType>(name: string, type: T): Promise<LookupResult<RecordTypeMap[T]>> {
    let key: string;
    try {
      key = canonicalName(name, type);
    } catch (e) {
      return Promise.reject(e);
    }
    const map = this.entries[type];
    if (map === undefined) return Promise.reject(new TypeError(`unsupported record type ${String(type)}`));
    const entry = map.get(key);
    if (entry !== undefined) {
      if (entry.expires > this.now()) {
        this.stats.hits++;
        this.touch(entry);
        if (entry.error !== undefined) return Promise.reject(entry.error);
        return Promise.resolve(entry.result as LookupResult<RecordTypeMap[T]>);
      }
      this.remove(entry);
    }
    this.stats.misses++;
    const inflight = this.inflight[type];
    const pending = inflight.get(key);
    if (pending !== undefined) {
      this.stats.inflightJoins++;
      return pending as Promise<LookupResult<RecordTypeMap[T]>>;
    }
    // The cleanup runs as a microtask, so it always follows the set() below, even when the
    // upstream throws synchronously.
    const query: Promise<LookupResult<RecordTypeMap[T]>> = this.query(key, name, type).finally(() => {
      if (inflight.get(key) === query) inflight.delete(key);
    });
    inflight.set(key, query);
    return query;
  }

  private async query<T extends RRType>(key: string, name: string, type: T): Promise<LookupResult<RecordTypeMap[T]>> {
    this.stats.upstreamQueries++;
    try {
      const result = await this.upstream.lookup(name, type);
      const ttl = Math.min(this.maxTtl, Math.max(this.minTtl, result.ttl));
      const stored = ttl === result.ttl ? result : { records: result.records, nxdomain: result.nxdomain, ttl };
      if (ttl > 0) this.store(key, type, this.now() + ttl * 1000, stored, undefined);
      return stored;
    } catch (e) {
      if (e instanceof DnsError && e.temporary && this.errorTtl > 0) {
        this.store(key, type, this.now() + this.errorTtl * 1000, undefined, e);
      }
      throw e;
    }
  }

  private store(name: string, type: RRType, expires: number, result: LookupResult<unknown> | undefined, error: DnsError | undefined): void {
    const old = this.entries[type].get(name);
    if (old !== undefined) this.remove(old);
    const entry: Entry = { name, type, expires, result, error, prev: undefined, next: this.head };
    if (this.head) this.head.prev = entry;
    this.head = entry;
    this.tail ??= entry;
    this.entries[type].set(name, entry);
    this.count++;
    while (this.count > this.maxEntries && this.tail !== undefined) {
      this.remove(this.tail);
      this.stats.evictions++;
    }
  }

  /** Moves an entry to the head of the LRU list. */
  private touch(entry: Entry): void {
    if (entry === this.head) return;
    // Not the head, so prev is set.
    (entry.prev as Entry).next = entry.next;
    if (entry.next) entry.next.prev = entry.prev;
    else this.tail = entry.prev;
    entry.prev = undefined;
    entry.next = this.head;
    if (this.head) this.head.prev = entry;
    this.head = entry;
  }

  private remove(entry: Entry): void {
    if (entry.prev) entry.prev.next = entry.next;
    else this.head = entry.next;
    if (entry.next) entry.next.prev = entry.prev;
    else this.tail = entry.prev;
    entry.prev = entry.next = undefined;
    this.entries[entry.type].delete(entry.name);
    this.count--;
  }
}
