/**
 * Rate limiting for per-event log lines (a refused connection, a protocol error, an idle
 * timeout): anyone who can reach the socket can trigger those at will, and one line per event
 * would let them flood the log and bury what matters. Lines of one kind (same level and
 * message text) pass up to `lines` per `intervalMs`; the rest of that interval is counted, and
 * when it ends one line says how many were suppressed:
 *   `WARN sos-milter: milter connection idle too long, closing (1234 more suppressed in 10 s) suppressed=1234`
 * so grepping for the message finds the summary too. Windows are per kind and start with its
 * first line; a kind that stays quiet costs nothing after its window.
 */
import type { Logger, LoggerLevel } from './logger.js';
import type { Fields, LevelName } from './render.js';

export interface RateLimit {
  /** Lines of one kind written per interval; further ones are counted. */
  lines: number;
  intervalMs: number;
}

/** For the daemon's per-event warnings: ten of a kind per ten seconds, then a count. */
export const DEFAULT_EVENT_RATE: Readonly<RateLimit> = Object.freeze({ lines: 10, intervalMs: 10_000 });

/** Kinds tracked at once: messages are code constants, but a message built from input must not grow the table. */
const MAX_KINDS = 256;
/** The kind that counts lines of new kinds once MAX_KINDS are tracked. */
const OVERFLOW_KIND = '\u0000overflow';

export interface Clock {
  now(): number;
  /** Runs `fn` after `ms`; the timer must not keep the process alive. */
  setTimer(fn: () => void, ms: number): { cancel(): void };
}

const realClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return { cancel: () => clearTimeout(timer) };
  },
};

interface Window {
  level: LevelName;
  msg: string;
  start: number;
  written: number;
  suppressed: number;
  timer: { cancel(): void } | undefined;
}

/** The counts shared by a rate-limited logger and its children. */
class Limiter {
  private readonly windows = new Map<string, Window>();
  /** The interval as the summary line says it: `10 s`, `50 ms`. */
  private readonly span: string;

  constructor(
    private readonly summaryLogger: Logger,
    readonly limit: RateLimit,
    private readonly clock: Clock,
  ) {
    if (!(limit.lines >= 1) || !(limit.intervalMs > 0)) throw new RangeError(`rate limit needs lines >= 1 and intervalMs > 0, got ${limit.lines}/${limit.intervalMs}`);
    const ms = limit.intervalMs;
    this.span = ms < 1000 ? `${ms} ms` : `${Math.round(ms / 100) / 10} s`;
  }

  /** Whether a line of this level and message may be written now; counts it otherwise. */
  admit(level: LevelName, msg: string): boolean {
    const now = this.clock.now();
    let key = `${level} ${msg}`;
    let window = this.windows.get(key);
    if (window !== undefined && now - window.start >= this.limit.intervalMs) {
      this.close(key, window);
      window = undefined;
    }
    if (window === undefined) {
      if (this.windows.size >= MAX_KINDS) this.sweep(now);
      if (this.windows.size >= MAX_KINDS) {
        key = OVERFLOW_KIND;
        window = this.windows.get(key);
        msg = 'log lines of further kinds';
      }
      if (window === undefined) {
        window = { level, msg, start: now, written: 0, suppressed: 0, timer: undefined };
        this.windows.set(key, window);
      }
    }
    if (window.written < this.limit.lines) {
      window.written++;
      return true;
    }
    window.suppressed++;
    if (window.timer === undefined) {
      const w = window;
      const k = key;
      w.timer = this.clock.setTimer(() => this.close(k, w), Math.max(0, w.start + this.limit.intervalMs - now));
    }
    return false;
  }

  /** Writes every pending count now (at shutdown) and forgets all windows. */
  flush(): void {
    for (const [key, window] of [...this.windows]) this.close(key, window);
  }

  private close(key: string, window: Window): void {
    window.timer?.cancel();
    window.timer = undefined;
    if (this.windows.get(key) === window) this.windows.delete(key);
    if (window.suppressed === 0) return;
    this.summaryLogger[window.level]({ suppressed: window.suppressed }, `${window.msg} (${window.suppressed} more suppressed in ${this.span})`);
  }

  /** Drops windows that ended with nothing suppressed. */
  private sweep(now: number): void {
    for (const [key, window] of this.windows) {
      if (window.suppressed === 0 && now - window.start >= this.limit.intervalMs) this.windows.delete(key);
    }
  }
}

/** A Logger whose lines are rate-limited per kind; children share the counts. */
export interface RateLimitedLogger extends Logger {
  child(bindings: Record<string, unknown>): RateLimitedLogger;
  /** Writes the pending suppressed counts now (call at shutdown, before flushLogger). */
  flush(): void;
}

class LimitedLogger implements RateLimitedLogger {
  constructor(
    private readonly inner: Logger,
    private readonly limiter: Limiter,
  ) {}

  get level(): Logger['level'] {
    return this.inner.level;
  }

  set level(level: Logger['level']) {
    this.inner.level = level;
  }

  isLevelEnabled(level: LoggerLevel): boolean {
    return this.inner.isLevelEnabled(level);
  }

  debug(obj: object | string, msg?: string): void {
    this.log('debug', obj, msg);
  }

  info(obj: object | string, msg?: string): void {
    this.log('info', obj, msg);
  }

  warn(obj: object | string, msg?: string): void {
    this.log('warn', obj, msg);
  }

  error(obj: object | string, msg?: string): void {
    this.log('error', obj, msg);
  }

  child(bindings: Record<string, unknown>): RateLimitedLogger {
    return new LimitedLogger(this.inner.child(bindings), this.limiter);
  }

  flush(): void {
    this.limiter.flush();
  }

  private log(level: LevelName, obj: object | string, msg: string | undefined): void {
    // Disabled levels are neither written nor counted.
    if (!this.inner.isLevelEnabled(level)) return;
    const text = typeof obj === 'string' ? obj : (msg ?? (obj instanceof Error ? obj.message : String((obj as Fields).msg ?? '')));
    if (this.limiter.admit(level, text)) this.inner[level](obj, msg);
  }
}

/**
 * `logger`, with at most `limit.lines` lines of each kind (level and message text) per
 * `limit.intervalMs`, then one line with the count suppressed. Share one per process: a
 * MilterLogger or Logger for the components whose lines an outsider can provoke.
 */
export function rateLimitedLogger(logger: Logger, limit: RateLimit = DEFAULT_EVENT_RATE, clock: Clock = realClock): RateLimitedLogger {
  return new LimitedLogger(logger, new Limiter(logger, limit, clock));
}
