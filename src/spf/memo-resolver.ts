import type { LookupResult, RecordTypeMap, Resolver, RRType } from '../dns/types.js';

/**
 * Shares answers (and failures) between evaluations of one batch: each distinct question goes
 * upstream once, concurrent askers wait for the same promise. No TTL: it lives for one batch.
 */
export class MemoResolver implements Resolver {
  private readonly answers = new Map<string, Promise<LookupResult<unknown>>>();

  constructor(private readonly upstream: Resolver) {}

  lookup<T extends RRType>(name: string, type: T): Promise<LookupResult<RecordTypeMap[T]>> {
    const key = `${type} ${name.toLowerCase()}`;
    let p = this.answers.get(key);
    if (!p) {
      p = this.upstream.lookup(name, type);
      this.answers.set(key, p);
    }
    return p as Promise<LookupResult<RecordTypeMap[T]>>;
  }

  /** Distinct questions sent upstream so far. */
  get size(): number {
    return this.answers.size;
  }
}
