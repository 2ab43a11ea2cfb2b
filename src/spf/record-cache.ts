import { LRUCache } from 'lru-cache';
import type { SpfRecord } from './types.js';
import { SpfSyntaxError } from './errors.js';
import { parseRecord } from './parser.js';

/**
 * Parsing is pure, so parsed records (and syntax errors) are kept by text: a record seen in
 * one evaluation is not parsed again in the next, even under another name (every name under a
 * wildcard, or the thousands of domains that publish the same include-only record) or after
 * its DNS answer expired. Bounded in estimated bytes: the text plus its AST, counted as five
 * times the text. Callers must not mutate the records.
 */
const RECORD_CACHE_MAX_BYTES = 2 * 1024 * 1024;

const cache = new LRUCache<string, SpfRecord | SpfSyntaxError>({
  maxSize: RECORD_CACHE_MAX_BYTES,
  // Records over a few KB are rare and hostile or broken: they do not evict the useful entries.
  maxEntrySize: 200 + 5 * 4096,
  sizeCalculation: (_value, text) => 200 + 5 * text.length,
});

export function parseRecordCached(text: string): SpfRecord | SpfSyntaxError {
  const hit = cache.get(text);
  if (hit) return hit;
  let value: SpfRecord | SpfSyntaxError;
  try {
    value = parseRecord(text);
  } catch (e) {
    if (!(e instanceof SpfSyntaxError)) throw e;
    value = e;
  }
  cache.set(text, value);
  return value;
}

/** Forget all parsed records (benchmarks measure a cold start with it). */
export function clearRecordCache(): void {
  cache.clear();
}
