/**
 * Time and one-shot timers for the library's own timing (the warning rate limit, progress
 * packets), injectable so that a test drives them instead of waiting on a loaded machine.
 */
export interface MilterClock {
  /** Milliseconds from an arbitrary origin; never goes back. */
  now(): number;
  /** Calls `fn` once after `ms`; the timer must not keep the process alive on its own. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancels a timer from setTimeout (a handle that already fired or was cleared is ignored). */
  clearTimeout(handle: unknown): void;
}

/** performance.now (a wall-clock step does not stretch or end an interval) and unref'd Node timers. */
export const SYSTEM_CLOCK: MilterClock = Object.freeze({
  now: () => performance.now(),
  setTimeout: (fn: () => void, ms: number): unknown => setTimeout(fn, ms).unref(),
  clearTimeout: (handle: unknown): void => clearTimeout(handle as NodeJS.Timeout | undefined),
});
