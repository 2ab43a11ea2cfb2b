/**
 * Packet framing: `u32 len` (= 1 + payload length), `u8 cmd`, payload. The decoder is fed
 * whatever the socket delivers — any split or coalescing of packets — and emits whole packets.
 */
import { DEFAULT_MAX_PAYLOAD, MAX_SEND_PAYLOAD } from './constants.js';
import { MilterEncodeError, MilterProtocolError } from './errors.js';

export type PacketHandler = (cmd: number, payload: Buffer) => void;

const EMPTY = Buffer.alloc(0);

/**
 * Incremental decoder. Payloads handed to `onPacket` are views of buffers the decoder never
 * reuses, so a handler may keep them (e.g. queue them) without copying.
 */
export class PacketDecoder {
  /** Chunks holding an incomplete packet (header included), and their total length. */
  private parts: Buffer[] = [];
  private partsLen = 0;
  /** Total bytes (4 + len) of the incomplete packet once its header is known, else 0. */
  private needed = 0;
  private stopped = false;

  constructor(
    private readonly onPacket: PacketHandler,
    readonly maxPayload: number = DEFAULT_MAX_PAYLOAD,
  ) {}

  /** Bytes received but not yet emitted as a packet (useful to detect a peer stalling mid-packet). */
  get bufferedBytes(): number {
    return this.partsLen;
  }

  /** Stops emitting packets, also for the rest of a chunk being processed (connection is closing). */
  stop(): void {
    this.stopped = true;
    this.parts = [];
    this.partsLen = 0;
  }

  /**
   * Feeds one chunk. Throws MilterProtocolError on a zero or oversized length; the caller must
   * then drop the connection (the stream can no longer be re-synchronised).
   */
  push(chunk: Buffer): void {
    if (this.stopped) return;
    let buf = chunk;
    if (this.partsLen > 0) {
      // A large packet arriving in many reads is gathered once, not re-concatenated per read.
      if (this.needed > 0 && this.partsLen + chunk.length < this.needed) {
        this.parts.push(chunk);
        this.partsLen += chunk.length;
        return;
      }
      this.parts.push(chunk);
      buf = Buffer.concat(this.parts, this.partsLen + chunk.length);
      this.parts = [];
      this.partsLen = 0;
      this.needed = 0;
    }
    let off = 0;
    const n = buf.length;
    while (n - off >= 4) {
      const len = buf.readUInt32BE(off);
      if (len === 0) throw new MilterProtocolError('ZERO_LENGTH', 'packet length 0 (no command byte)');
      if (len - 1 > this.maxPayload) {
        throw new MilterProtocolError(
          'PACKET_TOO_LARGE',
          `packet payload of ${len - 1} bytes exceeds the limit of ${this.maxPayload}`,
        );
      }
      if (n - off - 4 < len) {
        this.needed = 4 + len;
        break;
      }
      const cmd = buf[off + 4]!;
      const payload = len === 1 ? EMPTY : buf.subarray(off + 5, off + 4 + len);
      off += 4 + len;
      this.onPacket(cmd, payload);
      if (this.stopped) return;
    }
    if (off < n) {
      // Copy a short tail so a big chunk is not kept alive for a few trailing bytes.
      const tail = n - off > 4096 || off === 0 ? buf.subarray(off) : Buffer.from(buf.subarray(off));
      this.parts.push(tail);
      this.partsLen = tail.length;
    }
  }
}

/** Encodes one packet. Refuses payloads over 65535 bytes: callers split body replacements. */
export function encodePacket(cmd: number, payload: Buffer | Uint8Array = EMPTY): Buffer {
  if (payload.length > MAX_SEND_PAYLOAD) {
    throw new MilterEncodeError(
      'PAYLOAD_TOO_LARGE',
      `payload of ${payload.length} bytes exceeds ${MAX_SEND_PAYLOAD} (split it)`,
    );
  }
  const out = Buffer.allocUnsafe(5 + payload.length);
  out.writeUInt32BE(1 + payload.length, 0);
  out[4] = cmd;
  out.set(payload, 5);
  return out;
}
