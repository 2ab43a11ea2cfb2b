/** MTA commands (SMFIC_*): typed values, decoding from packets and encoding (for clients and tests). */
import { isIP } from 'node:net';
import { Cmd } from './constants.js';
import { MilterEncodeError, MilterProtocolError } from './errors.js';
import { encodePacketUnchecked } from './framing.js';
import { joinStrings, readString, splitStrings } from './wire-strings.js';

export type ConnectFamily = 'inet' | 'inet6' | 'local' | 'unknown';

export interface ConnectInfo {
  hostname: string;
  family: ConnectFamily;
  /** Client TCP port; 0 for local sockets; absent for family 'unknown'. */
  port?: number;
  /** Client address text (IPv6 without the `IPv6:` prefix); absent for family 'unknown'. */
  address?: string;
}

export interface MacroPair {
  name: string;
  value: string;
}

export type MtaCommand =
  | { type: 'abort' }
  | { type: 'body'; chunk: Buffer }
  | ({ type: 'connect' } & ConnectInfo)
  | { type: 'macro'; stage: number; pairs: MacroPair[] }
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
const BYTE_BY_FAMILY: Record<ConnectFamily, number> = { inet: 0x34, inet6: 0x36, local: 0x4c, unknown: 0x55 };

const ABORT: MtaCommand = Object.freeze({ type: 'abort' });
const QUIT: MtaCommand = Object.freeze({ type: 'quit' });
const QUIT_NC: MtaCommand = Object.freeze({ type: 'quitNc' });
const EOH: MtaCommand = Object.freeze({ type: 'eoh' });
const DATA: MtaCommand = Object.freeze({ type: 'data' });

/**
 * Decodes one packet from the MTA. Extra bytes after the fields a command defines are ignored
 * (as libmilter does); missing fields, missing NULs and unknown command bytes are protocol errors.
 */
export function decodeCommand(cmd: number, p: Buffer): MtaCommand {
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
      return decodeMacro(p);
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

function decodeMacro(p: Buffer): MtaCommand {
  // An empty D (not even a stage byte) carries nothing; it is accepted rather than fatal.
  if (p.length === 0) return { type: 'macro', stage: 0, pairs: [] };
  const strings = splitStrings(p, 1, 'macro list');
  const pairs: MacroPair[] = [];
  // An odd count means the last name came without its value: keep it with an empty value.
  for (let i = 0; i < strings.length; i += 2) pairs.push({ name: strings[i]!, value: strings[i + 1] ?? '' });
  return { type: 'macro', stage: p[0]!, pairs };
}

/** Encodes a command as the MTA would send it (used by test clients and the benchmark). */
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

/** Whether the command expects a reply when no SMFIP_NR_* bit covers it. */
export function isReplyExpected(cmd: number): boolean {
  return cmd !== Cmd.MACRO && cmd !== Cmd.ABORT && cmd !== Cmd.QUIT && cmd !== Cmd.QUIT_NC;
}
