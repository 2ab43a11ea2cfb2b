import type { SpfRecord } from './ast.js';
import { SpfSyntaxError } from './errors.js';
import { parseRecord } from './parser.js';

/**
 * Parsing is pure, so parsed records (and syntax errors) are kept by text in a small LRU: a
 * record seen in one evaluation is not parsed again in the next. Callers must not mutate them.
 */
const MAX_ENTRIES = 1024;
const cache = new Map<string, SpfRecord | SpfSyntaxError>();

export function parseRecordCached(text: string): SpfRecord | SpfSyntaxError {
  const hit = cache.get(text);
  if (hit) {
    cache.delete(text);
    cache.set(text, hit);
    return hit;
  }
  let value: SpfRecord | SpfSyntaxError;
  try {
    value = parseRecord(text);
  } catch (e) {
    if (!(e instanceof SpfSyntaxError)) throw e;
    value = e;
  }
  // Records over a few KB are hostile or broken; do not let them evict the useful entries.
  if (text.length <= 4096) {
    cache.set(text, value);
    if (cache.size > MAX_ENTRIES) cache.delete(cache.keys().next().value as string);
  }
  return value;
}

/** Forget all parsed records (benchmarks measure a cold start with it). */
export function clearRecordCache(): void {
  cache.clear();
}
