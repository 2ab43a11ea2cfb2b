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

/** What a text line needs from a logger's bindings; derived once per (child) logger. */
export interface TextBindings {
  /** `<name>:` and, when bound, ` <conn>/<queue id>:`. */
  head: string;
  /** ` key=value` for every other binding, in binding order. */
  tail: string;
  /** Keys of those other bindings (a logged field of the same name would take their place). */
  extraKeys: ReadonlySet<string>;
}

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

/** The same rendering as formatTextLine, from the bindings record alone. */
export function textBindings(bindings: Record<string, unknown>): TextBindings {
  let head = ` ${escapeControl(String(bindings.name ?? '-'))}:`;
  if (bindings.conn !== undefined) {
    head += ` ${escapeControl(String(bindings.conn))}${bindings.queueId !== undefined ? `/${escapeControl(String(bindings.queueId))}` : ''}:`;
  } else if (bindings.queueId !== undefined) {
    head += ` ${escapeControl(String(bindings.queueId))}:`;
  }
  let tail = '';
  const extraKeys = new Set<string>();
  for (const key in bindings) {
    const value = bindings[key];
    if (OWN_KEYS.has(key) || value === undefined) continue;
    extraKeys.add(key);
    tail += ` ${escapeControl(key)}=${formatValue(value)}`;
  }
  return { head, tail, extraKeys };
}

/**
 * Renders a line straight from the logged values, without a JSON round trip, when that gives
 * exactly what formatTextLine gives for pino's JSON: every field a string, finite number,
 * boolean or null (JSON keeps those as they are), under a key that neither formatTextLine
 * nor a binding claims and that no serializer rewrites (`unsafe`). Returns undefined otherwise.
 */
export function formatTextLineDirect(
  time: string,
  levelLabel: string,
  bindings: TextBindings,
  msg: unknown,
  fields: Record<string, unknown>,
  unsafe: (key: string) => boolean,
): string | undefined {
  if (msg !== undefined && typeof msg !== 'string') return undefined;
  let props = '';
  for (const key in fields) {
    if (!Object.prototype.hasOwnProperty.call(fields, key)) continue;
    const value = fields[key];
    if (value === undefined) continue;
    // Integer-like keys would be reordered by JSON.parse; leave them to the slow path.
    if (OWN_KEYS.has(key) || bindings.extraKeys.has(key) || unsafe(key) || isDigit(key.charCodeAt(0))) return undefined;
    const type = typeof value;
    if (type === 'string') props += ` ${escapeControl(key)}=${formatValue(value)}`;
    else if (value === null || type === 'boolean' || (type === 'number' && Number.isFinite(value))) props += ` ${escapeControl(key)}=${String(value)}`;
    else return undefined;
  }
  const level = LABELS[levelLabel] ?? levelLabel.toUpperCase();
  let line = `${time} ${level}${bindings.head}`;
  if (msg !== undefined) line += ` ${escapeControl(msg)}`;
  return `${line}${bindings.tail}${props}\n`;
}
