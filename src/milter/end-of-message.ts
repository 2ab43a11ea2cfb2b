/**
 * The end-of-message path: data carried by EOB goes to the body callback first (libmilter does
 * so; Postfix never sends any), then eom decides; the message's edits go out with the verdict.
 * While the verdict is pending, SMFIR_PROGRESS is sent every interval: Postfix and Sendmail
 * restart their reply timeout on it, so a slow verdict is waited for instead of being replaced
 * by the MTA's timeout action. Only here: Sendmail reads progress nowhere else.
 */
import type { MilterApplication } from './application.js';
import type { MilterClock } from './clock.js';
import type { ConnectionContext } from './context.js';
import type { SessionCounters } from './counters.js';
import { invoke, type Step } from './invoke.js';
import type { Outbox } from './outbox.js';
import { SIMPLE_PACKETS } from './responses.js';
import { CONTINUE, type VerdictRules } from './verdict-rules.js';
import type { Verdict } from './verdict.js';

export interface EndOfMessageParts {
  app: MilterApplication;
  ctx: ConnectionContext;
  rules: VerdictRules;
  out: Outbox;
  counters: SessionCounters;
  clock: MilterClock;
  /** ms between progress packets; 0 never. */
  progressIntervalMs: number;
  /** Earlier packets still wait to be taken by the peer: progress is then skipped. */
  backlogged(): boolean;
  /** The connection is over: no progress is sent or armed. */
  ended(): boolean;
  /** The verdict went out: the message is over. */
  answered(): void;
}

export class EndOfMessage {
  /** The progress timer while a verdict is pending, else undefined. */
  private progressTimer: unknown;

  constructor(private readonly p: EndOfMessageParts) {}

  run(data: Buffer): Step {
    const pending = this.bodyThenEom(data);
    // Answered at once (the usual case): no timer. Else the MTA hears from us until the reply.
    if (pending) this.armProgress();
    return pending;
  }

  /** No more progress (the verdict went out, or the connection ends). */
  stopProgress(): void {
    if (this.progressTimer === undefined) return;
    this.p.clock.clearTimeout(this.progressTimer);
    this.progressTimer = undefined;
  }

  private bodyThenEom(data: Buffer): Step {
    const { app, ctx, rules } = this.p;
    if (data.length === 0 || !app.body) return this.eom();
    return invoke(
      () => app.body!(ctx, data),
      (result) => {
        const v = rules.fromResult('body', result);
        return v.isContinue || v.kind === 'skip' ? this.eom() : this.answer(v);
      },
      (err) => this.answer(rules.fromFailure('eom', err)),
    );
  }

  private eom(): Step {
    const { app, ctx, rules } = this.p;
    ctx.inEom = true;
    if (!app.eom) return this.answer(CONTINUE);
    return invoke(
      () => app.eom!(ctx),
      (result) => this.answer(rules.fromResult('eom', result)),
      (err) => this.answer(rules.fromFailure('eom', err)),
    );
  }

  /** The verdict, after the message's edits when it goes on (body packets first, back to back). */
  private answer(v: Verdict): void {
    this.stopProgress();
    const { ctx, out } = this.p;
    if (v.kind === 'skip') v = CONTINUE;
    const edits = ctx.bodyPackets.length + ctx.editPackets.length;
    if ((v.kind === 'continue' || v.kind === 'accept') && edits > 0) out.sendMany([...ctx.bodyPackets, ...ctx.editPackets, v.packet]);
    else out.send(v.packet);
    this.p.counters.messages++;
    this.p.answered();
    ctx.resetMessage();
  }

  private armProgress(): void {
    if (this.p.progressIntervalMs > 0 && !this.p.ended()) {
      this.progressTimer = this.p.clock.setTimeout(() => this.sendProgress(), this.p.progressIntervalMs);
    }
  }

  /** One progress packet, unless the peer has not read the last ones (it must not make us queue more). */
  private sendProgress(): void {
    this.progressTimer = undefined;
    if (this.p.ended()) return;
    if (!this.p.backlogged()) {
      this.p.counters.progressPackets++;
      this.p.out.send(SIMPLE_PACKETS.progress);
    }
    this.armProgress();
  }
}
