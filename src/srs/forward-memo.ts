/**
 * The SRS addresses of recent senders, so that a sender who sends many messages a day (the
 * usual case at an ESP) is signed once a day rather than once per message: HMAC-SHA1 with a
 * fresh key schedule costs about 2 us alone and 5-7 us per message inside the daemon
 * (npm run bench -- --part rewrite; bench/profile.js --mode rewrite).
 *
 * An address depends on the sender, the secret and the day only, so the memo is exact: it is
 * emptied when the day changes, and bounded in entries (each key at most a 256-octet SMTP path,
 * RFC 5321 §4.5.3.1.3; each value an address of at most 64 + 255 octets), oldest out first.
 */
import type { ForwardResult, Srs } from './scheme.js';

const DAY_MS = 86_400_000;
const FORWARD_MEMO_MAX_ENTRIES = 4096;
/** Longer senders are not kept (they are refused as too long anyway, or never repeat). */
const MAX_KEY_LENGTH = 256;

export class ForwardMemo {
  readonly #srs: Srs;
  readonly #maxEntries: number;
  readonly #entries = new Map<string, ForwardResult>();
  #day = -1;

  constructor(srs: Srs, maxEntries: number = FORWARD_MEMO_MAX_ENTRIES) {
    if (!Number.isInteger(maxEntries) || maxEntries < 0) throw new RangeError(`ForwardMemo: maxEntries must be a non-negative integer, got ${maxEntries}`);
    this.#srs = srs;
    this.#maxEntries = maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** What `srs.forward(sender, nowMs)` gives. */
  forward(sender: string, nowMs: number = Date.now()): ForwardResult {
    const day = Math.floor(nowMs / DAY_MS);
    if (day !== this.#day) {
      this.#entries.clear();
      this.#day = day;
    }
    const known = this.#entries.get(sender);
    if (known) return known;
    const result = this.#srs.forward(sender, nowMs);
    if (this.#maxEntries > 0 && sender.length <= MAX_KEY_LENGTH) {
      if (this.#entries.size >= this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
      this.#entries.set(sender, result);
    }
    return result;
  }
}
