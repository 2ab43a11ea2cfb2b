/**
 * What a logged value becomes, shared by both renderers: secret redaction, errors, and nested
 * objects as bounded JSON (depth, members, bytes), so a config dump or an error with a long
 * stack cannot make a line unbounded.
 */
import { ATOM_MAX_BYTES, escapeText, fitsBytes, quote } from './escape.js';

export const REDACTED = '[redacted]';

/** Bytes of one nested value (object, array, error) rendered as JSON before it is cut. */
export const NESTED_MAX_BYTES = 4096;
const NESTED_MAX_DEPTH = 4;
const NESTED_MAX_MEMBERS = 64;

// Secrets that must never reach a log line, compared case-insensitively, at any depth.
const SECRET_KEYS = new Set(['password', 'bindpw', 'passwd', 'secret', 'ldap_bindpw']);

export function isSecretKey(key: string): boolean {
  // Lengths of the secret names: most keys are ruled out without lower-casing them.
  const n = key.length;
  return (n === 6 || n === 8 || n === 11) && SECRET_KEYS.has(key.toLowerCase());
}

/** `Type: message` of an error, for the text format. */
export function errorSummary(err: Error): string {
  return `${errorType(err)}: ${err.message}`;
}

function errorType(err: Error): string {
  const ctor = (err as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof ctor === 'string' && ctor !== '' ? ctor : err.name;
}

/** Whether `value` is written as nested JSON (objects, arrays, errors) rather than a scalar. */
export function isNested(value: unknown): value is object {
  return typeof value === 'object' && value !== null && !(value instanceof Date);
}

/**
 * A scalar as JSON, or undefined for what JSON leaves out (undefined, functions, symbols).
 * Non-finite numbers become null as in JSON.stringify; bigints their digits.
 */
export function jsonScalar(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      return quote(value);
    case 'number':
      return Number.isFinite(value) ? String(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      return value.toString();
    case 'object':
      if (value === null) return 'null';
      if (value instanceof Date) return quote(Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString());
      return undefined;
    default:
      return undefined;
  }
}

/**
 * A nested value as compact JSON: secrets redacted, errors as {type, message, code, stack,
 * cause}, at most NESTED_MAX_DEPTH levels and NESTED_MAX_MEMBERS members per level. Past
 * NESTED_MAX_BYTES the JSON text is cut and given as a JSON string ending in a cut marker,
 * so the line stays valid JSON and bounded.
 */
export function jsonNested(value: object): string {
  // Twice the output bound: enough to say exactly how much was cut in all but absurd cases,
  // and a bound on the work for any object.
  const budget = { left: NESTED_MAX_BYTES * 2 };
  const json = nested(value, 0, budget);
  if (fitsBytes(json, NESTED_MAX_BYTES)) return json;
  return quote(json, NESTED_MAX_BYTES, budget.left <= 0);
}

interface Budget {
  left: number;
}

function nested(value: unknown, depth: number, budget: Budget): string {
  const scalar = jsonScalar(value);
  if (scalar !== undefined) {
    budget.left -= scalar.length;
    return scalar;
  }
  if (typeof value !== 'object' || value === null) return 'null';
  // As JSON.stringify does: Buffer, URL and the like say how they want to be written.
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function' && !(value instanceof Error)) return nested(toJSON.call(value), depth + 1, budget);
  if (depth >= NESTED_MAX_DEPTH) return Array.isArray(value) ? '"[array]"' : '"[object]"';
  if (Array.isArray(value)) {
    let out = '[';
    const n = Math.min(value.length, NESTED_MAX_MEMBERS);
    for (let i = 0; i < n; i++) {
      if (budget.left <= 0) return `${out}]`;
      if (i > 0) out += ',';
      out += nested(value[i], depth + 1, budget);
    }
    if (value.length > n) out += `,${quote(`...[${value.length - n} more items]`)}`;
    return `${out}]`;
  }
  const source: Record<string, unknown> = value instanceof Error ? errorRecord(value) : (value as Record<string, unknown>);
  let out = '{';
  let members = 0;
  let more = 0;
  for (const key in source) {
    if (!Object.prototype.hasOwnProperty.call(source, key)) continue;
    const member = source[key];
    if (member === undefined || typeof member === 'function' || typeof member === 'symbol') continue;
    if (members === NESTED_MAX_MEMBERS || budget.left <= 0) {
      more++;
      continue;
    }
    const rendered = isSecretKey(key) ? quote(REDACTED) : nested(member, depth + 1, budget);
    out += `${members > 0 ? ',' : ''}"${escapeText(key, true, ATOM_MAX_BYTES)}":${rendered}`;
    budget.left -= key.length + 4;
    members++;
  }
  if (more > 0) out += `${members > 0 ? ',' : ''}"...":${quote(`${more} more members`)}`;
  return `${out}}`;
}

function errorRecord(err: Error): Record<string, unknown> {
  const record: Record<string, unknown> = { type: errorType(err), message: err.message };
  const code = (err as { code?: unknown }).code;
  if (code !== undefined) record.code = code;
  record.stack = err.stack;
  if (err.cause !== undefined) record.cause = err.cause;
  return record;
}

