import { domainToASCII } from 'node:url';

/**
 * Domain-name rules SPF needs beyond the record grammar. Names are handled as latin1 strings
 * (one char per octet), so `length` is the length in octets.
 */

export const MAX_NAME_OCTETS = 253;
export const MAX_LABEL_OCTETS = 63;

/** Strip one trailing dot (RFC 7208 §7.3: a trailing dot is ignored for domains). */
export function stripTrailingDot(name: string): string {
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

/**
 * Whether a DNS query can be composed for `name`: non-empty labels of at most 63 octets and at
 * most 253 octets in all. Names that fail this are "no match" for mechanisms, never temperror.
 */
export function isQueryableName(name: string): boolean {
  if (name.length === 0 || name.length > MAX_NAME_OCTETS) return false;
  let labelStart = 0;
  for (let i = 0; i <= name.length; i++) {
    if (i === name.length || name.charCodeAt(i) === 46) {
      const len = i - labelStart;
      if (len === 0 || len > MAX_LABEL_OCTETS) return false;
      labelStart = i + 1;
    }
  }
  return true;
}

/** RFC 7208 §7.3: drop labels from the left until the name fits in 253 octets. */
export function truncateName(name: string): string {
  let s = name;
  while (s.length > MAX_NAME_OCTETS) {
    const dot = s.indexOf('.');
    if (dot === -1) return s;
    s = s.slice(dot + 1);
  }
  return s;
}

/**
 * Normalise the <domain> handed to check_host(): strip a trailing dot and convert a U-label
 * domain to A-labels (RFC 7208 §4.3 wants IDNs as A-labels). Returns null when that is impossible.
 */
export function normaliseIdentityDomain(domain: string): string | null {
  let d = stripTrailingDot(domain.trim());
  if (/[^\x20-\x7e]/.test(d)) {
    const ascii = domainToASCII(d);
    if (ascii === '') return null;
    d = ascii;
  }
  return d;
}

/**
 * RFC 7208 §4.3: a <domain> that is malformed (bad label lengths, empty labels), a domain
 * literal, or not multi-label yields "none" before any lookup.
 */
export function isValidIdentityDomain(domain: string): boolean {
  if (!isQueryableName(domain)) return false;
  const lastDot = domain.lastIndexOf('.');
  if (lastDot <= 0) return false;
  for (let i = 0; i < domain.length; i++) {
    const c = domain.charCodeAt(i);
    // Visible ASCII only; '[' ']' mark address literals, '@' a misparsed address.
    if (c <= 0x20 || c >= 0x7f || c === 0x5b || c === 0x5d || c === 0x40) return false;
  }
  // An all-numeric top label means an IP address written without brackets.
  const top = domain.slice(lastDot + 1);
  let numeric = true;
  for (let i = 0; i < top.length; i++) {
    const c = top.charCodeAt(i);
    if (c < 48 || c > 57) numeric = false;
  }
  return !numeric;
}

/** Case-insensitive: `name` equals `parent` or ends in ".parent" (ptr and %{p}, RFC 7208 §5.5, §7.3). */
export function isSameOrSubdomain(name: string, parent: string): boolean {
  const n = stripTrailingDot(name).toLowerCase();
  const p = stripTrailingDot(parent).toLowerCase();
  return n === p || (n.length > p.length && n.endsWith(p) && n.charCodeAt(n.length - p.length - 1) === 46);
}
