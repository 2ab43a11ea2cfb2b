/**
 * Work over a list with a bound on how much runs at once: enough to overlap DNS and LDAP round
 * trips, not so much that a long list turns into a burst of parallel queries.
 */

export interface BoundedMapOptions {
  /** Stops the map: nothing new starts, and it rejects with the signal's reason. */
  signal?: AbortSignal | undefined;
  /** Called after each item's work succeeded, with how many have so far (for a progress bar). */
  onDone?: ((done: number) => void) | undefined;
}

/**
 * Runs `work` over `items` with at most `limit` in flight; the results keep the input order.
 * The first failure (or an abort) rejects at once and starts nothing new; work already started
 * is not awaited, and what it gives later is dropped.
 */
export function mapBounded<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>, options: BoundedMapOptions = {}): Promise<R[]> {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`mapBounded: limit must be a positive integer, got ${limit}`);
  const { signal, onDone } = options;
  if (signal?.aborted) return Promise.reject(signal.reason as unknown);
  const results = new Array<R>(items.length);
  return new Promise<R[]>((resolve, reject) => {
    let next = 0;
    let done = 0;
    let stopped = false;
    const stop = (reason: unknown): void => {
      if (stopped) return;
      stopped = true;
      signal?.removeEventListener('abort', onAbort);
      reject(reason);
    };
    const onAbort = (): void => stop(signal!.reason);
    signal?.addEventListener('abort', onAbort, { once: true });

    const startNext = (): void => {
      if (stopped) return;
      if (next >= items.length) {
        if (done === items.length) {
          stopped = true;
          signal?.removeEventListener('abort', onAbort);
          resolve(results);
        }
        return;
      }
      const index = next++;
      let running: Promise<R>;
      try {
        running = work(items[index]!, index);
      } catch (err) {
        stop(err);
        return;
      }
      running.then(
        (result) => {
          if (stopped) return;
          results[index] = result;
          // Counted apart from the call: `onDone?.(++done)` would skip the count without a callback.
          done++;
          try {
            onDone?.(done);
          } catch (err) {
            stop(err);
            return;
          }
          startNext();
        },
        stop,
      );
    };
    for (let i = 0; i < Math.min(limit, items.length); i++) startNext();
    if (items.length === 0) startNext();
  });
}
