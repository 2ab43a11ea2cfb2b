/**
 * Process-wide structured logging, our own rather than pino's: the daemon needs one line per
 * message in two formats with escaping and bounds of its own, which pino could only give through
 * its private symbols (to get the logged values back for the text format) and two text renderers
 * that had to agree. Here each format has one renderer (render.ts) fed with the logged values,
 * and a logger's bindings are rendered once. CPU per `judged` line from a per-message child
 * logger (bench/log-bench.ts, pino 10 and this logger side by side, Node 20, shared 2-core VM
 * under load, medians): text 5.7 µs with pino, 0.85 µs here; JSON 2.0 and 0.88 µs; written to
 * stdout (buffering and write(2) included) text 6.8 and 1.2 µs, JSON 2.9 and 1.2 µs.
 * A disabled level costs one comparison and serialises nothing.
 */
import { errorMessage } from './error-message.js';
import { isJournalStream, PRIORITY_PREFIX } from './journal.js';
import { jsonRenderer, textRenderer, type Bound, type Fields, type LevelName, type LineRenderer } from './render.js';
import { stdout, type LineSink } from './stdout-sink.js';
import { REDACTED } from './values.js';

export { REDACTED };

/** Levels as configured (`warning` is an alias of `warn`). */
export type LoggerLevel = 'debug' | 'info' | 'warn' | 'warning' | 'error' | 'silent';
export type LevelWithSilent = LevelName | 'silent';

/** Where lines go instead of stdout (tests, embedding). */
export type LogDestination = LineSink;

export interface LoggerOptions {
  /** Shown on every line; the milter's MILTER_NAME. */
  name: string;
  level: LoggerLevel;
  format: 'text' | 'json';
  /** Where lines go, one call per line; buffered stdout (flushed at exit) when omitted. */
  destination?: LogDestination;
  /**
   * Start each line with its sd-daemon priority (`<3>` error … `<7>` debug). Default: on when
   * lines go to stdout and stdout is the journal stream named by JOURNAL_STREAM.
   */
  priorityPrefix?: boolean;
}

/**
 * `info({ key: value }, 'message')`, `info('message')`, `error(err)` (the error under `err`,
 * its message as the message). Fields named like a binding replace it for that line;
 * `conn` and `queueId` make the text format's `<conn>/<queue id>:` prefix.
 */
export interface Logger {
  /** The lowest level written; settable. */
  level: LevelWithSilent;
  isLevelEnabled(level: LoggerLevel): boolean;
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  /** A logger whose lines also carry `bindings` (rendered once, on its first line). */
  child(bindings: Record<string, unknown>): Logger;
}

const LEVEL_VALUES: Readonly<Record<LevelWithSilent, number>> = { debug: 20, info: 30, warn: 40, error: 50, silent: Infinity };

function levelName(level: LoggerLevel): LevelWithSilent {
  return level === 'warning' ? 'warn' : level;
}

/** What all loggers of one createLogger share: level, format, destination, clock. */
class LoggerCore {
  threshold: number;
  private lastMs = -1;
  private lastIso = '';
  private lastSecond = -1;
  private secondIso = '';

  constructor(
    public level: LevelWithSilent,
    readonly name: string,
    readonly renderer: LineRenderer,
    private readonly sink: LineSink,
    private readonly priorityPrefix: boolean,
  ) {
    this.threshold = LEVEL_VALUES[level];
  }

  setLevel(level: LevelWithSilent): void {
    this.level = level;
    this.threshold = LEVEL_VALUES[level];
  }

  write(level: LevelName, bound: Bound, fields: Fields | undefined, msg: string | undefined): void {
    this.emit(level, this.renderer.line(level, this.now(), bound, fields, msg));
  }

  /** The line that says how many lines stdout could not take. */
  dropNotice(dropped: number): string {
    const line = this.renderer.line('warn', this.now(), this.renderer.bind(this.name, {}), { dropped }, 'log lines dropped: stdout did not keep up');
    return this.priorityPrefix ? PRIORITY_PREFIX.warn + line : line;
  }

  flush(): void {
    this.sink.flushSync?.();
  }

  private emit(level: LevelName, line: string): void {
    this.sink.write(this.priorityPrefix ? PRIORITY_PREFIX[level] + line : line);
  }

  /**
   * ISO 8601 time in UTC: Date#toISOString once per second, the milliseconds appended. At 1000
   * messages/s nearly every line has a millisecond of its own, and toISOString cost about 1 µs
   * per line there (bench/profile.js --paced).
   */
  private now(): string {
    const ms = Date.now();
    if (ms !== this.lastMs) {
      this.lastMs = ms;
      const milli = ms % 1000;
      const second = ms - milli;
      if (second !== this.lastSecond) {
        this.lastSecond = second;
        // Everything up to and including the '.' before the milliseconds ("mmmZ" is last).
        this.secondIso = new Date(second).toISOString().slice(0, -4);
      }
      this.lastIso = `${this.secondIso}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
    }
    return this.lastIso;
  }
}

class StructuredLogger implements Logger {
  private bound: Bound | undefined;

  constructor(
    private readonly core: LoggerCore,
    private readonly bindings: Fields,
  ) {}

  get level(): LevelWithSilent {
    return this.core.level;
  }

  set level(level: LevelWithSilent) {
    this.core.setLevel(levelName(level));
  }

  isLevelEnabled(level: LoggerLevel): boolean {
    return LEVEL_VALUES[levelName(level)] >= this.core.threshold;
  }

  debug(obj: object | string, msg?: string): void {
    if (this.core.threshold <= 20) this.log('debug', obj, msg);
  }

  info(obj: object | string, msg?: string): void {
    if (this.core.threshold <= 30) this.log('info', obj, msg);
  }

  warn(obj: object | string, msg?: string): void {
    if (this.core.threshold <= 40) this.log('warn', obj, msg);
  }

  error(obj: object | string, msg?: string): void {
    if (this.core.threshold <= 50) this.log('error', obj, msg);
  }

  child(bindings: Record<string, unknown>): Logger {
    return new StructuredLogger(this.core, { ...this.bindings, ...bindings });
  }

  flush(): void {
    this.core.flush();
  }

  private log(level: LevelName, obj: object | string, msg: string | undefined): void {
    let fields: Fields | undefined;
    if (typeof obj === 'string') msg = obj;
    else if (obj instanceof Error) {
      fields = { err: obj };
      msg ??= obj.message;
    } else {
      fields = obj as Fields;
      // A `msg` field without a message argument is the message (as pino did).
      if (msg === undefined && typeof fields.msg === 'string') {
        msg = fields.msg;
        fields = { ...fields };
        delete fields.msg;
      }
    }
    try {
      this.bound ??= this.core.renderer.bind(this.core.name, this.bindings);
      this.core.write(level, this.bound, fields, msg);
    } catch (err) {
      // A getter or toJSON that throws must not turn a log call into a failed milter callback.
      this.core.write(level, this.core.renderer.bind(this.core.name, {}), { logError: errorMessage(err) }, msg);
    }
  }
}

/** A destination given as an object: one call per line, as the caller asked. */
export function createLogger(options: LoggerOptions): Logger {
  const out = options.destination ? undefined : stdout();
  const priorityPrefix = options.priorityPrefix ?? (out !== undefined && isJournalStream(process.env, 1));
  const renderer = options.format === 'json' ? jsonRenderer : textRenderer;
  const core = new LoggerCore(levelName(options.level), options.name, renderer, out ?? options.destination!, priorityPrefix);
  // One stdout per process: its notice of lost lines takes the format of the latest logger.
  if (out) out.dropNotice = (dropped) => core.dropNotice(dropped);
  return new StructuredLogger(core, {});
}

/** Writes out buffered lines synchronously (at shutdown, before the process exits). */
export function flushLogger(logger: Logger): void {
  try {
    if (logger instanceof StructuredLogger) logger.flush();
  } catch {
    // stdout closed: nothing left to save.
  }
}

/**
 * A child logger for one milter connection (and, once known, its queue id); the text
 * format prints them as `<name>: <conn>/<queue id>:`.
 */
export function messageLogger(logger: Logger, conn: string | number, queueId?: string): Logger {
  return logger.child(queueId === undefined ? { conn } : { conn, queueId });
}

const discard: LineSink = { write: () => undefined };

/** A logger that discards everything, for components used without logging. */
export function silentLogger(): Logger {
  return new StructuredLogger(new LoggerCore('silent', '-', textRenderer, discard, false), {});
}
