/**
 * What the application's answers become on the wire: a result that is not a Verdict, or a
 * callback that failed, is a tempfail (counted and logged); a command negotiated as no-reply
 * gets nothing; a verdict the protocol does not allow at a stage is replaced by continue.
 */
import type { MilterLogger, NegotiatedOptions } from './application.js';
import { Cmd, ProtoFlag } from './constants.js';
import type { SessionCounters } from './counters.js';
import { Verdict } from './verdict.js';

/** The no-reply flag of each command that has one. */
const NO_REPLY_FLAG: Partial<Record<number, number>> = {
  [Cmd.CONNECT]: ProtoFlag.NR_CONN,
  [Cmd.HELO]: ProtoFlag.NR_HELO,
  [Cmd.MAIL]: ProtoFlag.NR_MAIL,
  [Cmd.RCPT]: ProtoFlag.NR_RCPT,
  [Cmd.DATA]: ProtoFlag.NR_DATA,
  [Cmd.UNKNOWN]: ProtoFlag.NR_UNKN,
  [Cmd.EOH]: ProtoFlag.NR_EOH,
  [Cmd.BODY]: ProtoFlag.NR_BODY,
  [Cmd.HEADER]: ProtoFlag.NR_HDR,
};

export const CONTINUE = Verdict.continue();

export class VerdictRules {
  constructor(
    private readonly conn: string,
    private readonly logger: MilterLogger,
    private readonly counters: SessionCounters,
  ) {}

  /** A callback's result as a Verdict: nothing is continue, anything else not a Verdict a tempfail. */
  fromResult(callback: string, result: unknown): Verdict {
    if (result === undefined) return CONTINUE;
    if (result instanceof Verdict) return result;
    this.counters.callbackErrors++;
    this.logger.error({ conn: this.conn, callback }, 'callback returned something that is not a Verdict; answering tempfail');
    return Verdict.tempfail();
  }

  /** A callback threw or its promise rejected: tempfail. */
  fromFailure(callback: string, err: unknown): Verdict {
    this.counters.callbackErrors++;
    this.logger.error({ conn: this.conn, callback, err }, 'milter callback failed, answering tempfail');
    return Verdict.tempfail();
  }

  /** The reply `cmd` gets for `verdict` (not end of message), or undefined when it gets none. */
  replyFor(cmd: number, callback: string, verdict: Verdict, negotiated: NegotiatedOptions | undefined): Verdict | undefined {
    const noReply = NO_REPLY_FLAG[cmd];
    if (noReply !== undefined && negotiated && negotiated.protocol & noReply) {
      if (!verdict.isContinue) {
        this.logger.warn({ conn: this.conn, callback, verdict: verdict.kind }, 'callback negotiated as no-reply returned a verdict; not sent');
      }
      return undefined;
    }
    if (verdict.kind === 'discard' && (cmd === Cmd.CONNECT || cmd === Cmd.HELO)) {
      this.logger.warn({ conn: this.conn, callback }, 'discard is not valid at connect/helo; continuing');
      return CONTINUE;
    }
    if (verdict.kind === 'skip' && (cmd !== Cmd.BODY || !negotiated || !(negotiated.protocol & ProtoFlag.SKIP))) return CONTINUE;
    return verdict;
  }
}
