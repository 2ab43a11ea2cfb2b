/**
 * Process-wide logging on pino. `json` writes pino's JSON lines; `text` renders each line
 * with a small formatter (no pino-pretty: one dependency less, no worker thread). Disabled
 * levels cost one comparison, as pino checks the level before serialising anything.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import { formatTextLine, formatTextLineDirect, textBindings, type TextBindings } from './text-format.js';

export type { Logger };
export type LoggerLevel = 'debug' | 'info' | 'warn' | 'warning' | 'error' | 'silent';

export interface LogDestination {
  write(line: string): unknown;
}

export interface LoggerOptions {
  /** Shown on every line; the milter's MILTER_NAME. */
  name: string;
  level: LoggerLevel;
  format: 'text' | 'json';
  /** Where lines go; stdout (synchronously, so nothing is lost at exit) when omitted. */
  destination?: LogDestination;
}

export const REDACTED = '[redacted]';

// Secrets that must never reach a log line, at any depth a caller is likely to use.
const SECRET_KEYS = new Set(['password', 'bindpw', 'passwd', 'secret', 'ldap_bindpw']);
const REDACT_DEPTH = 3;
const SECRET_BINDING_SERIALIZERS = Object.fromEntries(
  ['password', 'bindpw', 'bindPw', 'bindPW', 'BINDPW', 'LDAP_BINDPW', 'ldap_bindpw', 'passwd', 'secret', 'Password', 'PASSWORD'].map((k) => [k, () => REDACTED]),
);

/**
 * Replaces secret values in a log object down to REDACT_DEPTH levels. Hand-written instead
 * of pino's wildcard `redact`, which costs tens of microseconds per line; objects without
 * secrets are returned as they are, so the common case allocates nothing.
 */
export function redactSecrets(obj: Record<string, unknown>, depth = 0): Record<string, unknown> {
  let copy: Record<string, unknown> | undefined;
  for (const key in obj) {
    const value = obj[key];
    let replacement: unknown = value;
    if (SECRET_KEYS.has(key.toLowerCase())) replacement = REDACTED;
    else if (depth + 1 < REDACT_DEPTH && value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Error)) {
      replacement = redactSecrets(value as Record<string, unknown>, depth + 1);
    }
    if (replacement !== value) {
      copy ??= { ...obj };
      copy[key] = replacement;
    }
  }
  return copy ?? obj;
}

/** A log destination that can be flushed at shutdown. */
interface FlushableDestination extends LogDestination {
  flushSync?: () => void;
}

export function createLogger(options: LoggerOptions): Logger {
  // Buffered asynchronous stdout: one write per 4 KiB under load instead of one per line,
  // and at most FLUSH_INTERVAL_MS of delay when traffic is low. Shutdown and process exit
  // flush what is left (flushLogger).
  const out: FlushableDestination = options.destination ?? stdoutDestination();
  const stream: DestinationStream & { flushSync?: () => void } =
    options.format === 'json' ? { write: (line: string) => void out.write(line) } : textStream(out);
  if (out.flushSync) stream.flushSync = () => out.flushSync?.();
  const logger = pino(
    {
      level: options.level === 'warning' ? 'warn' : options.level,
      base: { name: options.name },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }), log: (obj) => redactSecrets(obj), bindings: (b) => redactSecrets(b) },
      // Child bindings bypass formatters.log; pino runs them through serializers by key.
      serializers: { err: pino.stdSerializers.err, ...SECRET_BINDING_SERIALIZERS },
    },
    stream,
  );
  flushers.set(logger, () => stream.flushSync?.());
  return logger;
}

const flushers = new WeakMap<Logger, () => void>();

/** Keys whose values a serializer or the redaction rewrites: such lines take the JSON path. */
function rewrittenKey(key: string): boolean {
  return key === 'err' || SECRET_KEYS.has(key.toLowerCase()) || Object.prototype.hasOwnProperty.call(SECRET_BINDING_SERIALIZERS, key);
}

/** What pino hands a stream that asks for metadata, besides the JSON line. */
interface PinoMetadata {
  lastLevel: number;
  lastTime: string;
  lastMsg: unknown;
  lastObj: Record<string, unknown>;
  lastLogger: Logger;
}

/**
 * The text destination. pino passes the logged values along with its JSON line (metadata), so
 * most lines are rendered from them directly; parsing the JSON back costs more than building
 * it. Lines with fields the direct path cannot render identically are parsed as before.
 */
function textStream(out: LogDestination): DestinationStream {
  const bindingsOf = new WeakMap<object, TextBindings>();
  const chindings = pino.symbols.chindingsSym;
  const stream = {
    [pino.symbols.needsMetadataGsym]: true as const,
    lastLevel: 0,
    lastTime: '',
    lastMsg: undefined as unknown,
    lastObj: {} as Record<string, unknown>,
    lastLogger: undefined as unknown as Logger,
    write(line: string): void {
      const meta: PinoMetadata = stream;
      const log = meta.lastLogger;
      let text: string | undefined;
      // lastTime is the JSON value of pino's isoTime: the ISO string in quotes.
      if (log !== undefined && meta.lastTime.length > 2 && meta.lastTime.charCodeAt(0) === 0x22) {
        let b = bindingsOf.get(log);
        if (b === undefined) {
          const raw = (log as unknown as Record<symbol, string>)[chindings];
          b = textBindings(JSON.parse(`{${raw.slice(1)}}`) as Record<string, unknown>);
          bindingsOf.set(log, b);
        }
        const label = log.levels.labels[meta.lastLevel];
        if (label !== undefined) text = formatTextLineDirect(meta.lastTime.slice(1, -1), label, b, meta.lastMsg, meta.lastObj, rewrittenKey);
      }
      out.write(text ?? formatTextLine(JSON.parse(line) as Record<string, unknown>));
    },
  };
  return stream;
}

const FLUSH_INTERVAL_MS = 250;
const BUFFER_BYTES = 4096;

function stdoutDestination(): FlushableDestination {
  // sonic-boom measures its last buffered string on every write (Buffer.byteLength flattens
  // it), so a buffer filled line by line costs its whole size per line in garbage. Lines are
  // gathered here instead and handed over in 4 KiB pieces, which it writes at once.
  // minLength keeps a short hand-over buffered in sonic-boom until flush() (our timer below) or
  // flushSync(); its own periodicFlush would only be a second timer doing the same.
  const dest = pino.destination({ dest: 1, sync: false, minLength: BUFFER_BYTES });
  let pending = '';
  let timer: NodeJS.Timeout | undefined;
  const handOver = (): void => {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (pending === '') return;
    const chunk = pending;
    pending = '';
    dest.write(chunk);
  };
  const destination: FlushableDestination = {
    write(line: string): void {
      pending += line;
      if (pending.length >= BUFFER_BYTES) handOver();
      else if (timer === undefined) {
        timer = setTimeout(() => {
          handOver();
          // Less than minLength waits in sonic-boom until flushed.
          dest.flush();
        }, FLUSH_INTERVAL_MS);
        timer.unref();
      }
    },
    flushSync(): void {
      // Empty sonic-boom first: what is handed over next stays below minLength, so it is
      // buffered, never started as an asynchronous write that exit would cut off.
      dest.flushSync();
      handOver();
      dest.flushSync();
    },
  };
  process.once('exit', () => {
    try {
      destination.flushSync?.();
    } catch {
      // stdout gone: nothing left to save.
    }
  });
  return destination;
}

/** Writes out buffered lines synchronously (at shutdown, before the process exits). */
export function flushLogger(logger: Logger): void {
  try {
    flushers.get(logger)?.();
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

/** A logger that discards everything, for components used without logging. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
