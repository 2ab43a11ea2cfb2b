/**
 * A milter library server on a loopback port for one test, with a logger that records every
 * line (the library's bound and timeout tests read its warnings).
 */
import { MilterServer, type MilterApplication, type MilterLogger, type MilterServerOptions } from '../../src/milter/index.js';

export interface LoggedLine {
  level: string;
  msg: string;
  /** The fields object; {} for a line logged with a message only. */
  obj: Record<string, unknown>;
}

export type RecordingLogger = MilterLogger & { lines: LoggedLine[] };

/** Records every line at every level (debug included). */
export function recordingLogger(): RecordingLogger {
  const lines: LoggedLine[] = [];
  const at = (level: string) => (obj: object | string, msg?: string) =>
    lines.push({ level, msg: msg ?? String(obj), obj: typeof obj === 'object' ? (obj as Record<string, unknown>) : {} });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Runs `fn` against a listening server; closes it afterwards (drain deadline 200 ms). */
export async function withServer(app: MilterApplication, opts: Partial<MilterServerOptions>, fn: (s: MilterServer, log: RecordingLogger) => Promise<void>): Promise<void> {
  const logger = recordingLogger();
  const server = new MilterServer(app, { socket: 'inet:0@127.0.0.1', logger, ...opts });
  await server.listen();
  try {
    await fn(server, logger);
  } finally {
    await server.close({ deadlineMs: 200 });
  }
}
