/**
 * String conversion at the wire boundary. The protocol carries 8-bit strings: mostly ASCII,
 * UTF-8 with SMTPUTF8, sometimes raw 8-bit header text. Valid UTF-8 is decoded as UTF-8 so
 * applications see real characters; anything else falls back to latin1, which keeps every
 * octet (one char per byte) instead of replacing it with U+FFFD.
 */
import { isUtf8 } from 'node:buffer';

export function decodeWireString(buf: Buffer, start: number, end: number): string {
  for (let i = start; i < end; i++) {
    if (buf[i]! >= 0x80) {
      const view = buf.subarray(start, end);
      return isUtf8(view) ? view.toString('utf8') : view.toString('latin1');
    }
  }
  // Pure ASCII: latin1 is the cheapest correct decoder.
  return buf.toString('latin1', start, end);
}

/** Outbound strings are sent as UTF-8 (identical to ASCII for ASCII text). */
export function wireByteLength(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}
