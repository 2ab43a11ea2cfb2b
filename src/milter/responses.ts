/** Milter responses (SMFIR_*): typed values and validated encoding (decoding, the MTA's side, lives with the test client). */
import { MAX_SEND_PAYLOAD, Resp } from './constants.js';
import { MilterEncodeError } from './errors.js';
import { encodePacket } from './framing.js';
import { parseReplyText } from './replycode.js';
import { joinStrings } from './wire-strings.js';

export type SimpleResponseType =
  | 'continue'
  | 'accept'
  | 'reject'
  | 'tempfail'
  | 'discard'
  | 'skip'
  | 'progress'
  | 'shutdown'
  | 'connFail';

export interface SymbolList {
  /** SMFIM_* stage number (see MacroStage). */
  stage: number;
  /** Space-separated macro names. */
  names: string;
}

export type MilterResponse =
  | { type: SimpleResponseType }
  | { type: 'replyCode'; text: string }
  | { type: 'optneg'; version: number; actions: number; protocol: number; symbolLists: SymbolList[] }
  | { type: 'addRcpt'; rcpt: string }
  | { type: 'delRcpt'; rcpt: string }
  | { type: 'addRcptPar'; rcpt: string; args?: string }
  | { type: 'chgFrom'; sender: string; args?: string }
  | { type: 'addHeader'; name: string; value: string }
  | { type: 'insHeader'; index: number; name: string; value: string }
  | { type: 'chgHeader'; index: number; name: string; value: string }
  | { type: 'replBody'; chunk: Buffer }
  | { type: 'quarantine'; reason: string }
  | { type: 'setSymList'; stage: number; names: string };

const SIMPLE_BYTES: Record<SimpleResponseType, number> = {
  continue: Resp.CONTINUE,
  accept: Resp.ACCEPT,
  reject: Resp.REJECT,
  tempfail: Resp.TEMPFAIL,
  discard: Resp.DISCARD,
  skip: Resp.SKIP,
  progress: Resp.PROGRESS,
  shutdown: Resp.SHUTDOWN,
  connFail: Resp.CONN_FAIL,
};
/** Pre-encoded payload-less responses: the hot path writes these without allocating. */
export const SIMPLE_PACKETS: Readonly<Record<SimpleResponseType, Buffer>> = Object.freeze(
  Object.fromEntries(Object.entries(SIMPLE_BYTES).map(([k, v]) => [k, encodePacket(v)])) as Record<
    SimpleResponseType,
    Buffer
  >,
);

/** Header field name: printable US-ASCII except colon (RFC 5322 ftext). */
const HEADER_NAME_RE = /^[\x21-\x39\x3b-\x7e]+$/;

export function validateHeaderName(name: string): void {
  if (!HEADER_NAME_RE.test(name)) {
    throw new MilterEncodeError('BAD_HEADER_NAME', `header name ${JSON.stringify(name)} is empty or has characters outside RFC 5322 ftext`);
  }
}

/**
 * Header values travel with LF folding (`\n` + SP/TAB). CR would become `\r\r\n` in Postfix, and a
 * LF not followed by whitespace would start a forged header, so both are refused.
 */
export function validateHeaderValue(value: string): void {
  if (value.includes('\0')) throw new MilterEncodeError('BAD_HEADER_VALUE', 'header value contains NUL');
  if (value.includes('\r')) throw new MilterEncodeError('BAD_HEADER_VALUE', 'header value contains CR (fold with "\\n\\t")');
  if (/\n(?![ \t])/.test(value)) throw new MilterEncodeError('BAD_HEADER_VALUE', 'header value has a line break not followed by SP/TAB');
  for (const line of value.split('\n')) {
    if (Buffer.byteLength(line, 'utf8') > 990) throw new MilterEncodeError('BAD_HEADER_VALUE', 'header line longer than 990 bytes');
  }
}

function nonEmpty(value: string, what: string): string {
  if (value.length === 0) throw new MilterEncodeError('EMPTY_FIELD', `${what} must not be empty`);
  return value;
}

function u32(n: number, what: string): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new MilterEncodeError('BAD_INDEX', `${what} ${n} is not a u32`);
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n, 0);
  return b;
}

function esmtpArgs(rcptOrSender: string, args: string | undefined, what: string): Buffer {
  nonEmpty(rcptOrSender, what);
  // One space-separated string: Postfix reads at most one ESMTP-args string.
  return joinStrings(args === undefined || args === '' ? [rcptOrSender] : [rcptOrSender, args], what);
}

/**
 * The `y` packet for a text that formatReplyCode built: it validates every line as it builds
 * it, so the text is not parsed again as encodeResponse parses a text it is given (about 0.3 µs
 * per rejection, bench/profile.js).
 */
export function encodeFormattedReply(formatted: string): Buffer {
  return encodePacket(Resp.REPLYCODE, joinStrings([formatted], 'reply text'));
}

/** Encodes one response packet, validating every field. Throws MilterEncodeError / ReplyCodeError. */
export function encodeResponse(r: MilterResponse): Buffer {
  switch (r.type) {
    case 'replyCode':
      parseReplyText(r.text);
      return encodePacket(Resp.REPLYCODE, joinStrings([r.text], 'reply text'));
    case 'optneg': {
      const parts = [u32(r.version, 'version'), u32(r.actions, 'actions'), u32(r.protocol, 'protocol')];
      for (const l of r.symbolLists) parts.push(u32(l.stage, 'macro stage'), joinStrings([l.names], 'macro list'));
      return encodePacket(Resp.OPTNEG, Buffer.concat(parts));
    }
    case 'addRcpt':
      return encodePacket(Resp.ADDRCPT, joinStrings([nonEmpty(r.rcpt, 'recipient')], 'recipient'));
    case 'delRcpt':
      return encodePacket(Resp.DELRCPT, joinStrings([nonEmpty(r.rcpt, 'recipient')], 'recipient'));
    case 'addRcptPar':
      return encodePacket(Resp.ADDRCPT_PAR, esmtpArgs(r.rcpt, r.args, 'recipient'));
    case 'chgFrom':
      return encodePacket(Resp.CHGFROM, esmtpArgs(r.sender, r.args, 'sender'));
    case 'addHeader':
      validateHeaderName(r.name);
      validateHeaderValue(r.value);
      return encodePacket(Resp.ADDHEADER, joinStrings([r.name, r.value], 'header'));
    case 'insHeader':
    case 'chgHeader':
      validateHeaderName(r.name);
      validateHeaderValue(r.value);
      return encodePacket(
        r.type === 'insHeader' ? Resp.INSHEADER : Resp.CHGHEADER,
        Buffer.concat([u32(r.index, 'header index'), joinStrings([r.name, r.value], 'header')]),
      );
    case 'replBody':
      return encodePacket(Resp.REPLBODY, r.chunk);
    case 'quarantine':
      return encodePacket(Resp.QUARANTINE, joinStrings([nonEmpty(r.reason, 'quarantine reason')], 'quarantine reason'));
    case 'setSymList':
      return encodePacket(Resp.SETSYMLIST, Buffer.concat([u32(r.stage, 'macro stage'), joinStrings([r.names], 'macro list')]));
    default:
      return SIMPLE_PACKETS[r.type];
  }
}

/** Splits a body into packets of at most 65535 bytes (an empty body is one empty packet). */
export function encodeReplaceBody(body: Buffer): Buffer[] {
  if (body.length === 0) return [encodePacket(Resp.REPLBODY)];
  const out: Buffer[] = [];
  for (let off = 0; off < body.length; off += MAX_SEND_PAYLOAD) {
    out.push(encodePacket(Resp.REPLBODY, body.subarray(off, off + MAX_SEND_PAYLOAD)));
  }
  return out;
}
