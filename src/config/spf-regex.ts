/**
 * SPF_REGEX: the statement an own domain's SPF record must contain. Python `re.match`
 * semantics: anchored at the start of the record text, not at its end, case-insensitive
 * (SPF mechanisms are case-insensitive, RFC 7208 section 4.6.1).
 */
import { LRUCache } from 'lru-cache';
import { RE2JS } from 're2js';
import { errorMessage } from '../log/index.js';
import { ConfigError } from './errors.js';
import { PythonRegexError, translatePythonRegex } from './python-regex.js';

export interface SpfRegex {
  /** The pattern as the operator wrote it (Python syntax). */
  readonly source: string;
  /** The pattern as compiled (RE2 syntax). */
  readonly translated: string;
  /** True when the pattern matches at the start of the record text (Python `re.match`). */
  matches(recordText: string): boolean;
}

export const DEFAULT_SPF_REGEX = '.*';

export function compileSpfRegex(source: string, variable = 'SPF_REGEX'): SpfRegex {
  let translated: string;
  try {
    translated = translatePythonRegex(source);
  } catch (err) {
    if (err instanceof PythonRegexError) throw new ConfigError('INVALID', variable, `${JSON.stringify(source)} cannot be used: ${err.message}`, { cause: err });
    throw err;
  }
  let pattern: RE2JS;
  try {
    pattern = RE2JS.compile(translated, RE2JS.CASE_INSENSITIVE);
  } catch (err) {
    throw new ConfigError('INVALID', variable, `${JSON.stringify(source)} is not a valid regular expression: ${errorMessage(err)}`, { cause: err });
  }
  // The same few records are judged over and over; remembering recent answers saves the
  // regex run (several microseconds in re2js) on nearly every message. Bounded in bytes: a
  // record is held as its UTF-16 text.
  const recent = new LRUCache<string, boolean>({ maxSize: MEMO_MAX_BYTES, sizeCalculation: (_v, text) => 2 * text.length + 64 });
  return {
    source,
    translated,
    matches(recordText: string): boolean {
      const known = recent.get(recordText);
      if (known !== undefined) return known;
      // lookingAt anchors at the start only, like Python's re.match.
      const result = pattern.matcher(recordText).lookingAt();
      if (recordText.length <= MEMO_MAX_TEXT) recent.set(recordText, result);
      return result;
    },
  };
}

const MEMO_MAX_BYTES = 1024 * 1024;
const MEMO_MAX_TEXT = 4096;
