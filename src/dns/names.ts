import { DnsError, type RRType } from './types.js';

const MAX_LABEL_OCTETS = 63;
const MAX_NAME_OCTETS = 253; // text form without the trailing dot; 255 on the wire

/**
 * Checks that a name can be sent and returns its canonical cache form: one trailing dot
 * stripped, lower case. The root is "." (kept as is). Octets are counted as they go on the
 * wire (dns-packet writes labels as UTF-8).
 */
export function canonicalName(name: string, type: RRType): string {
  // Fast path, taken on every cache lookup: an ASCII lower-case name without trailing dot
  // and with valid label lengths is returned as the same string instance, so a Map keyed by
  // it reuses the string's cached hash and nothing is allocated.
  const n = name.length;
  if (n > 0 && n <= MAX_NAME_OCTETS) {
    let labelStart = 0;
    let i = 0;
    for (; i < n; i++) {
      const c = name.charCodeAt(i);
      if (c === 46) {
        if (i === labelStart || i - labelStart > MAX_LABEL_OCTETS) break;
        labelStart = i + 1;
      } else if ((c >= 65 && c <= 90) || c > 127) {
        break;
      }
    }
    if (i === n && labelStart < n && n - labelStart <= MAX_LABEL_OCTETS) return name;
  }
  return slowCanonicalName(name, type);
}

function slowCanonicalName(name: string, type: RRType): string {
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
