/**
 * One milter connection: decodes packets into commands, runs the application's callbacks one at
 * a time in arrival order, and answers every command that expects a reply exactly once.
 * Transport-agnostic: the server wires it to a socket through SessionIO.
 *
 * Layers, bottom up: PacketDecoder (bytes -> packets), decodeCommand (packets -> typed commands),
 * CommandQueue (one command at a time, bounded), dispatch (command -> callback, here), with
 * VerdictRules (results -> replies), EndOfMessage (the verdict path and its progress packets),
 * Outbox (replies of one read in one write) and the lifecycle (abort / close owed, here).
 */
import { errorMessage } from '../log/index.js';
import { type EndReason, type MilterApplication, type MilterLogger, type ReplyingCallback, SILENT_LOGGER } from './application.js';
import { type MilterClock, SYSTEM_CLOCK } from './clock.js';
import { CommandQueue } from './command-queue.js';
import { decodeCommand, type MtaCommand } from './commands.js';
import { Cmd, DEFAULT_MAX_QUEUED_PACKETS, DEFAULT_PROGRESS_INTERVAL_MS } from './constants.js';
import { ConnectionContext } from './context.js';
import type { SessionCounters } from './counters.js';
import { EndOfMessage } from './end-of-message.js';
import { MilterError, MilterProtocolError } from './errors.js';
import { PacketDecoder } from './framing.js';
import { andThen, invoke, type Step } from './invoke.js';
import { MacroStore, type MacroPacket } from './macros.js';
import { NegotiationCache } from './negotiation-cache.js';
import { describeNegotiation, type Offer } from './negotiation.js';
import { Outbox, type PacketWriter } from './outbox.js';
import { RateLimitedLog } from './rate-limited-log.js';
import type { SymbolList } from './responses.js';
import { CONTINUE, VerdictRules } from './verdict-rules.js';
import type { Verdict } from './verdict.js';

export type { EndReason };
export type { SessionCounters };

export interface SessionIO extends PacketWriter {
  /** Graceful close after pending writes. */
  end(): void;
  /**
   * True while earlier packets still wait to be taken by the peer: a progress packet is then
   * skipped (the one waiting already tells the MTA we are at work). Optional: without it every
   * progress packet is written.
   */
  backlogged?(): boolean;
}

/** Bytes of payload that may wait behind a pending callback, whatever the packet count. */
const DEFAULT_MAX_QUEUED_BYTES = 1024 * 1024;

export interface SessionOptions {
  id: string;
  app: MilterApplication;
  logger: MilterLogger;
  maxPayload: number;
  symbolLists: readonly SymbolList[];
  counters: SessionCounters;
  /**
   * Packets that may wait while a callback is pending; one more closes the connection. An MTA
   * only pipelines what it negotiated as no-reply (Postfix: a `D` and a RCPT per recipient, at
   * most smtpd_recipient_limit = 1000 of them), so 4096 leaves room and stops a flood.
   */
  maxQueuedPackets?: number;
  /** Bytes that may wait while a callback is pending (default 1 MiB, at least one largest packet). */
  maxQueuedBytes?: number;
  /** Where per-event warnings go, rate limited; shared by the sessions of one server. */
  noise?: RateLimitedLog;
  /** Negotiation replies shared by the sessions of one server. Optional: without it each session negotiates. */
  negotiations?: NegotiationCache;
  /**
   * While the application's reply to end of message is pending, SMFIR_PROGRESS is sent this
   * often (ms; 0 never; default 5000). See EndOfMessage.
   */
  progressIntervalMs?: number;
  /** Timers of the progress packets (default: the system's); tests drive one by hand. */
  clock?: MilterClock;
}

/** What waits in the command queue: a decoded packet, or the end of the connection. */
type Work = { end: false; cmd: number; command: MtaCommand | MacroPacket } | { end: true; reason: EndReason };

export class MilterSession {
  readonly ctx: ConnectionContext;
  /** Packets received so far: lets the transport tell progress from a peer stuck mid-packet. */
  packetsIn = 0;
  /** Called once when the session is completely over (after the close callback). */
  onFinished: (() => void) | undefined;

  private readonly decoder: PacketDecoder;
  private readonly macros = new MacroStore();
  private readonly queue: CommandQueue<Work>;
  private readonly out: Outbox;
  private readonly rules: VerdictRules;
  private readonly endOfMessage: EndOfMessage;
  private readonly negotiations: NegotiationCache;
  private readonly noise: RateLimitedLog;
  private readonly debugEnabled: boolean;
  /** No more input is processed (QUIT seen, protocol error, end of stream). */
  private ended = false;
  /** An SMTP session is open: close() is owed to the application. */
  private sessionOpen = false;
  /** Between MAIL and end of message / ABORT: abort() is owed if the message is abandoned. */
  private inMessage = false;

  constructor(
    private readonly io: SessionIO,
    private readonly opts: SessionOptions,
  ) {
    this.out = new Outbox(io);
    this.ctx = new ConnectionContext(opts.id, this.macros, (p) => this.out.send(p));
    this.decoder = new PacketDecoder((cmd, payload) => this.onPacket(cmd, payload), opts.maxPayload);
    this.queue = new CommandQueue<Work>(
      (work) => (work.end ? this.finish(work.reason) : this.dispatch(work.cmd, work.command)),
      (err) => this.internalError(err),
      {
        maxItems: opts.maxQueuedPackets ?? DEFAULT_MAX_QUEUED_PACKETS,
        maxBytes: Math.max(opts.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES, opts.maxPayload + 5),
      },
    );
    this.rules = new VerdictRules(opts.id, opts.logger, opts.counters);
    this.endOfMessage = new EndOfMessage({
      app: opts.app,
      ctx: this.ctx,
      rules: this.rules,
      out: this.out,
      counters: opts.counters,
      clock: opts.clock ?? SYSTEM_CLOCK,
      progressIntervalMs: opts.progressIntervalMs ?? DEFAULT_PROGRESS_INTERVAL_MS,
      backlogged: () => io.backlogged?.() ?? false,
      ended: () => this.ended,
      answered: () => (this.inMessage = false),
    });
    this.negotiations = opts.negotiations ?? new NegotiationCache(opts.app, opts.symbolLists, opts.maxPayload);
    this.noise = opts.noise ?? new RateLimitedLog(opts.logger);
    this.debugEnabled = levelEnabled(opts.logger, 'debug');
  }

  /** Bytes of a packet received in part (its first byte arrived, its last not yet). */
  get partialBytes(): number {
    return this.decoder.bufferedBytes;
  }

  /** Input held: the incomplete packet and the packets waiting behind a pending callback. */
  get bufferedBytes(): number {
    return this.decoder.bufferedBytes + this.queue.bytes;
  }

  /** True while a callback runs or commands wait: the idle timeout must not fire then. */
  get busyNow(): boolean {
    return this.queue.busy;
  }

  /** A message is in flight (the shutdown deadline log tells these from idle sessions). */
  get messageInFlight(): boolean {
    return this.inMessage || this.busyNow;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** Feeds bytes read from the socket; the replies they produce leave in one write. */
  feed(chunk: Buffer): void {
    if (this.ended) return;
    this.out.collect(() => {
      try {
        this.decoder.push(chunk);
      } catch (err) {
        this.protocolError(err);
      }
    });
  }

  /** The transport ended (EOF, error, timeout) or the server shuts down: finish after pending work. */
  end(reason: EndReason): void {
    if (this.ended) return;
    this.ended = true;
    this.decoder.stop();
    // The peer is gone or being closed: nothing more is written for it but a reply already owed.
    this.endOfMessage.stopProgress();
    // At once, not queued: the application learns that the MTA is gone while a callback waits.
    void this.notify('disconnect', reason);
    this.queue.submitLast({ end: true, reason });
  }

  private onPacket(cmd: number, payload: Buffer): void {
    this.packetsIn++;
    // Postfix sends a D before every command: decoded straight into the macro store's map.
    const command = decodeCommand(cmd, payload);
    if (!this.ctx.negotiated && command.type !== 'optneg') {
      throw new MilterProtocolError('NOT_NEGOTIATED', `command '${String.fromCharCode(cmd)}' before option negotiation`);
    }
    if (command.type === 'quit') {
      // Anything after QUIT is not ours to read.
      this.ended = true;
      this.decoder.stop();
    }
    if (!this.queue.submit({ end: false, cmd, command }, payload.length + 5)) this.queueOverflow();
  }

  /**
   * Too much waits behind the callback in flight: no MTA pipelines this much, so the peer is
   * broken or hostile. What waits is dropped; the callback in flight still gets its answer out,
   * then the connection closes.
   */
  private queueOverflow(): void {
    this.opts.counters.queueOverflows++;
    const { maxItems, maxBytes } = this.queue.bounds;
    this.noise.warn(
      'queue-overflow',
      { conn: this.opts.id, queued: this.queue.length, queuedBytes: this.queue.bytes, maxPackets: maxItems, maxBytes },
      'milter peer pipelined more than allowed while a callback was pending, closing connection',
    );
    this.queue.clear();
    this.end('limit');
  }

  private protocolError(err: unknown): void {
    this.opts.counters.protocolErrors++;
    const code = err instanceof MilterError ? err.code : 'INTERNAL';
    this.noise.warn(
      'protocol-error',
      { conn: this.opts.id, code, err: errorMessage(err) },
      'milter protocol error, closing connection',
    );
    this.end('protocol-error');
  }

  /** A command's step threw or rejected (not a callback: those are answered by VerdictRules). */
  private internalError(err: unknown): void {
    // Negotiation refusals surface while dispatching, not while decoding.
    if (err instanceof MilterProtocolError) {
      this.protocolError(err);
      return;
    }
    this.opts.logger.error({ conn: this.opts.id, err }, 'milter session internal error');
    if (!this.ended) this.end('error');
  }

  private dispatch(cmd: number, c: MtaCommand | MacroPacket): Step {
    if (cmd !== Cmd.MACRO) this.macros.onCommand(cmd);
    const app = this.opts.app;
    const ctx = this.ctx;
    switch (c.type) {
      case 'macroPacket':
        if (!this.macros.setPairs(c.stage, c.macros) && this.debugEnabled) {
          this.opts.logger.debug({ conn: this.opts.id, stage: c.stage }, 'macros for an unknown stage ignored');
        }
        return;
      case 'optneg':
        return this.optneg(c);
      case 'connect': {
        const { type: _t, ...info } = c;
        return andThen(this.abandon(), () => {
          ctx.resetMessage();
          ctx.connection = info;
          ctx.helo = undefined;
          this.sessionOpen = true;
          return this.call(cmd, 'connect', app.connect && (() => app.connect!(ctx, info)));
        });
      }
      case 'helo':
        ctx.helo = c.name;
        this.sessionOpen = true;
        return this.call(cmd, 'helo', app.helo && (() => app.helo!(ctx, c.name)));
      case 'mail':
        // MAIL without ABORT after an unfinished message: that message is abandoned.
        return andThen(this.abandon(), () => {
          this.inMessage = true;
          this.sessionOpen = true;
          return this.call(cmd, 'envfrom', app.envfrom && (() => app.envfrom!(ctx, c.args[0]!, c.args.slice(1))));
        });
      case 'rcpt':
        return this.call(cmd, 'envrcpt', app.envrcpt && (() => app.envrcpt!(ctx, c.args[0]!, c.args.slice(1))));
      case 'data':
        return this.call(cmd, 'data', app.data && (() => app.data!(ctx)));
      case 'header':
        return this.call(cmd, 'header', app.header && (() => app.header!(ctx, c.name, c.value)));
      case 'eoh':
        return this.call(cmd, 'eoh', app.eoh && (() => app.eoh!(ctx)));
      case 'body':
        return this.call(cmd, 'body', app.body && (() => app.body!(ctx, c.chunk)));
      case 'unknown':
        return this.call(cmd, 'unknown', app.unknown && (() => app.unknown!(ctx, c.line)));
      case 'eob':
        return this.endOfMessage.run(c.data);
      case 'abort':
        return this.abandon();
      case 'quit':
        return this.finish('quit');
      case 'quitNc':
        return andThen(this.closeSession(), () => {
          ctx.connection = undefined;
          ctx.helo = undefined;
        });
    }
  }

  private optneg(offer: Offer): Step {
    const n = this.negotiations.replyTo(offer);
    if (this.debugEnabled) {
      this.opts.logger.debug({ conn: this.opts.id, ...describeNegotiation(offer, n.negotiated, n.symbolLists) }, 'milter options negotiated');
    }
    if (n.unavailable.length > 0) {
      this.opts.logger.warn({ conn: this.opts.id, unavailable: n.unavailable }, 'MTA does not offer everything the application declared');
    }
    // A second OPTNEG starts the conversation over: finish what the first one left open.
    const before = this.ctx.negotiated ? this.closeSession() : undefined;
    return andThen(before, () => {
      this.ctx.negotiated = { ...n.negotiated };
      this.out.send(n.packet);
    });
  }

  /** Runs a replying callback (if any) and sends the one reply the command is owed, if any. */
  private call(cmd: number, name: ReplyingCallback, callback: (() => unknown) | undefined): Step {
    if (!callback) return this.reply(cmd, name, CONTINUE);
    return invoke(
      callback,
      (result) => this.reply(cmd, name, this.rules.fromResult(name, result)),
      (err) => this.reply(cmd, name, this.rules.fromFailure(name, err)),
    );
  }

  private reply(cmd: number, name: ReplyingCallback, verdict: Verdict): void {
    const sent = this.rules.replyFor(cmd, name, verdict, this.ctx.negotiated);
    if (sent) this.out.send(sent.packet);
  }

  /** ABORT semantics: abandon the message in progress, if any (never answered). */
  private abandon(): Step {
    const ctx = this.ctx;
    if (!this.inMessage) {
      ctx.resetMessage();
      return;
    }
    this.inMessage = false;
    return andThen(this.notify('abort'), () => ctx.resetMessage());
  }

  /** End of the SMTP session: abort a message in flight, then close(). */
  private closeSession(): Step {
    return andThen(this.abandon(), () => {
      if (!this.sessionOpen) return;
      this.sessionOpen = false;
      return this.notify('close');
    });
  }

  private finish(reason: EndReason): Step {
    this.ended = true;
    this.decoder.stop();
    this.endOfMessage.stopProgress();
    // A negotiated connection that never saw CONNECT still owes close() (NOCONNECT, or EOF early).
    if (this.ctx.negotiated) this.sessionOpen = this.sessionOpen || reason !== 'protocol-error' || this.inMessage;
    return andThen(this.closeSession(), () => {
      if (this.debugEnabled) this.opts.logger.debug({ conn: this.opts.id, reason }, 'milter connection finished');
      // Replies collected from the chunk being fed (QUIT may follow them in it) go out first.
      this.out.flush();
      this.io.end();
      this.onFinished?.();
    });
  }

  /** Calls abort/close/disconnect; their results are ignored and their errors only logged. */
  private notify(name: 'abort' | 'close' | 'disconnect', reason?: EndReason): Step {
    const fn = this.opts.app[name];
    if (!fn) return;
    return invoke(
      // Only disconnect takes the reason; abort and close ignore a second argument.
      () => (fn as (ctx: ConnectionContext, reason?: EndReason) => unknown).call(this.opts.app, this.ctx, reason),
      () => undefined,
      (err) => {
        this.opts.counters.callbackErrors++;
        this.opts.logger.error({ conn: this.opts.id, callback: name, err }, 'milter callback failed');
      },
    );
  }
}

/** Whether a level is on, for loggers that can tell (pino); others are assumed to log everything. */
export function levelEnabled(logger: MilterLogger, level: 'debug'): boolean {
  if (logger === SILENT_LOGGER) return false;
  const probe = (logger as { isLevelEnabled?: unknown }).isLevelEnabled;
  if (typeof probe === 'function') return (probe as (l: string) => boolean).call(logger, level);
  return true;
}
