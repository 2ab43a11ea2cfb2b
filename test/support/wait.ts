/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface WaitOptions<T> {
  /** How long to keep probing; one last probe runs once this has passed. */
  timeoutMs: number;
  /** The pause between probes (default 20 ms). */
  intervalMs?: number;
  /** What is waited for, for the error on timeout ("3 budget closes"). */
  what: string;
  /** When a probed value is the one waited for (default: truthy). */
  until?: (value: T) => boolean;
  /** Shows the last observed value in the error on timeout (default: as JSON); may add context. */
  describe?: (last: T) => string;
}

type Truthy<T> = Exclude<T, false | 0 | '' | null | undefined>;

/**
 * Probes `probe` (sync or async) until its value satisfies `until` (default: truthy), and returns
 * that value. The first probe runs at once, then one every `intervalMs`. Once `timeoutMs` has
 * passed and a last probe still fails, throws an error naming `what` and the last observed value.
 * An error thrown by `probe` ends the wait with that error.
 */
export function waitFor<T>(probe: () => T | Promise<T>, options: WaitOptions<T> & { until: (value: T) => boolean }): Promise<T>;
export function waitFor<T>(probe: () => T | Promise<T>, options: Omit<WaitOptions<T>, 'until'>): Promise<Truthy<T>>;
export async function waitFor<T>(probe: () => T | Promise<T>, options: WaitOptions<T>): Promise<T> {
  const { timeoutMs, intervalMs = 20, what, until = (v: T) => Boolean(v), describe = asJson } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (until(value)) return value;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last observed: ${describe(value)}`);
    await sleep(intervalMs);
  }
}

function asJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
