/**
 * What the daemon needs to cancel the assessments in flight, without a timer and a new
 * AbortSignal per message: on Node 20 an AbortSignal costs about 2 µs to create and a
 * setTimeout/clearTimeout pair about 0.3 µs, against about 20 µs of CPU per message for Node's
 * own work in the side-by-side bench (bench/profile.js: abort_controller, event_target and
 * timers were 3 µs per message of the daemon's 41).
 */

/**
 * Deadlines of one fixed length, in start order: one timer, armed for the oldest, serves them
 * all. A timer that finds nothing due re-arms for the oldest left, so a busy daemon sets about
 * one timer per deadline length instead of one per message.
 */
export class Deadlines<T> {
  /** A Set iterates in insertion order: the oldest first. */
  private readonly pending = new Set<T>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly lengthMs: number,
    /** performance.now() when the item's clock started. */
    private readonly startOf: (item: T) => number,
    /** Called once for an item still pending at its deadline. */
    private readonly expire: (item: T) => void,
  ) {}

  /** Starts the item's deadline; its clock must have started last of all pending items. */
  add(item: T): void {
    this.pending.add(item);
    // A timer already armed fires no later than this item's deadline.
    if (this.timer === undefined) this.arm(this.lengthMs);
  }

  /** The item no longer needs its deadline. */
  delete(item: T): void {
    this.pending.delete(item);
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.fire(), Math.max(1, ms));
    // Like the per-message timers before: a deadline alone does not keep the process alive.
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    const now = performance.now();
    for (const item of this.pending) {
      const due = this.startOf(item) + this.lengthMs;
      if (due > now) {
        this.arm(due - now);
        return;
      }
      this.pending.delete(item);
      this.expire(item);
    }
  }
}

/**
 * Abort controllers for assessments. A controller whose signal never fired is as good as new
 * once its work has settled (the DNS layers remove their listeners when a lookup ends), so it
 * comes back here; one that fired is dropped. At most `max` are kept: as many as assessments
 * are ever in flight at once on a busy daemon, a few dozen.
 */
export class AbortControllers {
  private readonly free: AbortController[] = [];

  constructor(private readonly max = 256) {}

  take(): AbortController {
    return this.free.pop() ?? new AbortController();
  }

  /** Only for a controller whose work has settled: no one may still abort it or listen to it. */
  giveBack(controller: AbortController): void {
    if (!controller.signal.aborted && this.free.length < this.max) this.free.push(controller);
  }
}
