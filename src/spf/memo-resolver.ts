import type { LookupOptions, LookupResult, RecordTypeMap, Resolver, RRType } from '../dns/types.js';

/**
 * Shares answers (and failures) between the evaluations of one batch (checkHostForIps): each
 * distinct question goes upstream once, concurrent askers wait for the same promise. Not a
 * cache: no TTL and no eviction, it lives as long as one batch, whose size the SPF limits bound
 * (RFC 7208 §4.6.4), and every lookup of a batch carries the batch's one signal. A Map is all
 * it needs; lru-cache would add nothing.
 */
export class MemoResolver implements Resolver {
  private readonly answers = new Map<string, Promise<LookupResult<unknown>>>();

  constructor(private readonly upstream: Resolver) {}

  lookup<T extends RRType>(name: string, type: T, options?: LookupOptions): Promise<LookupResult<RecordTypeMap[T]>> {
    const key = `${type} ${name.toLowerCase()}`;
    let p = this.answers.get(key);
    if (!p) {
      p = this.upstream.lookup(name, type, options);
      this.answers.set(key, p);
    }
    return p as Promise<LookupResult<RecordTypeMap[T]>>;
  }

  /** Distinct questions sent upstream so far. */
  get size(): number {
    return this.answers.size;
  }
}
