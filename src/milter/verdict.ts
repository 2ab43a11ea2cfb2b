/** Verdicts returned by application callbacks; each carries its encoded final reply. */
import { formatReplyCode } from './replycode.js';
import { encodeFormattedReply, SIMPLE_PACKETS } from './responses.js';

export type VerdictKind = 'continue' | 'accept' | 'reject' | 'tempfail' | 'discard' | 'skip' | 'reply';

export class Verdict {
  private constructor(
    readonly kind: VerdictKind,
    /** The final reply packet, encoded once. */
    readonly packet: Buffer,
    /** For 'reply': the SMTP reply text as sent (`%` doubled). */
    readonly text?: string,
  ) {
    Object.freeze(this);
  }

  private static readonly CONTINUE = new Verdict('continue', SIMPLE_PACKETS.continue);
  private static readonly ACCEPT = new Verdict('accept', SIMPLE_PACKETS.accept);
  private static readonly REJECT = new Verdict('reject', SIMPLE_PACKETS.reject);
  private static readonly TEMPFAIL = new Verdict('tempfail', SIMPLE_PACKETS.tempfail);
  private static readonly DISCARD = new Verdict('discard', SIMPLE_PACKETS.discard);
  private static readonly SKIP = new Verdict('skip', SIMPLE_PACKETS.skip);

  /** Go on (at end of message: accept). */
  static continue(): Verdict {
    return Verdict.CONTINUE;
  }
  /** Accept the connection (at connect/helo) or the message; no more events for it. */
  static accept(): Verdict {
    return Verdict.ACCEPT;
  }
  /** Reject with the MTA's default 5xx text. */
  static reject(): Verdict {
    return Verdict.REJECT;
  }
  /** Temporary failure with the MTA's default 4xx text. */
  static tempfail(): Verdict {
    return Verdict.TEMPFAIL;
  }
  /** Accept and silently drop the message (message stages only; at connect/helo it becomes continue). */
  static discard(): Verdict {
    return Verdict.DISCARD;
  }
  /** Stop sending body chunks (body callback only, and only when the MTA supports SKIP). */
  static skip(): Verdict {
    return Verdict.SKIP;
  }
  /**
   * Reply with an explicit SMTP code: 4xx = temporary failure, 5xx = rejection. Validated now, so
   * a malformed reply fails in the application rather than at the MTA.
   */
  static reply(code: number | string, enhanced: string | null | undefined, text: string | readonly string[]): Verdict {
    const formatted = formatReplyCode(code, enhanced, text);
    return new Verdict('reply', encodeFormattedReply(formatted), formatted);
  }

  get isContinue(): boolean {
    return this.kind === 'continue';
  }
}
