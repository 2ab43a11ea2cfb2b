/**
 * Translates a regular expression written for Python's `re` module into RE2 syntax.
 *
 * Operators write SPF_REGEX in Python syntax (the original milter was Python). re2js runs
 * in linear time, which is why it is used, but it has a different dialect: this walks the
 * pattern once, rewrites what has an RE2 equivalent and refuses, with a reason, what a
 * linear-time engine cannot do (backreferences, look-around, conditionals, atomic groups).
 */

export class PythonRegexError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PythonRegexError';
  }
}

const OCTAL = /^[0-7]$/;

function hexEscape(code: number): string {
  return `\\x{${code.toString(16)}}`;
}

interface Cursor {
  pattern: string;
  i: number;
}

/**
 * Reads an escape (the cursor is on the character after the backslash) and returns its RE2
 * spelling. `inClass` changes the meaning of digits and `\b` exactly as in Python.
 */
function translateEscape(c: Cursor, inClass: boolean): string {
  const p = c.pattern;
  const ch = p[c.i];
  if (ch === undefined) throw new PythonRegexError('pattern ends with a lone backslash');
  c.i += 1;
  if (ch === 'Z') {
    if (inClass) throw new PythonRegexError('\\Z is not allowed inside a character class');
    return '\\z';
  }
  if (ch === 'b' && inClass) return hexEscape(8);
  if (ch === 'x') {
    const hex = p.slice(c.i, c.i + 2);
    if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new PythonRegexError(`\\x needs two hex digits at position ${c.i - 2}`);
    c.i += 2;
    return hexEscape(parseInt(hex, 16));
  }
  if (ch === 'u' || ch === 'U') {
    const n = ch === 'u' ? 4 : 8;
    const hex = p.slice(c.i, c.i + n);
    if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(hex)) throw new PythonRegexError(`\\${ch} needs ${n} hex digits at position ${c.i - 2}`);
    c.i += n;
    const code = parseInt(hex, 16);
    if (code > 0x10ffff) throw new PythonRegexError(`\\${ch}${hex} is not a Unicode code point`);
    return hexEscape(code);
  }
  if (ch === 'N') throw new PythonRegexError('named Unicode escapes (\\N{...}) are not supported; write the character or \\uXXXX');
  if (/[0-9]/.test(ch)) {
    // Python: \0 plus up to two octal digits, or exactly three octal digits, is a character;
    // any other digit escape is a backreference (outside classes).
    let digits = ch;
    if (ch === '0') {
      while (digits.length < 3 && OCTAL.test(p[c.i] ?? '')) digits += p[c.i++];
    } else if (OCTAL.test(ch) && OCTAL.test(p[c.i] ?? '') && OCTAL.test(p[c.i + 1] ?? '')) {
      digits += p.slice(c.i, c.i + 2);
      c.i += 2;
    } else if (inClass) {
      if (!OCTAL.test(ch)) throw new PythonRegexError(`bad escape \\${ch} in a character class`);
      while (digits.length < 3 && OCTAL.test(p[c.i] ?? '')) digits += p[c.i++];
    } else {
      throw new PythonRegexError(`backreference \\${ch} is not supported: the linear-time matcher cannot compare earlier groups`);
    }
    const code = parseInt(digits, 8);
    if (code > 0o377) throw new PythonRegexError(`octal escape \\${digits} is out of range`);
    return hexEscape(code);
  }
  return `\\${ch}`;
}

/** Reads a character class starting at `[`; returns it in RE2 syntax. */
function translateClass(c: Cursor): string {
  const p = c.pattern;
  let out = '[';
  c.i += 1;
  if (p[c.i] === '^') {
    out += '^';
    c.i += 1;
  }
  // A `]` first in the set is a literal in both dialects; escaping it avoids any doubt.
  if (p[c.i] === ']') {
    out += '\\]';
    c.i += 1;
  }
  while (c.i < p.length) {
    const ch = p[c.i]!;
    if (ch === ']') {
      c.i += 1;
      return `${out}]`;
    }
    if (ch === '\\') {
      c.i += 1;
      out += translateEscape(c, true);
      continue;
    }
    // Python has no POSIX classes: `[[:alpha:]]` is a set holding `[`, `:` ... so the `[`
    // must stay literal for RE2.
    out += ch === '[' ? '\\[' : ch;
    c.i += 1;
  }
  throw new PythonRegexError('unterminated character class');
}

const KEPT_FLAGS = new Set(['i', 'm', 's']);
// `a` (ASCII classes) is what RE2 does anyway; `u` only widens \w, \d, \s to Unicode, which
// an SPF record (ASCII) never needs.
const DROPPED_FLAGS = new Set(['a', 'u']);

function translateFlags(flags: string, scoped: boolean, atStart: boolean, state: { verbose: boolean }): string {
  let out = '';
  for (const f of flags) {
    if (KEPT_FLAGS.has(f) || f === '-') out += f;
    else if (DROPPED_FLAGS.has(f)) continue;
    else if (f === 'x') {
      if (scoped || !atStart) throw new PythonRegexError('the verbose flag (?x) is supported only at the start of the pattern');
      state.verbose = true;
    } else if (f === 'L') throw new PythonRegexError('the locale flag (?L) is not supported');
    else throw new PythonRegexError(`unknown inline flag ${JSON.stringify(f)}`);
  }
  if (out.endsWith('-')) out = out.slice(0, -1);
  return out;
}

interface Opener {
  text: string;
  /** True for a bare `(?flags)` group or a `(?#comment)`: neither starts the pattern proper. */
  prefixOnly: boolean;
}

/** Reads `(?...` constructs; returns the RE2 text for the group opener (possibly empty). */
function translateGroupOpener(c: Cursor, atStart: boolean, state: { verbose: boolean }): Opener {
  const p = c.pattern;
  const rest = p.slice(c.i);
  if (rest.startsWith('(?P<') || (rest.startsWith('(?<') && !rest.startsWith('(?<=') && !rest.startsWith('(?<!'))) {
    const m = /^\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>/.exec(rest);
    if (!m) throw new PythonRegexError(`bad group name at position ${c.i}`);
    c.i += m[0].length;
    return { text: `(?P<${m[1]}>`, prefixOnly: false };
  }
  if (rest.startsWith('(?P=')) throw new PythonRegexError('named backreferences (?P=name) are not supported: the linear-time matcher cannot compare earlier groups');
  if (rest.startsWith('(?#')) {
    const end = p.indexOf(')', c.i);
    if (end < 0) throw new PythonRegexError('unterminated comment (?#...');
    c.i = end + 1;
    return { text: '', prefixOnly: true };
  }
  if (/^\(\?(=|!|<=|<!)/.test(rest)) throw new PythonRegexError('look-ahead and look-behind assertions are not supported by the linear-time matcher');
  if (rest.startsWith('(?(')) throw new PythonRegexError('conditional groups (?(...)) are not supported');
  if (rest.startsWith('(?>')) throw new PythonRegexError('atomic groups (?>...) are not supported');
  if (rest.startsWith('(?:')) {
    c.i += 3;
    return { text: '(?:', prefixOnly: false };
  }
  const flagGroup = /^\(\?([a-zA-Z-]*)(:|\))/.exec(rest);
  if (!flagGroup) throw new PythonRegexError(`unknown group syntax at position ${c.i}`);
  c.i += flagGroup[0].length;
  const scoped = flagGroup[2] === ':';
  const flags = translateFlags(flagGroup[1]!, scoped, atStart, state);
  if (scoped) return { text: flags === '' ? '(?:' : `(?${flags}:`, prefixOnly: false };
  return { text: flags === '' ? '' : `(?${flags})`, prefixOnly: true };
}

export function translatePythonRegex(pattern: string): string {
  const c: Cursor = { pattern, i: 0 };
  const state = { verbose: false };
  let out = '';
  let onlyFlagsSoFar = true;
  while (c.i < pattern.length) {
    const ch = pattern[c.i]!;
    if (state.verbose && /\s/.test(ch)) {
      c.i += 1;
      continue;
    }
    if (state.verbose && ch === '#') {
      while (c.i < pattern.length && pattern[c.i] !== '\n') c.i += 1;
      continue;
    }
    if (ch === '(' && pattern[c.i + 1] === '?') {
      const opener = translateGroupOpener(c, onlyFlagsSoFar, state);
      out += opener.text;
      onlyFlagsSoFar &&= opener.prefixOnly;
      continue;
    }
    onlyFlagsSoFar = false;
    if (ch === '\\') {
      c.i += 1;
      out += translateEscape(c, false);
      continue;
    }
    if (ch === '[') {
      out += translateClass(c);
      continue;
    }
    if (ch === '{') {
      // Python reads `{,n}` as `{0,n}`; RE2 would take it literally.
      const m = /^\{,([0-9]+)\}/.exec(pattern.slice(c.i));
      if (m) {
        out += `{0,${m[1]}}`;
        c.i += m[0].length;
        continue;
      }
    }
    out += ch;
    c.i += 1;
  }
  return out;
}
