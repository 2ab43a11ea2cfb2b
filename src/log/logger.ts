/**
 * Process-wide logging on pino. `json` writes pino's JSON lines; `text` renders each line
 * with a small formatter (no pino-pretty: one dependency less, no worker thread). Disabled
 * levels cost one comparison, as pino checks the level before serialising anything.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import { formatTextLine } from './text-format.js';

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
const SECRET_KEYS = ['password', 'bindpw', 'bindPw', 'bindPW', 'BINDPW', 'LDAP_BINDPW', 'passwd', 'secret'];
const REDACT_PATHS = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);

export function createLogger(options: LoggerOptions): Logger {
  const out: LogDestination = options.destination ?? pino.destination({ dest: 1, sync: true });
  const stream: DestinationStream =
    options.format === 'json'
      ? { write: (line: string) => void out.write(line) }
      : { write: (line: string) => void out.write(formatTextLine(JSON.parse(line) as Record<string, unknown>)) };
  return pino(
    {
      level: options.level === 'warning' ? 'warn' : options.level,
      base: { name: options.name },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: REDACTED },
      serializers: { err: pino.stdSerializers.err },
    },
    stream,
  );
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
