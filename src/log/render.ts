/**
 * The two line formats, one renderer each, from the same values:
 * - text: `2026-11-25T21:00:00.000Z INFO sos-milter: 12/4XyZ1: message key=value ...`, where
 *   `<conn>/<queue id>:` comes from the bindings (or fields) `conn` and `queueId`, so every line
 *   about one message can be grepped like Postfix's own;
 * - JSON: `{"level":"info","time":"…","name":"sos-milter","conn":…,"queueId":…,…,"msg":"…"}`.
 * A logger's bindings are rendered once per logger (per message, for a message's child logger).
 * Every string is escaped and bounded (escape.ts) and each line is at most LINE_MAX_BYTES:
 * past that, trailing fields are left out and a `cut` field says how many and how large.
 */
import { ATOM_MAX_BYTES, escapeText, fitsBytes, quote, textAtom, textValue } from './escape.js';
import { errorSummary, isNested, isSecretKey, jsonNested, jsonScalar, REDACTED } from './values.js';

export type LevelName = 'debug' | 'info' | 'warn' | 'error';
export type Fields = Record<string, unknown>;

/** Bytes of one line (without the journal priority prefix and the newline). */
export const LINE_MAX_BYTES = 8192;

/** A logger's bindings as the renderer needs them, derived once per logger. */
export interface Bound {
  readonly name: string;
  readonly bindings: Fields;
  /** Keys of the bindings other than conn and queueId: a field of the same name replaces the binding. */
  readonly extraKeys: ReadonlySet<string>;
  /** Text: ` <name>: <conn>/<queue id>:`; JSON: `,"name":…` with conn and queue id. */
  readonly head: string;
  /** The other bindings, rendered like fields, in binding order. */
  readonly tail: readonly string[];
  readonly tailText: string;
}

export interface LineRenderer {
  bind(name: string, bindings: Fields): Bound;
  /** One line, newline included. */
  line(level: LevelName, time: string, bound: Bound, fields: Fields | undefined, msg: string | undefined): string;
}

/** conn and queueId make the `<conn>/<queue id>:` prefix (text) and follow the name (JSON). */
function isPrefixKey(key: string): boolean {
  return key === 'conn' || key === 'queueId';
}

// Keys a format writes itself; a field or binding of that name is written as `_<key>`.
const RESERVED_KEYS = new Set(['level', 'time', 'name', 'msg', 'cut']);

/**
 * What a format writes before each value (` key=`, `,"key":`), escaped, kept per key: keys
 * are a few dozen names from the code, so each is escaped once instead of once per line. A key
 * built from input could grow the table, so it stops growing at MAX_CACHED_KEYS.
 */
class KeyPrefixes {
  private static readonly MAX_CACHED_KEYS = 1024;
  private readonly cache = new Map<string, string>();

  constructor(private readonly render: (key: string) => string) {}

  get(key: string): string {
    let prefix = this.cache.get(key);
    if (prefix === undefined) {
      prefix = this.render(RESERVED_KEYS.has(key) ? `_${key}` : key);
      if (this.cache.size < KeyPrefixes.MAX_CACHED_KEYS) this.cache.set(key, prefix);
    }
    return prefix;
  }
}

const NO_KEYS: ReadonlySet<string> = new Set();

function bound(name: string, bindings: Fields, head: string, field: (key: string, value: unknown) => string): Bound {
  const tail: string[] = [];
  let extraKeys: Set<string> | undefined;
  for (const key in bindings) {
    if (isPrefixKey(key)) continue;
    (extraKeys ??= new Set()).add(key);
    const piece = field(key, bindings[key]);
    if (piece !== '') tail.push(piece);
  }
  return { name, bindings, extraKeys: extraKeys ?? NO_KEYS, head, tail, tailText: tail.join('') };
}

/**
 * The bound tail and every field, rendered; undefined when a field must take a binding's place
 * (a prefix key, or a key the logger has bound), which the caller handles by rebinding.
 */
function renderFields(b: Bound, fields: Fields | undefined, field: (key: string, value: unknown) => string): string | undefined {
  let out = b.tailText;
  if (fields === undefined) return out;
  const checkBound = b.extraKeys.size > 0;
  for (const key in fields) {
    if (isPrefixKey(key) || (checkBound && b.extraKeys.has(key))) return undefined;
    out += field(key, fields[key]);
  }
  return out;
}

/** Bindings with the colliding fields merged in (the field wins), and the remaining fields. */
function rebind(renderer: LineRenderer, b: Bound, fields: Fields): [Bound, Fields] {
  const merged: Fields = { ...b.bindings };
  const rest: Fields = {};
  for (const key in fields) {
    if (isPrefixKey(key) || b.extraKeys.has(key)) merged[key] = fields[key];
    else rest[key] = fields[key];
  }
  return [renderer.bind(b.name, merged), rest];
}

function within(line: string): boolean {
  return fitsBytes(line, LINE_MAX_BYTES);
}

// Room kept for the `cut` field when fields are left out.
const CUT_FIELD_ROOM = 64;

/**
 * For a line over LINE_MAX_BYTES: the bound tail and the fields that fit after `fixedBytes`, in
 * order, and a `cut` piece for the rest.
 */
function fitPieces(fixedBytes: number, b: Bound, fields: Fields | undefined, field: (key: string, value: unknown) => string, cutPiece: (text: string) => string): string {
  const pieces = [...b.tail];
  if (fields !== undefined) for (const key in fields) pieces.push(field(key, fields[key]));
  let out = '';
  let used = fixedBytes;
  let cutCount = 0;
  let cutBytes = 0;
  for (const piece of pieces) {
    const size = Buffer.byteLength(piece);
    if (cutCount === 0 && used + size <= LINE_MAX_BYTES - CUT_FIELD_ROOM) {
      out += piece;
      used += size;
    } else {
      cutCount++;
      cutBytes += size;
    }
  }
  return cutCount > 0 ? out + cutPiece(`${cutCount} field${cutCount === 1 ? '' : 's'}, ${cutBytes} bytes`) : out;
}

/** What makes a format: how it writes a field, the bindings, the start and end of a line. */
interface Format {
  /** One field with its separator (` key=value`, `,"key":value`); '' for a value not written. */
  field(key: string, value: unknown): string;
  /** The name and the prefix bindings (conn, queueId), once per logger. */
  head(name: string, bindings: Fields): string;
  /** What comes before the bindings' tail and the fields. */
  start(level: LevelName, time: string, b: Bound, msg: string | undefined): string;
  /** What comes after them. */
  end(msg: string | undefined): string;
  /** The field that says what was left out of a line over LINE_MAX_BYTES. */
  cut(what: string): string;
}

function rendererOf(format: Format): LineRenderer {
  const renderer: LineRenderer = {
    bind: (name, bindings) => bound(name, bindings, format.head(name, bindings), format.field),
    line(level, time, b, fields, msg) {
      let rest = renderFields(b, fields, format.field);
      if (rest === undefined) {
        [b, fields] = rebind(renderer, b, fields!);
        rest = renderFields(b, fields, format.field)!;
      }
      const start = format.start(level, time, b, msg);
      const end = format.end(msg);
      const line = start + rest + end;
      if (within(line)) return `${line}\n`;
      const fixed = Buffer.byteLength(start) + Buffer.byteLength(end);
      return `${start}${fitPieces(fixed, b, fields, format.field, format.cut)}${end}\n`;
    },
  };
  return renderer;
}

const TEXT_LABELS: Record<LevelName, string> = { debug: 'DEBUG', info: 'INFO', warn: 'WARN', error: 'ERROR' };
const textKeys = new KeyPrefixes((key) => ` ${textValue(key, ATOM_MAX_BYTES)}=`);

export const textRenderer: LineRenderer = rendererOf({
  field(key, value) {
    let rendered: string;
    if (isSecretKey(key)) rendered = REDACTED;
    else if (typeof value === 'string') rendered = textValue(value);
    else if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint' || value === null) rendered = String(value);
    else if (value instanceof Error) rendered = quote(errorSummary(value));
    else if (value instanceof Date) rendered = textValue(Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString());
    else if (isNested(value)) rendered = jsonNested(value);
    else return '';
    return textKeys.get(key) + rendered;
  },
  head(name, bindings) {
    let head = ` ${escapeText(name, false, ATOM_MAX_BYTES)}:`;
    const conn = bindings.conn;
    const queueId = bindings.queueId;
    if (conn !== undefined) head += ` ${textAtom(String(conn))}${queueId !== undefined ? `/${textAtom(String(queueId))}` : ''}:`;
    else if (queueId !== undefined) head += ` ${textAtom(String(queueId))}:`;
    return head;
  },
  start: (level, time, b, msg) => `${time} ${TEXT_LABELS[level]}${b.head}${msg !== undefined ? ` ${escapeText(msg, false)}` : ''}`,
  end: () => '',
  cut: (what) => ` cut="${what}"`,
});

const jsonKeys = new KeyPrefixes((key) => `,${quote(key, ATOM_MAX_BYTES)}:`);

function jsonField(key: string, value: unknown): string {
  const rendered = isSecretKey(key) ? quote(REDACTED) : (jsonScalar(value) ?? (isNested(value) ? jsonNested(value) : undefined));
  return rendered === undefined ? '' : jsonKeys.get(key) + rendered;
}

/** The connection or queue id: bounded like the text format's prefix. */
function jsonAtom(key: string, value: unknown): string {
  return typeof value === 'string' ? `,"${key}":${quote(value, ATOM_MAX_BYTES)}` : jsonField(key, value);
}

export const jsonRenderer: LineRenderer = rendererOf({
  field: jsonField,
  head(name, bindings) {
    let head = `,"name":${quote(name, ATOM_MAX_BYTES)}`;
    if (bindings.conn !== undefined) head += jsonAtom('conn', bindings.conn);
    if (bindings.queueId !== undefined) head += jsonAtom('queueId', bindings.queueId);
    return head;
  },
  start: (level, time, b) => `{"level":"${level}","time":"${time}"${b.head}`,
  end: (msg) => (msg !== undefined ? `,"msg":${quote(msg)}}` : '}'),
  cut: (what) => `,"cut":"${what}"`,
});
