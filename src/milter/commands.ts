/** MTA commands (SMFIC_*): typed values and decoding from packets (encoding, the MTA's side, lives with the test client). */
import { isIP } from 'node:net';
import { Cmd } from './constants.js';
import { MilterProtocolError } from './errors.js';
import { decodeMacroPacket, type MacroPacket } from './macros.js';
import { readString, splitStrings } from './wire-strings.js';

export type ConnectFamily = 'inet' | 'inet6' | 'local' | 'unknown';

export interface ConnectInfo {
  hostname: string;
  family: ConnectFamily;
  /** Client TCP port; 0 for local sockets; absent for family 'unknown'. */
  port?: number;
  /** Client address text (IPv6 without the `IPv6:` prefix); absent for family 'unknown'. */
  address?: string;
}

export type MtaCommand =
  | { type: 'abort' }
  | { type: 'body'; chunk: Buffer }
  | ({ type: 'connect' } & ConnectInfo)
  | { type: 'eob'; data: Buffer }
  | { type: 'helo'; name: string }
  | { type: 'quitNc' }
  | { type: 'header'; name: string; value: string }
  | { type: 'mail'; args: string[] }
  | { type: 'eoh' }
  | { type: 'optneg'; version: number; actions: number; protocol: number }
  | { type: 'quit' }
  | { type: 'rcpt'; args: string[] }
  | { type: 'data' }
  | { type: 'unknown'; line: string };

const FAMILY_BY_BYTE: Record<number, ConnectFamily> = { 0x34: 'inet', 0x36: 'inet6', 0x4c: 'local', 0x55: 'unknown' };

const ABORT: MtaCommand = Object.freeze({ type: 'abort' });
const QUIT: MtaCommand = Object.freeze({ type: 'quit' });
const QUIT_NC: MtaCommand = Object.freeze({ type: 'quitNc' });
const EOH: MtaCommand = Object.freeze({ type: 'eoh' });
const DATA: MtaCommand = Object.freeze({ type: 'data' });

/**
 * Decodes one packet from the MTA. Extra bytes after the fields a command defines are ignored
 * (as libmilter does); missing fields, missing NULs and unknown command bytes are protocol errors.
 */
export function decodeCommand(cmd: number, p: Buffer): MtaCommand | MacroPacket {
  switch (cmd) {
    case Cmd.ABORT:
      return ABORT;
    case Cmd.QUIT:
      return QUIT;
    case Cmd.QUIT_NC:
      return QUIT_NC;
    case Cmd.EOH:
      return EOH;
    case Cmd.DATA:
      return DATA;
    case Cmd.BODY:
      return { type: 'body', chunk: p };
    case Cmd.BODYEOB:
      return { type: 'eob', data: p };
    case Cmd.CONNECT:
      return decodeConnect(p);
    case Cmd.MACRO:
      return decodeMacroPacket(p);
    case Cmd.HELO:
      return { type: 'helo', name: readString(p, 0, 'HELO name')[0] };
    case Cmd.HEADER: {
      const [name, next] = readString(p, 0, 'header name');
      const [value] = readString(p, next, 'header value');
      return { type: 'header', name, value };
    }
    case Cmd.MAIL:
    case Cmd.RCPT: {
      const what = cmd === Cmd.MAIL ? 'MAIL' : 'RCPT';
      const args = splitStrings(p, 0, `${what} arguments`);
      if (args.length === 0) throw new MilterProtocolError('MISSING_FIELD', `${what} without an address`);
      return cmd === Cmd.MAIL ? { type: 'mail', args } : { type: 'rcpt', args };
    }
    case Cmd.OPTNEG:
      if (p.length < 12) {
        throw new MilterProtocolError('SHORT_OPTNEG', `OPTNEG payload of ${p.length} bytes, expected 12`);
      }
      return { type: 'optneg', version: p.readUInt32BE(0), actions: p.readUInt32BE(4), protocol: p.readUInt32BE(8) };
    case Cmd.UNKNOWN:
      return { type: 'unknown', line: readString(p, 0, 'unknown command line')[0] };
    default:
      throw new MilterProtocolError('UNKNOWN_COMMAND', `unknown command byte 0x${cmd.toString(16).padStart(2, '0')}`);
  }
}

function decodeConnect(p: Buffer): MtaCommand {
  const [hostname, off] = readString(p, 0, 'CONNECT hostname');
  if (off >= p.length) throw new MilterProtocolError('MISSING_FIELD', 'CONNECT without address family');
  const family = FAMILY_BY_BYTE[p[off]!];
  if (family === undefined) {
    throw new MilterProtocolError('BAD_FAMILY', `CONNECT with unknown address family 0x${p[off]!.toString(16)}`);
  }
  if (family === 'unknown') return { type: 'connect', hostname, family };
  if (off + 3 > p.length) throw new MilterProtocolError('MISSING_FIELD', 'CONNECT without port');
  const port = p.readUInt16BE(off + 1);
  const [address] = readString(p, off + 3, 'CONNECT address');
  if ((family === 'inet' && isIP(address) !== 4) || (family === 'inet6' && isIP(address) !== 6)) {
    throw new MilterProtocolError('BAD_ADDRESS', `CONNECT address ${JSON.stringify(address)} is not ${family}`);
  }
  return { type: 'connect', hostname, family, port, address };
}

