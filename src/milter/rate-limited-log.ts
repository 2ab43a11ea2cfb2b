/**
 * Warnings for per-event noise (a protocol error, a refused connection, a timeout) are rate
 * limited per kind: anyone who can reach the socket can cause them by the thousand, and a log
 * that floods hides the one line that matters and costs disk and CPU. Past `limit` lines of a
 * kind within `intervalMs`, lines of that kind are counted instead of written, and one line
 * with the count follows when the interval ends.
 */
import type { MilterLogger } from './application.js';
import { type MilterClock, SYSTEM_CLOCK } from './clock.js';

export interface RateLimit {
  /** Lines of one kind written per interval (default 20). */
  limit: number;
  /** Length of the interval, ms (default 10 s). */
  intervalMs: number;
}

export const DEFAULT_RATE_LIMIT: RateLimit = { limit: 20, intervalMs: 10_000 };

interface KindWindow {
  started: number;
  written: number;
  suppressed: number;
}

export class RateLimitedLog {
  private readonly windows = new Map<string, KindWindow>();
  private timer: unknown;
  /** Lines suppressed since start, all kinds together (a counter for metrics). */
  suppressedTotal = 0;

  constructor(
    private readonly logger: MilterLogger,
    private readonly rate: RateLimit = DEFAULT_RATE_LIMIT,
    /** Where the interval's time and its end-of-interval timer come from (tests drive one by hand). */
    private readonly clock: MilterClock = SYSTEM_CLOCK,
  ) {}

  warn(kind: string, obj: object, msg: string): void {
    const now = this.clock.now();
    let w = this.windows.get(kind);
    if (w === undefined) {
      // Kinds are a handful of fixed strings chosen by the library, never peer input.
      w = { started: now, written: 0, suppressed: 0 };
      this.windows.set(kind, w);
    } else if (now - w.started >= this.rate.intervalMs) {
      this.report(kind, w);
      w.started = now;
      w.written = 0;
    }
    if (w.written < this.rate.limit) {
      w.written++;
      this.logger.warn(obj, msg);
      return;
    }
    w.suppressed++;
    this.suppressedTotal++;
    // One timer for all kinds, only while something waits to be reported.
    this.timer ??= this.clock.setTimeout(() => this.flush(), this.rate.intervalMs);
  }

  /** Writes the pending "suppressed" counts now (called at the end of an interval and at shutdown). */
  flush(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    for (const [kind, w] of this.windows) this.report(kind, w);
  }

  private report(kind: string, w: KindWindow): void {
    if (w.suppressed === 0) return;
    this.logger.warn(
      { kind, suppressed: w.suppressed, intervalMs: this.rate.intervalMs, limit: this.rate.limit },
      `${w.suppressed} more '${kind}' warnings suppressed (at most ${this.rate.limit} per ${this.rate.intervalMs} ms are written)`,
    );
    w.suppressed = 0;
  }
}
