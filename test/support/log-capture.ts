import { createLogger, type Logger, type LoggerOptions } from '../../src/log/index.js';

export type LogFormat = 'text' | 'json';

/**
 * A logger whose lines are kept in `lines`: given a format, a debug-level logger named
 * sos-milter; given options, a logger made with them.
 */
export function captureLog(options: LogFormat | Omit<LoggerOptions, 'destination'>): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const made = typeof options === 'string' ? { name: 'sos-milter', level: 'debug' as const, format: options } : options;
  const logger = createLogger({ ...made, destination: { write: (line: string) => lines.push(line) } });
  return { logger, lines };
}

/** A debug-level JSON logger named sos-milter whose lines are kept parsed in `lines`. */
export function captureJsonLog(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ name: 'sos-milter', level: 'debug', format: 'json', destination: { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) } });
  return { logger, lines };
}

/** What must never appear raw in a line body (the `u` flag matches only unpaired surrogates). */
// eslint-disable-next-line no-control-regex
export const FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2028\u2029\u2066-\u2069]|\p{Cs}/u;
