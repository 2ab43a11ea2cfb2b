/**
 * IP address parsing and CIDR matching for SPF. Hand-written (no regular expressions) so that
 * attacker-controlled record text is scanned in linear time, and strict: RFC 7208 §5.6 forbids
 * shortened IPv4 forms and leading zeros.
 */

export interface IpAddress {
  family: 4 | 6;
  /** 4 or 16 octets. */
  bytes: Uint8Array;
  /** Canonical text: dotted quad, or RFC 5952 compressed lower-case IPv6 (the %{c} form). */
  text: string;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** Strict dotted quad: four decimal octets, no leading zeros, nothing else. */
export function parseIpv4(s: string): Uint8Array | null {
  const out = new Uint8Array(4);
  let part = 0;
  let i = 0;
  const n = s.length;
  while (part < 4) {
    const start = i;
    let value = 0;
    while (i < n && isDigit(s.charCodeAt(i)) && i - start < 4) {
      value = value * 10 + (s.charCodeAt(i) - 48);
      i++;
    }
    const len = i - start;
    if (len === 0 || len > 3 || value > 255) return null;
    if (len > 1 && s.charCodeAt(start) === 48) return null;
    out[part++] = value;
    if (part < 4) {
      if (s.charCodeAt(i) !== 46) return null;
      i++;
    }
  }
  return i === n ? out : null;
}

/** RFC 4291 §2.2 text forms, including "::" compression and a trailing embedded IPv4. */
export function parseIpv6(s: string): Uint8Array | null {
  if (s.length < 2 || s.length > 45) return null;
  const dbl = s.indexOf('::');
  if (dbl !== -1 && s.indexOf('::', dbl + 1) !== -1) return null;
  const head = dbl === -1 ? s : s.slice(0, dbl);
  const tail = dbl === -1 ? '' : s.slice(dbl + 2);
  const headGroups = parseGroups(head, dbl === -1 || tail === '');
  const tailGroups = parseGroups(tail, true);
  if (!headGroups || !tailGroups) return null;
  const total = headGroups.length + tailGroups.length;
  if (dbl === -1 ? total !== 8 : total > 7) return null;
  const out = new Uint8Array(16);
  headGroups.forEach((g, k) => {
    out[k * 2] = g >> 8;
    out[k * 2 + 1] = g & 0xff;
  });
  const offset = 8 - tailGroups.length;
  tailGroups.forEach((g, k) => {
    out[(offset + k) * 2] = g >> 8;
    out[(offset + k) * 2 + 1] = g & 0xff;
  });
  return out;
}

/** 16-bit groups separated by ':'; the last may be a dotted quad when `allowV4Tail`. */
function parseGroups(s: string, allowV4Tail: boolean): number[] | null {
  if (s === '') return [];
  const parts = s.split(':');
  const groups: number[] = [];
  for (let k = 0; k < parts.length; k++) {
    const p = parts[k];
    if (k === parts.length - 1 && allowV4Tail && p.includes('.')) {
      const v4 = parseIpv4(p);
      if (!v4) return null;
      groups.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      continue;
    }
    if (p.length < 1 || p.length > 4) return null;
    let v = 0;
    for (let i = 0; i < p.length; i++) {
      const h = hexValue(p.charCodeAt(i));
      if (h < 0) return null;
      v = v * 16 + h;
    }
    groups.push(v);
  }
  return groups;
}

export function formatIpv4(b: Uint8Array): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

/** RFC 5952: lower case, no leading zeros, the longest run (>1) of zero groups as "::". */
export function formatIpv6(b: Uint8Array): string {
  const groups: number[] = [];
  for (let k = 0; k < 8; k++) groups.push((b[k * 2] << 8) | b[k * 2 + 1]);
  let bestStart = -1;
  let bestLen = 0;
  for (let k = 0; k < 8; ) {
    if (groups[k] !== 0) {
      k++;
      continue;
    }
    let j = k;
    while (j < 8 && groups[j] === 0) j++;
    if (j - k > bestLen && j - k > 1) {
      bestStart = k;
      bestLen = j - k;
    }
    k = j;
  }
  const hex = (g: number) => g.toString(16);
  if (bestStart === -1) return groups.map(hex).join(':');
  const left = groups.slice(0, bestStart).map(hex).join(':');
  const right = groups.slice(bestStart + bestLen).map(hex).join(':');
  return `${left}::${right}`;
}

function isV4Mapped(b: Uint8Array): boolean {
  for (let k = 0; k < 10; k++) if (b[k] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/**
 * The SMTP client address. IPv4-mapped IPv6 is turned into IPv4 (RFC 7208 §5: such clients
 * are evaluated as IPv4). Accepts the bracketed and "IPv6:"-prefixed forms MTAs hand out.
 */
export function parseClientIp(input: string): IpAddress | null {
  let s = input.trim();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  if (s.length > 5 && s.slice(0, 5).toLowerCase() === 'ipv6:') s = s.slice(5);
  const v4 = parseIpv4(s);
  if (v4) return { family: 4, bytes: v4, text: formatIpv4(v4) };
  const v6 = parseIpv6(s);
  if (!v6) return null;
  if (isV4Mapped(v6)) {
    const b = v6.slice(12);
    return { family: 4, bytes: b, text: formatIpv4(b) };
  }
  return { family: 6, bytes: v6, text: formatIpv6(v6) };
}

/** Whether the first `bits` bits of `a` and `b` (same length) agree: CIDR matching (RFC 7208 §5.6). */
export function sameNetwork(a: Uint8Array, b: Uint8Array, bits: number): boolean {
  if (a.length !== b.length) return false;
  const whole = bits >> 3;
  for (let k = 0; k < whole; k++) if (a[k] !== b[k]) return false;
  const rest = bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (a[whole] & mask) === (b[whole] & mask);
}

/** The %{i} form (RFC 7208 §7.3): dotted quad, or 32 dot-separated upper-case nibbles for IPv6. */
export function ipMacroValue(ip: IpAddress): string {
  if (ip.family === 4) return ip.text;
  const nibbles: string[] = [];
  for (const byte of ip.bytes) nibbles.push((byte >> 4).toString(16), (byte & 15).toString(16));
  return nibbles.join('.').toUpperCase();
}

/** The name queried for PTR records of `ip` (in-addr.arpa / ip6.arpa, RFC 7208 §5.5). */
export function reverseName(ip: IpAddress): string {
  if (ip.family === 4) {
    const b = ip.bytes;
    return `${b[3]}.${b[2]}.${b[1]}.${b[0]}.in-addr.arpa`;
  }
  return `${ipMacroValue(ip).split('.').reverse().join('.').toLowerCase()}.ip6.arpa`;
}
