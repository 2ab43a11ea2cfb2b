/**
 * The milter wire format as the benchmark needs it, kept apart from src/milter on purpose: the
 * harness measures the library and must not change when the library does (nor may the bare
 * responder borrow the library's code, or it would stop being a fixed yardstick).
 *
 * A packet is `u32 len` (= 1 + payload length), `u8 cmd`, payload (milter protocol 6).
 */

export const Cmd = {
  ABORT: 0x41,
  CONNECT: 0x43,
  MACRO: 0x44,
  BODYEOB: 0x45,
  HELO: 0x48,
  HEADER: 0x4c,
  MAIL: 0x4d,
  OPTNEG: 0x4f,
  QUIT: 0x51,
  RCPT: 0x52,
} as const;

export const Resp = {
  CONTINUE: 0x63,
  ADDHEADER: 0x68,
  /** SMFIR_CHGFROM: the envelope sender changed (rewrite mode, at end of message). */
  CHGFROM: 0x65,
  OPTNEG: 0x4f,
  REPLYCODE: 0x79,
} as const;

/** Replies that end a command (accept, continue, discard, reject, skip, tempfail, replycode, shutdown). */
export const FINAL_REPLIES: ReadonlySet<number> = new Set([0x61, 0x63, 0x64, 0x72, 0x73, 0x74, 0x79, 0x34]);

/** SMFIP_* bits the load client honours. */
export const Proto = {
  NOCONNECT: 0x1,
  NOHELO: 0x2,
  NOMAIL: 0x4,
  NORCPT: 0x8,
  NOBODY: 0x10,
  NOHDRS: 0x20,
  NOEOH: 0x40,
  NR_HDR: 0x80,
  NODATA: 0x200,
  NR_CONN: 0x1000,
  NR_HELO: 0x2000,
  NR_MAIL: 0x4000,
  NR_RCPT: 0x8000,
} as const;

/** What Postfix 3.x offers with milter_protocol=6. */
export const POSTFIX_OFFER = { version: 6, actions: 0x1ff, protocol: 0x1fffff } as const;

/** Macro stage numbers of the OPTNEG symbol lists (SMFIM_*). */
export const MacroStage = { CONNECT: 0, HELO: 1, ENVFROM: 2, ENVRCPT: 3, DATA: 4, EOM: 5, EOH: 6 } as const;

export function packet(cmd: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const out = Buffer.allocUnsafe(5 + payload.length);
  out.writeUInt32BE(1 + payload.length, 0);
  out[4] = cmd;
  payload.copy(out, 5);
  return out;
}

/** NUL-terminated strings, latin1 (the protocol carries bytes). */
function cstrings(...parts: string[]): Buffer {
  return Buffer.from(parts.map((p) => p + '\0').join(''), 'latin1');
}

export function optnegPacket(offer: { version: number; actions: number; protocol: number }): Buffer {
  const p = Buffer.alloc(12);
  p.writeUInt32BE(offer.version, 0);
  p.writeUInt32BE(offer.actions, 4);
  p.writeUInt32BE(offer.protocol, 8);
  return packet(Cmd.OPTNEG, p);
}

/** A `D` packet: the command byte of the stage, then name/value pairs. */
export function macroPacket(stageCmd: number, pairs: readonly (readonly [string, string])[]): Buffer {
  return packet(Cmd.MACRO, Buffer.concat([Buffer.from([stageCmd]), cstrings(...pairs.flat())]));
}

export function connectPacket(hostname: string, address: string, port: number): Buffer {
  const p = Buffer.concat([cstrings(hostname), Buffer.from('4'), Buffer.from([port >> 8, port & 0xff]), cstrings(address)]);
  return packet(Cmd.CONNECT, p);
}

export const heloPacket = (name: string): Buffer => packet(Cmd.HELO, cstrings(name));
export const mailPacket = (args: string[]): Buffer => packet(Cmd.MAIL, cstrings(...args));
export const rcptPacket = (args: string[]): Buffer => packet(Cmd.RCPT, cstrings(...args));
export const headerPacket = (name: string, value: string): Buffer => packet(Cmd.HEADER, cstrings(name, value));

export interface OptnegReply {
  version: number;
  actions: number;
  protocol: number;
  /** Macro names the milter asked for, by stage number. */
  macros: Map<number, string[]>;
}

export function parseOptnegReply(payload: Buffer): OptnegReply {
  if (payload.length < 12) throw new Error(`OPTNEG reply of ${payload.length} bytes is too short`);
  const macros = new Map<number, string[]>();
  for (let off = 12; off + 4 < payload.length; ) {
    const stage = payload.readUInt32BE(off);
    let end = payload.indexOf(0, off + 4);
    if (end < 0) end = payload.length;
    macros.set(stage, payload.toString('latin1', off + 4, end).split(' ').filter(Boolean));
    off = end + 1;
  }
  return { version: payload.readUInt32BE(0), actions: payload.readUInt32BE(4), protocol: payload.readUInt32BE(8), macros };
}

/**
 * Incremental packet splitter: fed socket chunks of any size, calls `onPacket` per whole packet.
 * The payload is a view into the chunk; copy it to keep it.
 */
export class Framer {
  private pending: Buffer | undefined;
  constructor(private readonly onPacket: (cmd: number, payload: Buffer) => void) {}

  push(chunk: Buffer): void {
    const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    let off = 0;
    while (buf.length - off >= 5) {
      const len = buf.readUInt32BE(off);
      if (len === 0 || len > 1 << 20) throw new Error(`bad packet length ${len}`);
      if (buf.length - off - 4 < len) break;
      this.onPacket(buf[off + 4]!, buf.subarray(off + 5, off + 4 + len));
      off += 4 + len;
    }
    if (off < buf.length) this.pending = Buffer.from(buf.subarray(off));
  }
}
