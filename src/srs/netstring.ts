/**
 * Netstrings (`<length>:<bytes>,`, D. J. Bernstein), the framing of Postfix's and Sendmail's
 * socketmap protocol. The reader is bounded: a length over `maxPayloadBytes` is refused as
 * soon as its digits are seen, before any payload is buffered.
 */

export type NetstringRead =
  /** A whole netstring: its payload and how many bytes it took from the buffer. */
  | { kind: 'frame'; payload: Buffer; consumed: number }
  /** Not complete yet; keep reading. */
  | { kind: 'partial' }
  | { kind: 'oversized'; length: number | undefined }
  | { kind: 'malformed'; reason: string };

/** Bytes of framing around a payload of at most `maxPayloadBytes`: the digits, ':' and ','. */
export function netstringOverhead(maxPayloadBytes: number): number {
  return String(maxPayloadBytes).length + 2;
}

export function readNetstring(buffer: Buffer, maxPayloadBytes: number): NetstringRead {
  const maxDigits = String(maxPayloadBytes).length;
  let length = 0;
  let i = 0;
  for (; i < buffer.length; i++) {
    const byte = buffer[i]!;
    if (byte === 0x3a /* : */) break;
    if (byte < 0x30 || byte > 0x39) return { kind: 'malformed', reason: `byte 0x${byte.toString(16).padStart(2, '0')} in the length` };
    if (i >= maxDigits) return { kind: 'oversized', length: undefined };
    length = length * 10 + (byte - 0x30);
  }
  if (i === buffer.length) return { kind: 'partial' };
  if (i === 0) return { kind: 'malformed', reason: 'no length before ":"' };
  if (length > maxPayloadBytes) return { kind: 'oversized', length };
  const end = i + 1 + length;
  if (buffer.length <= end) return { kind: 'partial' };
  if (buffer[end] !== 0x2c /* , */) return { kind: 'malformed', reason: 'payload not followed by ","' };
  return { kind: 'frame', payload: buffer.subarray(i + 1, end), consumed: end + 1 };
}

export function writeNetstring(payload: string): Buffer {
  const body = Buffer.from(payload, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length}:`, 'latin1'), body, Buffer.from(',', 'latin1')]);
}
