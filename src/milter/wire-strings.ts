/** Reading and writing NUL-terminated strings inside packet payloads. */
import { MilterEncodeError, MilterProtocolError } from './errors.js';
import { decodeWireString } from './strings.js';

/**
 * Splits `str*` (NUL-terminated strings back to back) keeping empty fields.
 * A payload whose last string lacks its NUL is truncated and rejected.
 */
export function splitStrings(buf: Buffer, start = 0, what = 'string list'): string[] {
  const out: string[] = [];
  let s = start;
  const end = buf.length;
  while (s < end) {
    const nul = buf.indexOf(0, s);
    if (nul < 0) throw new MilterProtocolError('MISSING_NUL', `${what}: last string is not NUL-terminated`);
    out.push(decodeWireString(buf, s, nul));
    s = nul + 1;
  }
  return out;
}

/** Reads one NUL-terminated string at `start`; returns it and the offset after its NUL. */
export function readString(buf: Buffer, start: number, what: string): [string, number] {
  const nul = buf.indexOf(0, start);
  if (nul < 0 || start > buf.length) {
    throw new MilterProtocolError('MISSING_NUL', `${what} is not NUL-terminated`);
  }
  return [decodeWireString(buf, start, nul), nul + 1];
}

/** Encodes strings as `str*`. Embedded NULs would shift every later field, so they are refused. */
export function joinStrings(values: readonly string[], what = 'string'): Buffer {
  const parts: Buffer[] = [];
  for (const v of values) {
    if (v.includes('\0')) throw new MilterEncodeError('NUL_IN_STRING', `${what} contains a NUL byte`);
    parts.push(Buffer.from(v, 'utf8'), ZERO);
  }
  return Buffer.concat(parts);
}

const ZERO = Buffer.from([0]);
