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
import { ATOM_MAX_BYTES, escapeText, quote, textAtom, textValue } from './escape.js';
import { errorSummary, isNested, isSecretKey, jsonNested, jsonScalar, REDACTED } from './values.js';

export type LevelName = 'debug' | 'info' | 'warn' | 'error';
export type Fields = Record<string, unknown>;

/** Bytes of one line (without the journal priority prefix and the newline). */
export const LINE_MAX_BYTES = 8192;

/** A logger's bindings as the renderer needs them, derived once per logger. */
export interface Bound {
  readonly name: string;
  readonly bindings: Fields;
  /** Keys of the bindings: a field of the same name takes the binding's place. */
  readonly keys: ReadonlySet<string>;
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

const PREFIX_KEYS = new Set(['conn', 'queueId']);
// Keys a format writes itself; a field or binding of that name is written as `_<key>`.
const RESERVED_KEYS = new Set(['level', 'time', 'name', 'msg', 'cut']);

function outputKey(key: string): string {
  return RESERVED_KEYS.has(key) ? `_${key}` : key;
}

/** The field and binding keys that must move into the bindings (prefix keys, or bound keys). */
function collides(bound: Bound, fields: Fields): boolean {
  for (const key in fields) if (PREFIX_KEYS.has(key) || bound.keys.has(key)) return true;
  return false;
}

/** Bindings with the colliding fields merged in (the field wins), and the remaining fields. */
function rebind(renderer: LineRenderer, bound: Bound, fields: Fields): [Bound, Fields] {
  const merged: Fields = { ...bound.bindings };
  const rest: Fields = {};
  for (const key in fields) {
    if (PREFIX_KEYS.has(key) || bound.keys.has(key)) merged[key] = fields[key];
    else rest[key] = fields[key];
  }
  return [renderer.bind(bound.name, merged), rest];
}

function tailOf(bindings: Fields, field: (key: string, value: unknown) => string): string[] {
  const tail: string[] = [];
  for (const key in bindings) {
    if (PREFIX_KEYS.has(key)) continue;
    const piece = field(key, bindings[key]);
    if (piece !== '') tail.push(piece);
  }
  return tail;
}

function within(line: string): boolean {
  return line.length * 3 <= LINE_MAX_BYTES || Buffer.byteLength(line) <= LINE_MAX_BYTES;
}

// Room kept for the `cut` field when fields are left out.
const CUT_FIELD_ROOM = 64;

/**
 * For a line over LINE_MAX_BYTES: the pieces (bindings, then fields) that fit after `fixed`
 * bytes, in order, and a `cut` piece for the rest.
 */
function fitPieces(fixedBytes: number, pieces: string[], cutPiece: (count: number, bytes: number) => string): string {
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
  return cutCount > 0 ? out + cutPiece(cutCount, cutBytes) : out;
}

function cutText(count: number, bytes: number): string {
  return `${count} field${count === 1 ? '' : 's'}, ${bytes} bytes`;
}

const TEXT_LABELS: Record<LevelName, string> = { debug: 'DEBUG', info: 'INFO', warn: 'WARN', error: 'ERROR' };

/** ` key=value`, or '' for a value that is not written (undefined, function, symbol). */
function textField(key: string, value: unknown): string {
  let rendered: string;
  if (isSecretKey(key)) rendered = REDACTED;
  else if (typeof value === 'string') rendered = textValue(value);
  else if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint' || value === null) rendered = String(value);
  else if (value instanceof Error) rendered = quote(errorSummary(value));
  else if (value instanceof Date) rendered = textValue(Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString());
  else if (isNested(value)) rendered = jsonNested(value);
  else return '';
  return ` ${textValue(outputKey(key), ATOM_MAX_BYTES)}=${rendered}`;
}

export const textRenderer: LineRenderer = {
  bind(name, bindings) {
    let head = ` ${escapeText(name, false, ATOM_MAX_BYTES)}:`;
    const conn = bindings.conn;
    const queueId = bindings.queueId;
    if (conn !== undefined) head += ` ${textAtom(String(conn))}${queueId !== undefined ? `/${textAtom(String(queueId))}` : ''}:`;
    else if (queueId !== undefined) head += ` ${textAtom(String(queueId))}:`;
    const tail = tailOf(bindings, textField);
    return { name, bindings, keys: new Set(Object.keys(bindings)), head, tail, tailText: tail.join('') };
  },

  line(level, time, bound, fields, msg) {
    if (fields !== undefined && collides(bound, fields)) [bound, fields] = rebind(textRenderer, bound, fields);
    let start = `${time} ${TEXT_LABELS[level]}${bound.head}`;
    if (msg !== undefined) start += ` ${escapeText(msg, false)}`;
    let rest = bound.tailText;
    if (fields !== undefined) for (const key in fields) rest += textField(key, fields[key]);
    const line = start + rest;
    if (within(line)) return `${line}\n`;
    const pieces = [...bound.tail];
    if (fields !== undefined) for (const key in fields) pieces.push(textField(key, fields[key]));
    return `${start}${fitPieces(Buffer.byteLength(start), pieces, (n, b) => ` cut="${cutText(n, b)}"`)}\n`;
  },
};

/** `,"key":value`, or '' for a value that JSON leaves out. */
function jsonField(key: string, value: unknown): string {
  const rendered = isSecretKey(key) ? quote(REDACTED) : (jsonScalar(value) ?? (isNested(value) ? jsonNested(value) : undefined));
  if (rendered === undefined) return '';
  return `,${quote(outputKey(key), ATOM_MAX_BYTES)}:${rendered}`;
}

/** The connection or queue id: bounded like the text format's prefix. */
function jsonAtom(key: string, value: unknown): string {
  return typeof value === 'string' ? `,"${key}":${quote(value, ATOM_MAX_BYTES)}` : jsonField(key, value);
}

export const jsonRenderer: LineRenderer = {
  bind(name, bindings) {
    let head = `,"name":${quote(name, ATOM_MAX_BYTES)}`;
    if (bindings.conn !== undefined) head += jsonAtom('conn', bindings.conn);
    if (bindings.queueId !== undefined) head += jsonAtom('queueId', bindings.queueId);
    const tail = tailOf(bindings, jsonField);
    return { name, bindings, keys: new Set(Object.keys(bindings)), head, tail, tailText: tail.join('') };
  },

  line(level, time, bound, fields, msg) {
    if (fields !== undefined && collides(bound, fields)) [bound, fields] = rebind(jsonRenderer, bound, fields);
    const start = `{"level":"${level}","time":"${time}"${bound.head}`;
    const end = msg !== undefined ? `,"msg":${quote(msg)}}` : '}';
    let rest = bound.tailText;
    if (fields !== undefined) for (const key in fields) rest += jsonField(key, fields[key]);
    const line = start + rest + end;
    if (within(line)) return `${line}\n`;
    const pieces = [...bound.tail];
    if (fields !== undefined) for (const key in fields) pieces.push(jsonField(key, fields[key]));
    const fixed = Buffer.byteLength(start) + Buffer.byteLength(end);
    return `${start}${fitPieces(fixed, pieces, (n, b) => `,"cut":"${cutText(n, b)}"`)}${end}\n`;
  },
};
