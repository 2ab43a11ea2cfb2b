import type { MacroString, MechanismTerm, ModifierTerm, Qualifier, SpfRecord, SpfTerm } from './types.js';
import { SpfSyntaxError } from './errors.js';
import { parseIpv4, parseIpv6 } from './ip.js';
import { checkDomainEnd, parseMacroString } from './macro.js';
import { startsSpfRecord } from '../dns/txt-bound.js';

/**
 * RFC 7208 §4.5, §4.6.1, §12 (ABNF). The whole record is checked before evaluation: a syntax
 * error anywhere, even after `all`, is permerror. Hand-written scanner, linear in the input.
 */

/** `v=spf1` (any case) followed by a space or the end of the record (RFC 7208 §4.5). */
export function isSpfRecord(text: string): boolean {
  return startsSpfRecord([text]);
}

export function parseRecord(text: string): SpfRecord {
  if (!isSpfRecord(text)) throw new SpfSyntaxError('record does not start with "v=spf1"', 0);
  // Terms are separated by spaces only; any other control or non-ASCII octet is an error (§3.1, §4.6.1).
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) throw new SpfSyntaxError(`invalid character 0x${c.toString(16).padStart(2, '0')}`, i);
  }
  const terms: SpfTerm[] = [];
  const mechanisms: MechanismTerm[] = [];
  let redirect: ModifierTerm | undefined;
  let exp: ModifierTerm | undefined;
  let hasAll = false;
  let i = 6;
  while (i < text.length) {
    if (text.charCodeAt(i) === 0x20) {
      i++;
      continue;
    }
    let end = text.indexOf(' ', i);
    if (end === -1) end = text.length;
    const term = parseTerm(text.slice(i, end), i);
    terms.push(term);
    if (term.kind === 'mechanism') {
      mechanisms.push(term);
      if (term.name === 'all') hasAll = true;
    } else if (term.name === 'redirect') {
      if (redirect) throw new SpfSyntaxError('redirect= appears more than once', i);
      redirect = term;
    } else if (term.name === 'exp') {
      if (exp) throw new SpfSyntaxError('exp= appears more than once', i);
      exp = term;
    }
    i = end;
  }
  return { text, terms, mechanisms, redirect, exp, hasAll };
}

function isAlpha(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

function isNameChar(c: number): boolean {
  return isAlpha(c) || (c >= 48 && c <= 57) || c === 45 || c === 46 || c === 95;
}

const QUALIFIERS = '+-~?';

function parseTerm(t: string, pos: number): SpfTerm {
  let j = 0;
  let qualifier: Qualifier | undefined;
  if (QUALIFIERS.includes(t[0])) {
    qualifier = t[0] as Qualifier;
    j = 1;
  }
  const nameStart = j;
  if (j >= t.length || !isAlpha(t.charCodeAt(j))) throw new SpfSyntaxError(`term '${t}' does not start with a name`, pos + j);
  while (j < t.length && isNameChar(t.charCodeAt(j))) j++;
  const name = t.slice(nameStart, j).toLowerCase();
  if (t[j] === '=') {
    if (qualifier) throw new SpfSyntaxError(`modifier '${name}' cannot have a qualifier`, pos);
    return parseModifier(t, name, t.slice(j + 1), pos, pos + j + 1);
  }
  return parseMechanism(t, name, qualifier ?? '+', t.slice(j), pos, pos + j);
}

function parseModifier(text: string, name: string, value: string, pos: number, valuePos: number): ModifierTerm {
  if (name === 'redirect' || name === 'exp') {
    return { kind: 'modifier', name, text, position: pos, value: parseDomainSpec(value, valuePos, name) };
  }
  return { kind: 'modifier', name, text, position: pos, value: parseMacroString(value, 'modifier', valuePos) };
}

function parseDomainSpec(spec: string, pos: number, what: string): MacroString {
  if (spec.length === 0) throw new SpfSyntaxError(`${what}: empty domain-spec`, pos);
  const ms = parseMacroString(spec, 'domain', pos);
  checkDomainEnd(ms, pos);
  return ms;
}

/** `rest` is "" or ":" domain-spec; returns the domain-spec if present. */
function optionalDomainSpec(rest: string, pos: number, what: string): MacroString | undefined {
  if (rest === '') return undefined;
  if (rest[0] !== ':') throw new SpfSyntaxError(`${what}: unexpected '${rest}'`, pos);
  return parseDomainSpec(rest.slice(1), pos + 1, what);
}

function parseCidr(digits: string, max: number, pos: number, what: string): number {
  let ok = digits.length >= 1 && digits.length <= 3 && !(digits.length > 1 && digits[0] === '0');
  let v = 0;
  for (let k = 0; ok && k < digits.length; k++) {
    const c = digits.charCodeAt(k);
    if (c < 48 || c > 57) ok = false;
    v = v * 10 + (c - 48);
  }
  if (!ok || v > max) throw new SpfSyntaxError(`${what}: invalid prefix length '/${digits}'`, pos);
  return v;
}

function trailingDigitsStart(s: string): number {
  let k = s.length;
  while (k > 0 && s.charCodeAt(k - 1) >= 48 && s.charCodeAt(k - 1) <= 57) k--;
  return k;
}

/** Split `[":" domain-spec] [ "/" ip4-cidr ] [ "//" ip6-cidr ]` from the right. */
function splitDualCidr(rest: string): { spec: string; c4?: string; c6?: string } {
  let s = rest;
  let c4: string | undefined;
  let c6: string | undefined;
  let k = trailingDigitsStart(s);
  if (k < s.length && k >= 2 && s[k - 1] === '/' && s[k - 2] === '/') {
    c6 = s.slice(k);
    s = s.slice(0, k - 2);
    k = trailingDigitsStart(s);
  }
  if (k < s.length && k >= 1 && s[k - 1] === '/') {
    c4 = s.slice(k);
    s = s.slice(0, k - 1);
  }
  return { spec: s, c4, c6 };
}

/** RFC 7208 §5: each mechanism with exactly the arguments its ABNF allows (§12). */
function parseMechanism(text: string, name: string, qualifier: Qualifier, rest: string, pos: number, restPos: number): MechanismTerm {
  switch (name) {
    case 'all':
      if (rest !== '') throw new SpfSyntaxError(`all: unexpected '${rest}'`, restPos);
      return { kind: 'mechanism', name, qualifier, text, position: pos };
    case 'include':
    case 'exists': {
      if (rest[0] !== ':') throw new SpfSyntaxError(`${name}: requires ":" domain-spec`, restPos);
      const domainSpec = parseDomainSpec(rest.slice(1), restPos + 1, name);
      return { kind: 'mechanism', name, qualifier, text, position: pos, domainSpec };
    }
    case 'ptr':
      return { kind: 'mechanism', name, qualifier, text, position: pos, domainSpec: optionalDomainSpec(rest, restPos, name) };
    case 'a':
    case 'mx': {
      // §5.6: dual-cidr-length, 32 and 128 when not written.
      const { spec, c4, c6 } = splitDualCidr(rest);
      const domainSpec = optionalDomainSpec(spec, restPos, name);
      const cidr4 = c4 === undefined ? 32 : parseCidr(c4, 32, pos, name);
      const cidr6 = c6 === undefined ? 128 : parseCidr(c6, 128, pos, name);
      return { kind: 'mechanism', name, qualifier, text, position: pos, domainSpec, cidr4, cidr6 };
    }
    case 'ip4': {
      const { network, networkBytes, length } = parseNetwork(name, rest, pos, restPos);
      return { kind: 'mechanism', name, qualifier, text, position: pos, network, networkBytes, cidr4: length };
    }
    case 'ip6': {
      const { network, networkBytes, length } = parseNetwork(name, rest, pos, restPos);
      return { kind: 'mechanism', name, qualifier, text, position: pos, network, networkBytes, cidr6: length };
    }
    default:
      throw new SpfSyntaxError(`unknown mechanism '${name}'`, pos);
  }
}

/** `rest` of ip4/ip6 (RFC 7208 §5.6): ":" network [ "/" prefix length ], the length at most 32 or 128. */
function parseNetwork(name: 'ip4' | 'ip6', rest: string, pos: number, restPos: number): { network: string; networkBytes: Uint8Array; length: number } {
  if (rest[0] !== ':') throw new SpfSyntaxError(`${name}: requires ":" and a network`, restPos);
  const slash = rest.indexOf('/');
  const network = slash === -1 ? rest.slice(1) : rest.slice(1, slash);
  const networkBytes = name === 'ip4' ? parseIpv4(network) : parseIpv6(network);
  if (!networkBytes) throw new SpfSyntaxError(`${name}: invalid network '${network}'`, restPos + 1);
  const max = name === 'ip4' ? 32 : 128;
  const length = slash === -1 ? max : parseCidr(rest.slice(slash + 1), max, pos, name);
  return { network, networkBytes, length };
}
