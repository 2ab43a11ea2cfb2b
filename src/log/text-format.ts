/**
 * Renders one pino JSON line as a readable single line:
 * `2026-11-25T21:00:00.000Z INFO sos-milter: 12/4XyZ1: message key=value ...`
 * The `<conn>/<queue id>` part appears when a child logger carries those bindings, so every
 * line about one message can be grepped like Postfix's own log lines.
 */

const OWN_KEYS = new Set(['level', 'time', 'name', 'msg', 'conn', 'queueId']);
const LABELS: Record<string, string> = { trace: 'TRACE', debug: 'DEBUG', info: 'INFO', warn: 'WARN', error: 'ERROR', fatal: 'FATAL' };

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/g;
// eslint-disable-next-line no-control-regex
const BARE_VALUE = /^[^\s"=\\\u0000-\u001f\u007f]+$/;

/** Log injection guard: a sender-supplied CR/LF must never start a fake log line. */
function escapeControl(text: string): string {
  return text.replace(CONTROL, (ch) => JSON.stringify(ch).slice(1, -1));
}

function formatValue(value: unknown): string {
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return value !== '' && BARE_VALUE.test(value) ? value : JSON.stringify(value);
  if (isSerializedError(value)) return JSON.stringify(`${value.type ?? 'Error'}: ${value.message}`);
  return JSON.stringify(value) ?? 'undefined';
}

interface SerializedError {
  type?: string;
  message: string;
}

function isSerializedError(value: unknown): value is SerializedError {
  return typeof value === 'object' && value !== null && typeof (value as SerializedError).message === 'string' && 'stack' in value;
}

export function formatTextLine(record: Record<string, unknown>): string {
  const time = typeof record.time === 'string' ? record.time : new Date(typeof record.time === 'number' ? record.time : Date.now()).toISOString();
  const level = LABELS[String(record.level)] ?? String(record.level).toUpperCase();
  let line = `${time} ${level} ${escapeControl(String(record.name ?? '-'))}:`;
  if (record.conn !== undefined) {
    line += ` ${escapeControl(String(record.conn))}${record.queueId !== undefined ? `/${escapeControl(String(record.queueId))}` : ''}:`;
  } else if (record.queueId !== undefined) {
    line += ` ${escapeControl(String(record.queueId))}:`;
  }
  if (record.msg !== undefined) line += ` ${escapeControl(String(record.msg))}`;
  for (const [key, value] of Object.entries(record)) {
    if (OWN_KEYS.has(key) || value === undefined) continue;
    line += ` ${escapeControl(key)}=${formatValue(value)}`;
  }
  return `${line}\n`;
}
