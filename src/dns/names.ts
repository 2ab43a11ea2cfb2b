import { DnsError, type RRType } from './types.js';

const MAX_LABEL_OCTETS = 63;
const MAX_NAME_OCTETS = 253; // text form without the trailing dot; 255 on the wire

/**
 * Checks that a name can be sent and returns its canonical cache form: one trailing dot
 * stripped, lower case. The root is "." (kept as is). Octets are counted as they go on the
 * wire (dns-packet writes labels as UTF-8).
 */
export function canonicalName(name: string, type: RRType): string {
  if (name === '.') return '.';
  const stripped = name.endsWith('.') ? name.slice(0, -1) : name;
  if (stripped === '') throw new DnsError('BADNAME', name, type, 'empty name');
  if (Buffer.byteLength(stripped, 'utf8') > MAX_NAME_OCTETS) {
    throw new DnsError('BADNAME', name, type, `name longer than ${MAX_NAME_OCTETS} octets`);
  }
  let start = 0;
  for (;;) {
    const dot = stripped.indexOf('.', start);
    const end = dot < 0 ? stripped.length : dot;
    if (end === start) throw new DnsError('BADNAME', name, type, 'empty label');
    // UTF-8 needs at most 3 octets per UTF-16 unit, so short labels skip the byte count
    // (this runs on every cache lookup: no allocation for ordinary names).
    if ((end - start) * 3 > MAX_LABEL_OCTETS && Buffer.byteLength(stripped.slice(start, end), 'utf8') > MAX_LABEL_OCTETS) {
      throw new DnsError('BADNAME', name, type, `label longer than ${MAX_LABEL_OCTETS} octets`);
    }
    if (dot < 0) break;
    start = dot + 1;
  }
  return stripped.toLowerCase();
}

/** Names as dns-packet decodes them never carry the trailing dot, except the root ".". */
export function sameName(a: string, b: string): boolean {
  return a.length === b.length && a.toLowerCase() === b.toLowerCase();
}
