/** Milter responses (SMFIR_*): typed values, validated encoding, and decoding (for clients and tests). */
import { MAX_SEND_PAYLOAD, Resp } from './constants.js';
import { MilterEncodeError, MilterProtocolError } from './errors.js';
import { encodePacket } from './framing.js';
import { parseReplyText } from './replycode.js';
import { joinStrings, readString, splitStrings } from './wire-strings.js';

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
const SIMPLE_BY_BYTE = new Map<number, SimpleResponseType>(
  Object.entries(SIMPLE_BYTES).map(([k, v]) => [v, k as SimpleResponseType]),
);

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

function strictStrings(p: Buffer, min: number, max: number, what: string): string[] {
  const s = splitStrings(p, 0, what);
  if (s.length < min || s.length > max) throw new MilterProtocolError('BAD_FIELDS', `${what}: ${s.length} strings`);
  return s;
}

/** Decodes a response strictly (as a picky MTA would); used by test clients and the benchmark. */
export function decodeResponse(cmd: number, p: Buffer): MilterResponse {
  const simple = SIMPLE_BY_BYTE.get(cmd);
  if (simple !== undefined) {
    if (p.length !== 0) throw new MilterProtocolError('EXTRA_PAYLOAD', `response '${String.fromCharCode(cmd)}' with a payload`);
    return { type: simple };
  }
  switch (cmd) {
    case Resp.REPLYCODE: {
      const [text] = strictStrings(p, 1, 1, 'reply code');
      parseReplyText(text!);
      return { type: 'replyCode', text: text! };
    }
    case Resp.OPTNEG: {
      if (p.length < 12) throw new MilterProtocolError('SHORT_OPTNEG', 'OPTNEG reply shorter than 12 bytes');
      const symbolLists: SymbolList[] = [];
      let off = 12;
      while (off < p.length) {
        if (off + 4 > p.length) throw new MilterProtocolError('SHORT_OPTNEG', 'truncated macro list stage');
        const stage = p.readUInt32BE(off);
        const [names, next] = readString(p, off + 4, 'macro list');
        symbolLists.push({ stage, names });
        off = next;
      }
      return { type: 'optneg', version: p.readUInt32BE(0), actions: p.readUInt32BE(4), protocol: p.readUInt32BE(8), symbolLists };
    }
    case Resp.ADDRCPT:
      return { type: 'addRcpt', rcpt: strictStrings(p, 1, 1, 'ADDRCPT')[0]! };
    case Resp.DELRCPT:
      return { type: 'delRcpt', rcpt: strictStrings(p, 1, 1, 'DELRCPT')[0]! };
    case Resp.ADDRCPT_PAR: {
      const [rcpt, args] = strictStrings(p, 1, 2, 'ADDRCPT_PAR');
      return args === undefined ? { type: 'addRcptPar', rcpt: rcpt! } : { type: 'addRcptPar', rcpt: rcpt!, args };
    }
    case Resp.CHGFROM: {
      const [sender, args] = strictStrings(p, 1, 2, 'CHGFROM');
      return args === undefined ? { type: 'chgFrom', sender: sender! } : { type: 'chgFrom', sender: sender!, args };
    }
    case Resp.ADDHEADER: {
      const [name, value] = strictStrings(p, 2, 2, 'ADDHEADER');
      return { type: 'addHeader', name: name!, value: value! };
    }
    case Resp.INSHEADER:
    case Resp.CHGHEADER: {
      if (p.length < 4) throw new MilterProtocolError('MISSING_FIELD', 'header edit without index');
      const [name, value] = strictStrings(p.subarray(4), 2, 2, 'header edit');
      const index = p.readUInt32BE(0);
      return cmd === Resp.INSHEADER
        ? { type: 'insHeader', index, name: name!, value: value! }
        : { type: 'chgHeader', index, name: name!, value: value! };
    }
    case Resp.REPLBODY:
      return { type: 'replBody', chunk: p };
    case Resp.QUARANTINE:
      return { type: 'quarantine', reason: strictStrings(p, 1, 1, 'QUARANTINE')[0]! };
    case Resp.SETSYMLIST: {
      if (p.length < 4) throw new MilterProtocolError('MISSING_FIELD', 'SETSYMLIST without stage');
      return { type: 'setSymList', stage: p.readUInt32BE(0), names: strictStrings(p.subarray(4), 1, 1, 'SETSYMLIST')[0]! };
    }
    default:
      throw new MilterProtocolError('UNKNOWN_RESPONSE', `unknown response byte 0x${cmd.toString(16).padStart(2, '0')}`);
  }
}

/** Final replies end the answer to a command; modifications and progress do not. */
export function isFinalResponse(r: MilterResponse): boolean {
  switch (r.type) {
    case 'continue':
    case 'accept':
    case 'reject':
    case 'tempfail':
    case 'discard':
    case 'skip':
    case 'shutdown':
    case 'replyCode':
    case 'optneg':
    case 'connFail':
      return true;
    default:
      return false;
  }
}
