/**
 * Escaping and bounding of every string that reaches a log line, shared by the text and the JSON
 * renderer, so that the two formats cannot disagree about what is safe.
 *
 * Escaped, in both formats, is every character that a common consumer treats as a line break
 * or a terminal control, or that reorders what a terminal shows:
 * - C0 controls and DEL (CR/LF split lines, ESC starts terminal sequences);
 * - C1 controls U+0080–U+009F: NEL (U+0085) ends a line for Python's `splitlines`, Java and
 *   many log shippers; CSI (U+009B) starts a terminal sequence on terminals that honour 8-bit
 *   controls; raw bytes 0x80–0x9F decoded as latin1 arrive here as exactly these;
 * - U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR (line breaks for JavaScript and
 *   Unicode-aware splitters);
 * - bidirectional controls (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069), which make a
 *   terminal show a line in another order than it was written;
 * - unpaired UTF-16 surrogates, which have no UTF-8 form (writing them out gives invalid UTF-8, and
 *   strict JSON parsers reject the `\ud800` escape): each becomes the escape `\ufffd`.
 * Escapes use JSON's notation (`\n`, `\r`, `\t`, `\b`, `\f`, `\uXXXX`), which is valid inside
 * a JSON string and unambiguous in a text line because `\` itself is escaped as `\\`.
 */

/** Bytes of one string value (after escaping) before it is cut. */
export const VALUE_MAX_BYTES = 2048;
/** Bytes of a short atom: a key, the connection id, the queue id. */
export const ATOM_MAX_BYTES = 256;

// Characters that need an escape in every mode (see above): C0, DEL, C1, bidi controls, line
// and paragraph separators, surrogates (a regular expression cannot tell a lone one from a
// pair; needsEscape can). Written once; the expressions below are built from it.
const CONTROLS = '\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2028\\u2029\\u2066-\\u2069\\ud800-\\udfff';
// Those plus the backslash; plus the double quote too, for quoted strings.
const UNSAFE = new RegExp(`[${CONTROLS}\\\\]`);
const UNSAFE_QUOTED = new RegExp(`[${CONTROLS}\\\\"]`);

/** Whether `text` takes at most `maxBytes` in UTF-8; counted only when it might not (a UTF-16 unit is at most 3 bytes). */
export function fitsBytes(text: string, maxBytes: number): boolean {
  return text.length * 3 <= maxBytes || Buffer.byteLength(text) <= maxBytes;
}

const SHORT_ESCAPES: Record<number, string> = { 0x08: '\\b', 0x09: '\\t', 0x0a: '\\n', 0x0c: '\\f', 0x0d: '\\r', 0x22: '\\"', 0x5c: '\\\\' };

function hex4(code: number): string {
  return `\\u${code.toString(16).padStart(4, '0')}`;
}

function needsEscape(code: number, quoted: boolean): boolean {
  if (code < 0x20 || (code >= 0x7f && code <= 0x9f) || code === 0x5c) return true;
  if (code === 0x22) return quoted;
  if (code < 0x061c) return false;
  return (
    code === 0x061c ||
    code === 0x200e ||
    code === 0x200f ||
    (code >= 0x202a && code <= 0x202e) ||
    code === 0x2028 ||
    code === 0x2029 ||
    (code >= 0x2066 && code <= 0x2069)
  );
}

/** The marker that replaces what was cut; says how many bytes (UTF-8) of the value are missing. */
export function cutMarker(bytes: number, atLeast = false): string {
  return `...[${atLeast ? 'more than ' : ''}${bytes} bytes cut]`;
}

/**
 * `text` with every unsafe character escaped (and `"` too when `quoted`), cut to at most
 * `maxBytes` of UTF-8 output plus a cut marker. The common case, a short string with nothing
 * to escape, is returned as it is after one regular-expression test.
 * `incomplete`: `text` is only the start of a longer value (the marker says "more than").
 */
export function escapeText(text: string, quoted: boolean, maxBytes: number = VALUE_MAX_BYTES, incomplete = false): string {
  if (!(quoted ? UNSAFE_QUOTED : UNSAFE).test(text) && fitsBytes(text, maxBytes)) return text;
  return escapeSlow(text, quoted, maxBytes, incomplete);
}

function escapeSlow(text: string, quoted: boolean, maxBytes: number, incomplete: boolean): string {
  let out = '';
  let bytes = 0;
  let plainFrom = 0; // start of the run of characters copied as they are
  let i = 0;
  for (; i < text.length; i++) {
    const code = text.charCodeAt(i);
    let escape: string | undefined;
    let size: number;
    let units = 1;
    if (code < 0x80) {
      if (needsEscape(code, quoted)) escape = SHORT_ESCAPES[code] ?? hex4(code);
      size = escape?.length ?? 1;
    } else if (code >= 0xd800 && code <= 0xdfff) {
      const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      if (code <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        units = 2;
        size = 4;
      } else {
        escape = '\\ufffd';
        size = 6;
      }
    } else {
      if (needsEscape(code, quoted)) escape = hex4(code);
      size = escape?.length ?? (code < 0x800 ? 2 : 3);
    }
    if (bytes + size > maxBytes) break;
    bytes += size;
    if (escape !== undefined) {
      out += text.slice(plainFrom, i) + escape;
      plainFrom = i + 1;
    }
    i += units - 1;
  }
  out += text.slice(plainFrom, i);
  if (i < text.length) out += cutMarker(Buffer.byteLength(text.slice(i)), incomplete);
  return out;
}

/**
 * `"text"`, escaped and bounded: a JSON string literal, also used for quoted text values.
 * `incomplete`: `text` is itself only the start of a longer value (the marker says "more than").
 */
export function quote(text: string, maxBytes: number = VALUE_MAX_BYTES, incomplete = false): string {
  return `"${escapeText(text, true, maxBytes, incomplete)}"`;
}

// A text value stands bare when it has no character that would end it or need an escape.
const BARE = new RegExp(`^[^\\s"=\\\\${CONTROLS}]+$`);

/** A text-format value: as it is when that is unambiguous, else quoted and escaped. */
export function textValue(text: string, maxBytes: number = VALUE_MAX_BYTES): string {
  if (BARE.test(text) && fitsBytes(text, maxBytes)) return text;
  return quote(text, maxBytes);
}

// The connection id and queue id also end at `/` and `:` in the `<conn>/<queue id>:` prefix.
const BARE_ATOM = new RegExp(`^[^\\s"=\\\\/:${CONTROLS}]+$`);

/** A connection or queue id in the text prefix: bare when plain, else quoted. */
export function textAtom(text: string): string {
  if (text.length * 3 <= ATOM_MAX_BYTES && BARE_ATOM.test(text)) return text;
  return quote(text, ATOM_MAX_BYTES);
}
