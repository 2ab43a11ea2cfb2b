import { createLogger, type Logger } from '../../src/log/index.js';

export type LogFormat = 'text' | 'json';

/** A debug-level logger named sos-milter whose lines are kept in `lines`. */
export function captureLog(format: LogFormat): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger({ name: 'sos-milter', level: 'debug', format, destination: { write: (line: string) => lines.push(line) } });
  return { logger, lines };
}

/** What must never appear raw in a line body (the `u` flag matches only unpaired surrogates). */
// eslint-disable-next-line no-control-regex
export const FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2028\u2029\u2066-\u2069]|\p{Cs}/u;
