/**
 * The MTA's side of the milter wire format, for test clients and the benchmark: encoding
 * commands as Postfix or Sendmail send them and decoding responses strictly, as a picky MTA
 * would. Kept out of src/: the daemon never speaks this side.
 */
import {
  Cmd,
  MilterEncodeError,
  MilterProtocolError,
  parseReplyText,
  Resp,
  SIMPLE_PACKETS,
  type ConnectFamily,
  type MilterResponse,
  type MtaCommand as DecodedCommand,
  type SimpleResponseType,
  type SymbolList,
} from '../../src/milter/index.js';
import { joinStrings, readString, splitStrings } from '../../src/milter/wire-strings.js';

export interface MacroPair {
  name: string;
  value: string;
}

/** What an MTA sends: the commands the library decodes, plus `D` packets as name/value pairs. */
export type MtaCommand = DecodedCommand | { type: 'macro'; stage: number; pairs: MacroPair[] };

const EMPTY = Buffer.alloc(0);
const BYTE_BY_FAMILY: Record<ConnectFamily, number> = { inet: 0x34, inet6: 0x36, local: 0x4c, unknown: 0x55 };

/** One packet, without the library's 65535-byte send limit (an MTA may send larger ones). */
export function encodePacketUnchecked(cmd: number, payload: Buffer | Uint8Array = EMPTY): Buffer {
  const out = Buffer.allocUnsafe(5 + payload.length);
  out.writeUInt32BE(1 + payload.length, 0);
  out[4] = cmd;
  out.set(payload, 5);
  return out;
}

/** Encodes a command as the MTA would send it. */
export function encodeCommand(c: MtaCommand): Buffer {
  switch (c.type) {
    case 'abort':
      return encodePacketUnchecked(Cmd.ABORT);
    case 'quit':
      return encodePacketUnchecked(Cmd.QUIT);
    case 'quitNc':
      return encodePacketUnchecked(Cmd.QUIT_NC);
    case 'eoh':
      return encodePacketUnchecked(Cmd.EOH);
    case 'data':
      return encodePacketUnchecked(Cmd.DATA);
    case 'body':
      return encodePacketUnchecked(Cmd.BODY, c.chunk);
    case 'eob':
      return encodePacketUnchecked(Cmd.BODYEOB, c.data);
    case 'connect': {
      const host = joinStrings([c.hostname], 'hostname');
      if (c.family === 'unknown') return encodePacketUnchecked(Cmd.CONNECT, Buffer.concat([host, Buffer.from([0x55])]));
      const head = Buffer.alloc(3);
      head[0] = BYTE_BY_FAMILY[c.family];
      head.writeUInt16BE(checkPort(c.port ?? 0), 1);
      return encodePacketUnchecked(Cmd.CONNECT, Buffer.concat([host, head, joinStrings([c.address ?? ''], 'address')]));
    }
    case 'macro': {
      const flat: string[] = [];
      for (const { name, value } of c.pairs) flat.push(name, value);
      return encodePacketUnchecked(Cmd.MACRO, Buffer.concat([Buffer.from([c.stage & 0xff]), joinStrings(flat, 'macro')]));
    }
    case 'helo':
      return encodePacketUnchecked(Cmd.HELO, joinStrings([c.name], 'HELO name'));
    case 'header':
      return encodePacketUnchecked(Cmd.HEADER, joinStrings([c.name, c.value], 'header'));
    case 'mail':
    case 'rcpt':
      if (c.args.length === 0) throw new MilterEncodeError('MISSING_FIELD', `${c.type} needs an address`);
      return encodePacketUnchecked(c.type === 'mail' ? Cmd.MAIL : Cmd.RCPT, joinStrings(c.args, c.type));
    case 'optneg': {
      const b = Buffer.alloc(12);
      b.writeUInt32BE(c.version >>> 0, 0);
      b.writeUInt32BE(c.actions >>> 0, 4);
      b.writeUInt32BE(c.protocol >>> 0, 8);
      return encodePacketUnchecked(Cmd.OPTNEG, b);
    }
    case 'unknown':
      return encodePacketUnchecked(Cmd.UNKNOWN, joinStrings([c.line], 'command line'));
  }
}

function checkPort(port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new MilterEncodeError('BAD_PORT', `port ${port} out of range`);
  return port;
}


const SIMPLE_BY_BYTE = new Map<number, SimpleResponseType>(
  (Object.entries(SIMPLE_PACKETS) as [SimpleResponseType, Buffer][]).map(([k, v]) => [v[4]!, k]),
);

function strictStrings(p: Buffer, min: number, max: number, what: string): string[] {
  const s = splitStrings(p, 0, what);
  if (s.length < min || s.length > max) throw new MilterProtocolError('BAD_FIELDS', `${what}: ${s.length} strings`);
  return s;
}

/** Decodes a response strictly, as a picky MTA would. */
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
