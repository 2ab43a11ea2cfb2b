import type { MacroString, MacroToken } from './types.js';
import { SpfSyntaxError } from './errors.js';

/**
 * RFC 7208 §7: macro-strings. Parsing is a single left-to-right scan; expansion is synchronous
 * (the evaluator resolves %{p} beforehand, since only that letter needs DNS).
 */

/** Where a macro-string appears decides which letters and characters are allowed. */
export type MacroSyntax =
  /** domain-spec of a mechanism, redirect= or exp=: no c/r/t, no spaces. */
  | 'domain'
  /** value of an unknown modifier: any macro letter, no spaces. */
  | 'modifier'
  /** explanation text fetched for exp=: any letter, spaces allowed. */
  | 'explain';

const LETTERS = 'slodiphvcrt';
const EXP_ONLY = 'crt';
const DELIMITERS = '.-+,/_=';

export function parseMacroString(text: string, syntax: MacroSyntax, basePos = 0): MacroString {
  const tokens: MacroToken[] = [];
  let literal = '';
  let hasMacros = false;
  let usesPtr = false;
  let endsWithMacro = false;
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x25 /* % */) {
      const next = text[i + 1];
      if (next === '%') literal += '%';
      else if (next === '_') literal += ' ';
      else if (next === '-') literal += '%20';
      else if (next === '{') {
        if (literal) tokens.push({ kind: 'literal', text: literal });
        literal = '';
        const end = text.indexOf('}', i + 2);
        if (end === -1) throw new SpfSyntaxError('unterminated macro', basePos + i);
        tokens.push(parseMacroExpand(text.slice(i + 2, end), syntax, basePos + i));
        hasMacros = true;
        if (text[i + 2] === 'p' || text[i + 2] === 'P') usesPtr = true;
        i = end + 1;
        endsWithMacro = true;
        continue;
      } else throw new SpfSyntaxError(`'%' must be followed by '{', '%', '_' or '-'`, basePos + i);
      i += 2;
      endsWithMacro = true;
      continue;
    }
    const allowed = (c >= 0x21 && c <= 0x7e) || (c === 0x20 && syntax === 'explain');
    if (!allowed) throw new SpfSyntaxError(`invalid character 0x${c.toString(16).padStart(2, '0')}`, basePos + i);
    literal += text[i];
    endsWithMacro = false;
    i++;
  }
  if (literal) tokens.push({ kind: 'literal', text: literal });
  return { text, tokens, hasMacros, usesPtr, endsWithMacro };
}

/** The inside of %{…} (RFC 7208 §7.1 macro-expand): letter, optional digits, optional "r", delimiters. */
function parseMacroExpand(body: string, syntax: MacroSyntax, pos: number): MacroToken {
  if (body.length === 0) throw new SpfSyntaxError('empty macro', pos);
  const letterChar = body[0];
  const letter = letterChar.toLowerCase();
  if (!LETTERS.includes(letter)) throw new SpfSyntaxError(`unknown macro letter '${letterChar}'`, pos);
  if (syntax === 'domain' && EXP_ONLY.includes(letter)) {
    throw new SpfSyntaxError(`macro letter '${letterChar}' is allowed only in explanation text`, pos);
  }
  let i = 1;
  let keep = 0;
  const digitsStart = i;
  while (i < body.length && body.charCodeAt(i) >= 48 && body.charCodeAt(i) <= 57) {
    // Anything past 127 parts keeps everything (a name has at most 127 labels); clamp to avoid overflow.
    keep = Math.min(keep * 10 + (body.charCodeAt(i) - 48), 1000);
    i++;
  }
  if (i > digitsStart && keep === 0) throw new SpfSyntaxError('macro digit transformer must be non-zero', pos);
  let reverse = false;
  if (body[i] === 'r' || body[i] === 'R') {
    reverse = true;
    i++;
  }
  let delimiters = '';
  for (; i < body.length; i++) {
    if (!DELIMITERS.includes(body[i])) throw new SpfSyntaxError(`invalid macro delimiter '${body[i]}'`, pos);
    if (!delimiters.includes(body[i])) delimiters += body[i];
  }
  return {
    kind: 'macro',
    letter,
    escape: letterChar !== letter,
    keep,
    reverse,
    delimiters: delimiters || '.',
  };
}

/** Values of the macro letters for one expansion. */
export interface MacroValues {
  s: string;
  l: string;
  o: string;
  d: string;
  i: string;
  /** Validated domain name of the client, "unknown" if none; needed only when usesPtr. */
  p: string;
  v: string;
  h: string;
  c: string;
  r: string;
  t: string;
}

/**
 * Bounds the work a hostile record can cause (many macros over a long sender). Domain names
 * only need their last 254 octets: RFC 7208 §7.3 truncation keeps a suffix of at most 253
 * octets starting at a label, so a longer tail gives the same truncated name. Explanations
 * keep their head.
 */
export type ExpansionBound = 'domain' | 'explain';
const DOMAIN_TAIL = 1024;
const EXPLAIN_MAX = 4096;

export function expandMacroString(ms: MacroString, values: MacroValues, bound: ExpansionBound = 'domain'): string {
  if (!ms.hasMacros) return ms.tokens.length === 1 ? (ms.tokens[0] as { text: string }).text : literalOf(ms);
  let out = '';
  for (const t of ms.tokens) {
    if (t.kind === 'literal') out += t.text;
    else out += transform(values[t.letter as keyof MacroValues], t);
    if (out.length > 4 * DOMAIN_TAIL && bound === 'domain') out = out.slice(-DOMAIN_TAIL);
    if (out.length > EXPLAIN_MAX && bound === 'explain') return out.slice(0, EXPLAIN_MAX);
  }
  return out;
}

function literalOf(ms: MacroString): string {
  let out = '';
  for (const t of ms.tokens) if (t.kind === 'literal') out += t.text;
  return out;
}

/** RFC 7208 §7.3: split on the delimiters, reverse, keep the right-hand parts, join with "."; escape when upper-case. */
function transform(value: string, t: Extract<MacroToken, { kind: 'macro' }>): string {
  let result = value;
  if (t.keep !== 0 || t.reverse || t.delimiters !== '.') {
    let parts = splitOn(value, t.delimiters);
    if (t.reverse) parts = parts.reverse();
    if (t.keep !== 0 && t.keep < parts.length) parts = parts.slice(parts.length - t.keep);
    result = parts.join('.');
  }
  return t.escape ? urlEscape(result) : result;
}

function splitOn(value: string, delimiters: string): string[] {
  if (delimiters.length === 1) return value.split(delimiters);
  const parts: string[] = [];
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    if (delimiters.includes(value[i])) {
      parts.push(value.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(value.slice(start));
  return parts;
}

/** RFC 7208 §7.3: upper-case macros escape everything outside RFC 3986 "unreserved". */
export function urlEscape(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const unreserved =
      (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45 || c === 46 || c === 95 || c === 126;
    if (unreserved) out += s[i];
    else if (c <= 0xff) out += `%${c.toString(16).toUpperCase().padStart(2, '0')}`;
    else for (const b of Buffer.from(s[i], 'utf8')) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * domain-spec = macro-string domain-end; domain-end = ( "." toplabel [ "." ] ) / macro-expand.
 * Syntax is checked before expansion (RFC 7208 §7.1), never after.
 */
export function checkDomainEnd(ms: MacroString, pos: number): void {
  if (ms.endsWithMacro) return;
  const text = ms.text;
  const body = text.endsWith('.') ? text.slice(0, -1) : text;
  const dot = body.lastIndexOf('.');
  if (dot === -1) throw new SpfSyntaxError('domain-spec must end in a macro or "." and a top label', pos);
  const top = body.slice(dot + 1);
  if (!isTopLabel(top)) throw new SpfSyntaxError(`invalid top label '${top}'`, pos + dot + 1);
}

function isAlnum(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}

/** toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
export function isTopLabel(s: string): boolean {
  if (s.length === 0) return false;
  let hasAlpha = false;
  let hasDash = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 45) hasDash = true;
    else if (!isAlnum(c)) return false;
    else if (c > 57) hasAlpha = true;
  }
  if (!hasDash) return hasAlpha;
  return isAlnum(s.charCodeAt(0)) && isAlnum(s.charCodeAt(s.length - 1));
}
