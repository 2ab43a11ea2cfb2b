/**
 * SMTP reply texts for SMFIR_REPLYCODE (`y`). Built strictly enough for the strictest receiver
 * (Postfix 3.12 checks every line; Sendmail drops texts with a lone `%`).
 */
import { ReplyCodeError } from './errors.js';

const CODE_RE = /^[45][0-9][0-9]$/;
const ENHANCED_RE = /^([245])\.[0-9]{1,3}\.[0-9]{1,3}$/;
/** libmilter's smfi_setmlreply limits. */
export const MAX_REPLY_LINES = 32;
export const MAX_REPLY_LINE_TEXT = 980;

/**
 * Formats `code [enhanced] text` lines: `550-5.7.1 a\r\n550 5.7.1 b`. `%` is doubled; CR, LF and
 * NUL inside a line are refused (each array element is one line).
 */
export function formatReplyCode(
  code: number | string,
  enhanced: string | null | undefined,
  text: string | readonly string[],
): string {
  const c = String(code);
  if (!CODE_RE.test(c)) throw new ReplyCodeError('BAD_CODE', `reply code ${JSON.stringify(c)} is not 4xx or 5xx`);
  let prefixTail = '';
  if (enhanced !== undefined && enhanced !== null && enhanced !== '') {
    const m = ENHANCED_RE.exec(enhanced);
    if (!m) throw new ReplyCodeError('BAD_ENHANCED', `enhanced status ${JSON.stringify(enhanced)} is not class.subject.detail`);
    if (m[1] !== c[0]) {
      throw new ReplyCodeError('CLASS_MISMATCH', `enhanced status ${enhanced} does not match the class of reply code ${c}`);
    }
    prefixTail = `${enhanced} `;
  }
  const lines = typeof text === 'string' ? [text] : text;
  if (lines.length === 0) throw new ReplyCodeError('NO_TEXT', 'reply text needs at least one line');
  if (lines.length > MAX_REPLY_LINES) {
    throw new ReplyCodeError('TOO_MANY_LINES', `reply text has ${lines.length} lines, at most ${MAX_REPLY_LINES} allowed`);
  }
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/[\r\n\0]/.test(line)) throw new ReplyCodeError('BAD_CHAR', `reply line ${i + 1} contains CR, LF or NUL`);
    const escaped = line.replaceAll('%', '%%');
    if (Buffer.byteLength(escaped, 'utf8') > MAX_REPLY_LINE_TEXT) {
      throw new ReplyCodeError('LINE_TOO_LONG', `reply line ${i + 1} is longer than ${MAX_REPLY_LINE_TEXT} bytes`);
    }
    out.push(c + (i === lines.length - 1 ? ' ' : '-') + prefixTail + escaped);
  }
  return out.join('\r\n');
}

export interface ParsedReply {
  code: string;
  enhanced?: string;
  /** Line texts after the code and enhanced code, still escaped (`%%`). */
  lines: string[];
}

/** Validates a complete `y` text as a strict MTA would; returns its parts. */
export function parseReplyText(raw: string): ParsedReply {
  if (raw.includes('\0')) throw new ReplyCodeError('BAD_CHAR', 'reply text contains NUL');
  const rawLines = raw.split('\r\n');
  let code: string | undefined;
  let enhanced: string | undefined;
  const lines: string[] = [];
  rawLines.forEach((line, i) => {
    if (/[\r\n]/.test(line)) throw new ReplyCodeError('BAD_CHAR', `reply line ${i + 1} contains a bare CR or LF`);
    const m = /^([45][0-9][0-9])([ -])(.*)$/s.exec(line) ?? /^([45][0-9][0-9])()$/.exec(line);
    if (!m) throw new ReplyCodeError('BAD_CODE', `reply line ${i + 1} does not start with a 4xx/5xx code and SP or -`);
    const last = i === rawLines.length - 1;
    if (m[2] !== (last ? ' ' : '-') && !(last && m[2] === '')) {
      throw new ReplyCodeError('BAD_SEPARATOR', `reply line ${i + 1} must use ${last ? 'SP' : '-'} after the code`);
    }
    if (code === undefined) code = m[1]!;
    else if (code !== m[1]) throw new ReplyCodeError('CODE_CHANGES', `reply line ${i + 1} has code ${m[1]}, expected ${code}`);
    let rest = m[3] ?? '';
    const e = /^([245]\.[0-9]{1,3}\.[0-9]{1,3})(?: |$)/.exec(rest);
    if (e) {
      if (e[1]![0] !== code[0]) throw new ReplyCodeError('CLASS_MISMATCH', `enhanced status ${e[1]} does not match reply code ${code}`);
      if (i === 0) enhanced = e[1];
      rest = rest.slice(e[0].length);
    }
    if (rest.replaceAll('%%', '').includes('%')) throw new ReplyCodeError('LONE_PERCENT', `reply line ${i + 1} has an unescaped %`);
    lines.push(rest);
  });
  return enhanced === undefined ? { code: code!, lines } : { code: code!, enhanced, lines };
}
