/**
 * The Sender Rewriting Scheme as libsrs2 and postsrsd write it (the "guarded" scheme):
 *
 *   SRS0=HHHH=TT=orig.domain=local@SRS_DOMAIN        a sender rewritten once
 *   SRS1=HHHH=first.hop==HHHH=TT=orig.domain=local@SRS_DOMAIN
 *                                                    an SRS0 address of another forwarder
 *
 * HHHH: the first 4 characters of the base64 HMAC-SHA1, keyed by the first secret, of the
 * fields that follow (SRS0: stamp, domain, local part; SRS1: first hop, rest), lowercased
 * (ASCII only) as libsrs2 does, so a receiver that folds the case of the address breaks
 * nothing; the hash is compared without regard to case, against every secret. TT: the day
 * (Unix time / 86400) modulo 1024 in two base32 characters; an address is valid for
 * `maxAgeDays` days after its day, across the wrap at 1024. The first separator may be `=`,
 * `+` or `-` on input; we write `=`.
 *
 * This module knows nothing of milters, SPF or sockets: strings in, strings out.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SRS_HASH_LENGTH = 4;
/** Days the 2-character timestamp can tell apart before it wraps. */
export const SRS_TIME_SLOTS = 1024;
/** RFC 5321 §4.5.3.1.1: the longest local part, in octets. */
export const LOCAL_PART_MAX_OCTETS = 64;
const DAY_MS = 86_400_000;
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const SEPARATORS = '=+-';
/** RFC 5322 dot-atom text: what a local part we rewrite may hold (no quoted strings). */
const DOT_ATOM = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;

export interface SrsSettings {
  /** The first signs; every one verifies (rotation: put the new one first, keep the old for maxAgeDays). */
  secrets: readonly string[];
  /** The domain the rewritten addresses are under (SRS_DOMAIN). */
  domain: string;
  /** Days an address stays valid (SRS_MAX_AGE_DAYS). */
  maxAgeDays: number;
}

export type SrsScheme = 'SRS0' | 'SRS1';

/** Why a sender is not rewritten; each is a defined, logged behaviour for the caller. */
export type ForwardRefusal =
  | 'null-sender'
  | 'no-domain'
  /** A quoted local part ("john doe"@…) cannot be carried in an SRS local part. */
  | 'unsupported-local-part'
  /** The SRS local part would exceed RFC 5321's 64 octets. */
  | 'local-part-too-long'
  /** The sender is already under SRS_DOMAIN. */
  | 'srs-domain'
  /** An SRS1 sender whose fields cannot be found. */
  | 'malformed-srs';

export type ForwardResult =
  | { ok: true; address: string; scheme: SrsScheme }
  | { ok: false; reason: ForwardRefusal; detail: string };

/** Why an address does not decode. Only `forged` and `expired` are about an authentic-looking SRS address. */
export type ReverseRefusal =
  /** Not an SRS address at all (a plain address under SRS_DOMAIN, or text). */
  | 'not-srs'
  /** An SRS address under another domain than SRS_DOMAIN. */
  | 'foreign-domain'
  /** SRS0/SRS1 with missing or ill-formed fields. */
  | 'malformed'
  /** The hash matches none of the secrets. */
  | 'forged'
  /** Authentic, but older than maxAgeDays (or stamped in the future). */
  | 'expired';

export type ReverseResult =
  | { ok: true; address: string; scheme: SrsScheme }
  | { ok: false; reason: ReverseRefusal; detail: string };

/** ASCII-only lowercasing, as C's tolower() in the C locale that libsrs2 runs in. */
function asciiLower(text: string): string {
  return /[A-Z]/.test(text) ? text.replace(/[A-Z]+/g, (run) => run.toLowerCase()) : text;
}

function sameDomain(a: string, b: string): boolean {
  return asciiLower(a.replace(/\.$/, '')) === asciiLower(b.replace(/\.$/, ''));
}

/** The two base32 characters of the day of `nowMs`, modulo 1024. */
export function srsTimestamp(nowMs: number): string {
  const day = Math.floor(nowMs / DAY_MS);
  return BASE32[(day >> 5) & 31]! + BASE32[day & 31]!;
}

/** The day number (0..1023) a timestamp stands for, or undefined when it is not two base32 characters. */
export function decodeTimestamp(stamp: string): number | undefined {
  if (stamp.length !== 2) return undefined;
  const hi = BASE32.indexOf(stamp[0]!.toUpperCase());
  const lo = BASE32.indexOf(stamp[1]!.toUpperCase());
  if (hi < 0 || lo < 0) return undefined;
  return (hi << 5) | lo;
}

/** libsrs2's srs_timestamp_check: valid when today is at most maxAgeDays after the stamp's day, modulo 1024. */
export function timestampValid(then: number, nowMs: number, maxAgeDays: number): boolean {
  let now = Math.floor(nowMs / DAY_MS) % SRS_TIME_SLOTS;
  while (now < then) now += SRS_TIME_SLOTS;
  return now <= then + maxAgeDays;
}

function srsHash(secret: string, fields: readonly string[]): string {
  const hmac = createHmac('sha1', secret);
  for (const field of fields) hmac.update(asciiLower(field), 'utf8');
  return hmac.digest('base64').slice(0, SRS_HASH_LENGTH);
}

function splitAddress(address: string): { local: string; domain: string } | undefined {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return undefined;
  return { local: address.slice(0, at), domain: address.slice(at + 1) };
}

function srsTag(local: string): SrsScheme | undefined {
  if (local.length < 5 || !SEPARATORS.includes(local[4]!)) return undefined;
  const tag = local.slice(0, 4).toUpperCase();
  return tag === 'SRS0' || tag === 'SRS1' ? tag : undefined;
}

/** Whether `address`'s local part is tagged SRS0 or SRS1 (not whether it is valid). */
export function isSrsAddress(address: string): boolean {
  const parts = splitAddress(address);
  return parts !== undefined && srsTag(parts.local) !== undefined;
}

export class Srs {
  readonly domain: string;
  readonly maxAgeDays: number;
  readonly #secrets: readonly string[];

  constructor(settings: SrsSettings) {
    if (settings.secrets.length === 0 || settings.secrets.some((s) => s === '')) throw new Error('SRS needs at least one non-empty secret');
    if (!Number.isInteger(settings.maxAgeDays) || settings.maxAgeDays < 1 || settings.maxAgeDays >= SRS_TIME_SLOTS) {
      throw new Error(`SRS maximum age must be 1 to ${SRS_TIME_SLOTS - 1} days`);
    }
    this.#secrets = [...settings.secrets];
    this.domain = settings.domain.replace(/\.$/, '');
    this.maxAgeDays = settings.maxAgeDays;
  }

  /** Secrets stay private: never in a log line, a JSON dump or an inspection. */
  toJSON(): object {
    return { domain: this.domain, maxAgeDays: this.maxAgeDays, secrets: this.#secrets.length };
  }

  /** The SRS address for envelope sender `sender` (bare, without angle brackets). */
  forward(sender: string, nowMs: number = Date.now()): ForwardResult {
    if (sender === '' || sender === '<>') return { ok: false, reason: 'null-sender', detail: 'the null sender is never rewritten' };
    const parts = splitAddress(sender);
    if (!parts) return { ok: false, reason: 'no-domain', detail: `sender ${JSON.stringify(sender)} has no domain` };
    const { local, domain } = parts;
    if (!DOT_ATOM.test(local)) {
      return { ok: false, reason: 'unsupported-local-part', detail: `local part ${JSON.stringify(local)} is not a dot-atom (quoted or unusual characters)` };
    }
    if (sameDomain(domain, this.domain)) return { ok: false, reason: 'srs-domain', detail: `sender is already under ${this.domain}` };
    const secret = this.#secrets[0]!;
    const tag = srsTag(local);
    let newLocal: string;
    let scheme: SrsScheme;
    if (tag === 'SRS0') {
      // Another forwarder's SRS0: keep its domain as the first hop, hash the rest (separator included).
      const rest = local.slice(4);
      newLocal = `SRS1=${srsHash(secret, [domain, rest])}=${domain}=${rest}`;
      scheme = 'SRS1';
    } else if (tag === 'SRS1') {
      // SRS1=hash=firsthop=rest: re-sign first hop and rest under our domain, as postsrsd does.
      const body = local.slice(5);
      const hostStart = body.indexOf('=') + 1;
      const hostEnd = hostStart > 0 ? body.indexOf('=', hostStart) : -1;
      if (hostStart === 0 || hostEnd <= hostStart || hostEnd === body.length - 1) {
        return { ok: false, reason: 'malformed-srs', detail: `SRS1 sender ${JSON.stringify(sender)} lacks its first hop or rest` };
      }
      const host = body.slice(hostStart, hostEnd);
      const rest = body.slice(hostEnd + 1);
      newLocal = `SRS1=${srsHash(secret, [host, rest])}=${host}=${rest}`;
      scheme = 'SRS1';
    } else {
      const stamp = srsTimestamp(nowMs);
      newLocal = `SRS0=${srsHash(secret, [stamp, domain, local])}=${stamp}=${domain}=${local}`;
      scheme = 'SRS0';
    }
    const octets = Buffer.byteLength(newLocal, 'utf8');
    if (octets > LOCAL_PART_MAX_OCTETS) {
      return {
        ok: false,
        reason: 'local-part-too-long',
        detail: `the ${scheme} local part would be ${octets} octets, over RFC 5321's ${LOCAL_PART_MAX_OCTETS}`,
      };
    }
    return { ok: true, address: `${newLocal}@${this.domain}`, scheme };
  }

  /** The address an SRS address under our domain stands for: the original sender (SRS0) or the first hop's SRS0 (SRS1). */
  reverse(address: string, nowMs: number = Date.now()): ReverseResult {
    const parts = splitAddress(address);
    const tag = parts && srsTag(parts.local);
    if (!parts || !tag) return { ok: false, reason: 'not-srs', detail: 'not an SRS address' };
    if (!sameDomain(parts.domain, this.domain)) return { ok: false, reason: 'foreign-domain', detail: `SRS address under ${parts.domain}, not ${this.domain}` };
    const fields = parts.local.slice(5).split('=');
    if (tag === 'SRS0') {
      // hash, stamp, domain, then the local part, which may itself hold '='.
      if (fields.length < 4) return { ok: false, reason: 'malformed', detail: 'SRS0 needs hash, timestamp, domain and local part' };
      const [hash, stamp, host] = fields as [string, string, string];
      const user = fields.slice(3).join('=');
      if (hash.length !== SRS_HASH_LENGTH || host === '' || user === '') return { ok: false, reason: 'malformed', detail: 'SRS0 field empty or hash not 4 characters' };
      const then = decodeTimestamp(stamp);
      if (then === undefined) return { ok: false, reason: 'malformed', detail: 'SRS0 timestamp is not two base32 characters' };
      if (!this.#verify(hash, [stamp, host, user])) return { ok: false, reason: 'forged', detail: 'SRS0 hash matches no secret' };
      if (!timestampValid(then, nowMs, this.maxAgeDays)) return { ok: false, reason: 'expired', detail: `SRS0 timestamp older than ${this.maxAgeDays} days` };
      return { ok: true, address: `${user}@${host}`, scheme: 'SRS0' };
    }
    // SRS1: hash, first hop, then the rest of the first hop's SRS0 (which starts with its separator).
    if (fields.length < 3) return { ok: false, reason: 'malformed', detail: 'SRS1 needs hash, first hop and rest' };
    const [hash, host] = fields as [string, string];
    const rest = fields.slice(2).join('=');
    if (hash.length !== SRS_HASH_LENGTH || host === '' || rest === '') return { ok: false, reason: 'malformed', detail: 'SRS1 field empty or hash not 4 characters' };
    if (!this.#verify(hash, [host, rest])) return { ok: false, reason: 'forged', detail: 'SRS1 hash matches no secret' };
    return { ok: true, address: `SRS0${rest}@${host}`, scheme: 'SRS1' };
  }

  /** Case-insensitive, constant-time per secret, every secret tried. */
  #verify(hash: string, fields: readonly string[]): boolean {
    const given = Buffer.from(asciiLower(hash), 'latin1');
    let ok = false;
    for (const secret of this.#secrets) {
      const expected = Buffer.from(asciiLower(srsHash(secret, fields)), 'latin1');
      if (given.length === expected.length && timingSafeEqual(given, expected)) ok = true;
    }
    return ok;
  }
}
