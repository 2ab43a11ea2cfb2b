/**
 * One milter connection: decodes packets into commands, runs the application's callbacks one at
 * a time in arrival order, and answers every command that expects a reply exactly once.
 * Transport-agnostic: the server wires it to a socket through SessionIO.
 */
import { errorMessage } from '../log/index.js';
import { type CallbackResult, type EndReason, type MilterApplication, type MilterLogger, type ReplyingCallback, SILENT_LOGGER } from './application.js';
import { decodeCommand, type MtaCommand } from './commands.js';
import { type MilterClock, SYSTEM_CLOCK } from './clock.js';
import { Cmd, DEFAULT_MAX_QUEUED_PACKETS, DEFAULT_PROGRESS_INTERVAL_MS, ProtoFlag } from './constants.js';
import { ConnectionContext } from './context.js';
import { MilterError, MilterProtocolError } from './errors.js';
import { PacketDecoder } from './framing.js';
import { MacroStore, type MacroPacket } from './macros.js';
import { describeNegotiation, negotiate } from './negotiation.js';
import { RateLimitedLog } from './rate-limited-log.js';
import { encodeResponse, SIMPLE_PACKETS, type SymbolList } from './responses.js';
import { Verdict } from './verdict.js';

export interface SessionIO {
  write(packet: Buffer): void;
  /** Several packets that belong together (edits + final reply). */
  writeMany(packets: Buffer[]): void;
  /** Graceful close after pending writes. */
  end(): void;
  /**
   * True while earlier packets still wait to be taken by the peer: a progress packet is then
   * skipped (the one waiting already tells the MTA we are at work). Optional: without it every
   * progress packet is written.
   */
  backlogged?(): boolean;
}

export interface SessionCounters {
  protocolErrors: number;
  messages: number;
  callbackErrors: number;
  /** Connections closed because too many packets waited behind a pending callback. */
  queueOverflows: number;
  /** SMFIR_PROGRESS packets sent while an end-of-message reply was pending. */
  progressPackets: number;
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
  /**
   * Encoded OPTNEG replies by MTA offer, shared by the sessions of one server (the application,
   * macro lists and payload limit are fixed there). Optional: without it each session negotiates.
   */
  negotiationCache?: Map<string, CachedNegotiation>;
  /**
   * While the application's reply to end of message is pending, SMFIR_PROGRESS is sent this
   * often (ms; 0 never; default 5000). Postfix and Sendmail restart their reply timeout on it, so
   * a slow verdict is waited for instead of being replaced by the MTA's timeout action. Only
   * end of message: Sendmail reads progress nowhere else.
   */
  progressIntervalMs?: number;
  /** Timers of the progress packets (default: the system's); tests drive one by hand. */
  clock?: MilterClock;
}

export interface CachedNegotiation {
  negotiated: { version: number; actions: number; protocol: number };
  unavailable: readonly string[];
  symbolLists: readonly SymbolList[];
  packet: Buffer;
}

/** Distinct offers cached per server; an MTA sends the same one every time, a hostile peer should not grow it. */
const NEGOTIATION_CACHE_LIMIT = 16;

export type { EndReason };

type QueueItem = { end: false; cmd: number; command: MtaCommand | MacroPacket; size: number } | { end: true; reason: EndReason; size: 0 };
type Pending = Promise<void> | void;

const NR_BIT: Partial<Record<number, number>> = {
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

const CONTINUE = Verdict.continue();

export class MilterSession {
  readonly ctx: ConnectionContext;
  private readonly decoder: PacketDecoder;
  private readonly macros = new MacroStore();
  /** Commands waiting for the callback in flight; bounded in count and bytes. */
  private readonly queue: QueueItem[] = [];
  private queuedBytes = 0;
  private readonly maxQueuedPackets: number;
  private readonly maxQueuedBytes: number;
  private readonly noise: RateLimitedLog;
  private busy = false;
  /** Packets received so far: lets the transport tell progress from a peer stuck mid-packet. */
  packetsIn = 0;
  /** No more input is processed (QUIT seen, protocol error, end of stream). */
  private ended = false;
  /** An SMTP session is open: close() is owed to the application. */
  private sessionOpen = false;
  /** Between MAIL and end of message / ABORT: abort() is owed if the message is abandoned. */
  private inMessage = false;
  /**
   * Replies produced while one chunk is being fed are collected here and written together when
   * the chunk is done: one socket write per read instead of one per reply (a write is a syscall).
   */
  private readonly outbox: Buffer[] = [];
  private collecting = false;
  /** Callback and command of the asynchronous callback in flight (at most one per session). */
  private asyncCmd = 0;
  private asyncName = '';
  /** Continuations bound once, so an asynchronous callback costs no closures. */
  private readonly resume = (): void => this.next();
  private readonly resumeAfterError = (err: unknown): void => {
    this.internalError(err);
    this.next();
  };
  private readonly asyncReplied = (v: unknown): void => this.reply(this.asyncCmd, this.asyncName, v as CallbackResult);
  private readonly asyncFailed = (err: unknown): void => this.callbackFailed(this.asyncCmd, this.asyncName, err);
  private readonly eomReplied = (v: unknown): void => this.endOfMessage(this.checkVerdict('eom', v as CallbackResult));
  private readonly eomFailedBound = (err: unknown): void => this.eomFailed(err);
  private readonly debugEnabled: boolean;
  private readonly progressIntervalMs: number;
  private readonly clock: MilterClock;
  /** The progress timer while an end-of-message reply is pending, else undefined. */
  private progressTimer: unknown;
  private readonly progressTick = (): void => this.sendProgress();
  /** Called once when the session is completely over (after the close callback). */
  onFinished: (() => void) | undefined;

  constructor(
    private readonly io: SessionIO,
    private readonly opts: SessionOptions,
  ) {
    this.ctx = new ConnectionContext(opts.id, this.macros, (p) => this.send(p));
    this.decoder = new PacketDecoder((cmd, payload) => this.onPacket(cmd, payload), opts.maxPayload);
    this.debugEnabled = levelEnabled(opts.logger, 'debug');
    this.maxQueuedPackets = opts.maxQueuedPackets ?? DEFAULT_MAX_QUEUED_PACKETS;
    this.maxQueuedBytes = Math.max(opts.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES, opts.maxPayload + 5);
    this.noise = opts.noise ?? new RateLimitedLog(opts.logger);
    this.progressIntervalMs = opts.progressIntervalMs ?? DEFAULT_PROGRESS_INTERVAL_MS;
    this.clock = opts.clock ?? SYSTEM_CLOCK;
  }

  /** Bytes of a packet received in part (its first byte arrived, its last not yet). */
  get partialBytes(): number {
    return this.decoder.bufferedBytes;
  }

  /** Input held: the incomplete packet and the packets waiting behind a pending callback. */
  get bufferedBytes(): number {
    return this.decoder.bufferedBytes + this.queuedBytes;
  }

  /** True while a callback runs or commands wait: the idle timeout must not fire then. */
  get busyNow(): boolean {
    return this.busy || this.queue.length > 0;
  }

  /** A message is in flight (the shutdown deadline log tells these from idle sessions). */
  get messageInFlight(): boolean {
    return this.inMessage || this.busyNow;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** Feeds bytes read from the socket. */
  feed(chunk: Buffer): void {
    if (this.ended) return;
    this.collecting = true;
    try {
      this.decoder.push(chunk);
    } catch (err) {
      this.protocolError(err);
    } finally {
      this.collecting = false;
      this.flush();
    }
  }

  /** Writes a packet now, or after the chunk being fed when several replies may follow. */
  private send(packet: Buffer): void {
    if (this.collecting) this.outbox.push(packet);
    else this.io.write(packet);
  }

  private sendMany(packets: Buffer[]): void {
    if (this.collecting) {
      for (const p of packets) this.outbox.push(p);
    } else {
      this.io.writeMany(packets);
    }
  }

  private flush(): void {
    const n = this.outbox.length;
    if (n === 0) return;
    // Emptied before writing: a write past the write-buffer limit ends the session, whose
    // finish() flushes again, and must find nothing left to send twice.
    if (n === 1) {
      const packet = this.outbox[0]!;
      this.outbox.length = 0;
      this.io.write(packet);
    } else {
      this.io.writeMany(this.outbox.splice(0));
    }
  }

  /** The transport ended (EOF, error, timeout) or the server shuts down: finish after pending work. */
  end(reason: EndReason): void {
    if (this.ended) return;
    this.ended = true;
    this.decoder.stop();
    // The peer is gone or being closed: nothing more is written for it but a reply already owed.
    this.stopProgress();
    // At once, not queued: the application learns that the MTA is gone while a callback waits.
    void this.notify('disconnect', reason);
    this.enqueue({ end: true, reason, size: 0 });
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
    if (!this.busy && this.queue.length === 0) {
      this.wait(this.attempt(cmd, command));
      return;
    }
    const size = payload.length + 5;
    if (this.queue.length >= this.maxQueuedPackets || this.queuedBytes + size > this.maxQueuedBytes) {
      this.queueOverflow();
      return;
    }
    this.queuedBytes += size;
    this.queue.push({ end: false, cmd, command, size });
  }

  /**
   * Too much waits behind the callback in flight: no MTA pipelines this much, so the peer is
   * broken or hostile. What waits is dropped; the callback in flight still gets its answer out,
   * then the connection closes.
   */
  private queueOverflow(): void {
    this.opts.counters.queueOverflows++;
    this.noise.warn(
      'queue-overflow',
      { conn: this.opts.id, queued: this.queue.length, queuedBytes: this.queuedBytes, maxPackets: this.maxQueuedPackets, maxBytes: this.maxQueuedBytes },
      'milter peer pipelined more than allowed while a callback was pending, closing connection',
    );
    this.queue.length = 0;
    this.queuedBytes = 0;
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

  private enqueue(item: QueueItem): void {
    if (!this.busy && this.queue.length === 0) this.run(item);
    else this.queue.push(item);
  }

  private run(item: QueueItem): void {
    if (!item.end) {
      this.wait(this.attempt(item.cmd, item.command));
      return;
    }
    let pending: Pending;
    try {
      pending = this.finish(item.reason);
    } catch (err) {
      this.internalError(err);
      pending = undefined;
    }
    this.wait(pending);
  }

  private attempt(cmd: number, command: MtaCommand | MacroPacket): Pending {
    try {
      return this.dispatch(cmd, command);
    } catch (err) {
      this.internalError(err);
      return undefined;
    }
  }

  /**
   * Strict ordering: while a callback's promise is pending, later commands wait in the queue.
   * Only next() takes from the queue, in a loop: a burst of queued packets costs no stack depth.
   */
  private wait(pending: Pending): void {
    if (pending) {
      this.busy = true;
      pending.then(this.resume, this.resumeAfterError);
    }
  }

  private next(): void {
    this.busy = false;
    while (!this.busy && this.queue.length > 0) {
      const item = this.queue.shift()!;
      this.queuedBytes -= item.size;
      this.run(item);
    }
  }

  private internalError(err: unknown): void {
    // Negotiation refusals surface while dispatching, not while decoding.
    if (err instanceof MilterProtocolError) {
      this.protocolError(err);
      return;
    }
    this.opts.logger.error({ conn: this.opts.id, err }, 'milter session internal error');
    if (!this.ended) this.end('error');
  }

  private dispatch(cmd: number, c: MtaCommand | MacroPacket): Promise<void> | void {
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
        const before = this.abandon();
        const { type: _t, ...info } = c;
        return chain(before, () => {
          this.ctx.resetMessage();
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
      case 'mail': {
        // MAIL without ABORT after an unfinished message: that message is abandoned.
        const before = this.abandon();
        return chain(before, () => {
          this.inMessage = true;
          this.sessionOpen = true;
          return this.call(cmd, 'envfrom', app.envfrom && (() => app.envfrom!(ctx, c.args[0]!, c.args.slice(1))));
        });
      }
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
      case 'eob': {
        const pending = this.eom(c.data);
        // Answered at once (the usual case): no timer. Else the MTA hears from us until the reply.
        if (pending) this.startProgress();
        return pending;
      }
      case 'abort':
        return this.abandon();
      case 'quit':
        return this.finish('quit');
      case 'quitNc': {
        const p = this.closeSession();
        return chain(p, () => {
          ctx.connection = undefined;
          ctx.helo = undefined;
        });
      }
    }
  }

  private optneg(c: { version: number; actions: number; protocol: number }): Promise<void> | void {
    const n = this.negotiation(c);
    if (this.debugEnabled) {
      this.opts.logger.debug({ conn: this.opts.id, ...describeNegotiation(c, n.negotiated, n.symbolLists) }, 'milter options negotiated');
    }
    if (n.unavailable.length > 0) {
      this.opts.logger.warn({ conn: this.opts.id, unavailable: n.unavailable }, 'MTA does not offer everything the application declared');
    }
    // A second OPTNEG starts the conversation over: finish what the first one left open.
    const before = this.ctx.negotiated ? this.closeSession() : undefined;
    return chain(before, () => {
      this.ctx.negotiated = { ...n.negotiated };
      this.send(n.packet);
    });
  }

  /** The reply to an offer; the same offer (every connection of one MTA) is negotiated and encoded once. */
  private negotiation(c: { version: number; actions: number; protocol: number }): CachedNegotiation {
    const cache = this.opts.negotiationCache;
    const key = `${c.version}:${c.actions}:${c.protocol}`;
    const hit = cache?.get(key);
    if (hit) return hit;
    const n = negotiate(c, this.opts.app, this.opts.symbolLists, this.opts.maxPayload);
    const entry: CachedNegotiation = {
      negotiated: { version: n.version, actions: n.actions, protocol: n.protocol },
      unavailable: n.unavailable,
      symbolLists: n.symbolLists,
      packet: encodeResponse({ type: 'optneg', version: n.version, actions: n.actions, protocol: n.protocol, symbolLists: n.symbolLists }),
    };
    if (cache && cache.size < NEGOTIATION_CACHE_LIMIT) cache.set(key, entry);
    return entry;
  }

  /** Runs a replying callback (if any) and sends the one final reply the command is owed. */
  private call(cmd: number, name: ReplyingCallback, invoke: (() => unknown) | undefined): Promise<void> | void {
    if (!invoke) return this.reply(cmd, name, CONTINUE);
    let r: unknown;
    try {
      r = invoke();
    } catch (err) {
      return this.callbackFailed(cmd, name, err);
    }
    if (isThenable(r)) {
      // Only one callback runs at a time, so its command can wait in fields instead of a closure.
      this.asyncCmd = cmd;
      this.asyncName = name;
      return Promise.resolve(r).then(this.asyncReplied, this.asyncFailed);
    }
    return this.reply(cmd, name, r as CallbackResult);
  }

  private callbackFailed(cmd: number, name: string, err: unknown): void {
    this.opts.counters.callbackErrors++;
    this.opts.logger.error({ conn: this.opts.id, callback: name, err }, 'milter callback failed, answering tempfail');
    this.reply(cmd, name, Verdict.tempfail());
  }

  private reply(cmd: number, name: string, result: CallbackResult): void {
    let v = this.checkVerdict(name, result);
    const nr = NR_BIT[cmd];
    if (nr !== undefined && this.ctx.negotiated && this.ctx.negotiated.protocol & nr) {
      if (!v.isContinue) {
        this.opts.logger.warn({ conn: this.opts.id, callback: name, verdict: v.kind }, 'callback negotiated as no-reply returned a verdict; not sent');
      }
      return;
    }
    if (v.kind === 'discard' && (cmd === Cmd.CONNECT || cmd === Cmd.HELO)) {
      this.opts.logger.warn({ conn: this.opts.id, callback: name }, 'discard is not valid at connect/helo; continuing');
      v = CONTINUE;
    } else if (v.kind === 'skip' && (cmd !== Cmd.BODY || !(this.ctx.negotiated!.protocol & ProtoFlag.SKIP))) {
      v = CONTINUE;
    }
    this.send(v.packet);
  }

  private checkVerdict(name: string, result: CallbackResult): Verdict {
    if (result === undefined) return CONTINUE;
    if (result instanceof Verdict) return result;
    this.opts.counters.callbackErrors++;
    this.opts.logger.error({ conn: this.opts.id, callback: name }, 'callback returned something that is not a Verdict; answering tempfail');
    return Verdict.tempfail();
  }

  private eom(data: Buffer): Promise<void> | void {
    const app = this.opts.app;
    const ctx = this.ctx;
    const runEom = (): Promise<void> | void => {
      ctx.inEom = true;
      if (!app.eom) return this.endOfMessage(CONTINUE);
      let r: unknown;
      try {
        r = app.eom(ctx);
      } catch (err) {
        return this.eomFailed(err);
      }
      if (isThenable(r)) return Promise.resolve(r).then(this.eomReplied, this.eomFailedBound);
      return this.endOfMessage(this.checkVerdict('eom', r as CallbackResult));
    };
    // libmilter hands data carried by EOB to the body callback first (Postfix never sends any).
    if (data.length > 0 && app.body) {
      let bodyVerdict: Verdict = CONTINUE;
      const afterBody = (v: unknown): Promise<void> | void => {
        bodyVerdict = this.checkVerdict('body', v as CallbackResult);
        if (bodyVerdict.isContinue || bodyVerdict.kind === 'skip') return runEom();
        return this.endOfMessage(bodyVerdict);
      };
      let r: unknown;
      try {
        r = app.body(ctx, data);
      } catch (err) {
        return this.eomFailed(err);
      }
      if (isThenable(r)) return Promise.resolve(r).then(afterBody, (err: unknown) => this.eomFailed(err));
      return afterBody(r);
    }
    return runEom();
  }

  private eomFailed(err: unknown): void {
    this.opts.counters.callbackErrors++;
    this.opts.logger.error({ conn: this.opts.id, callback: 'eom', err }, 'milter callback failed, answering tempfail');
    this.endOfMessage(Verdict.tempfail());
  }

  private endOfMessage(v: Verdict): void {
    this.stopProgress();
    const ctx = this.ctx;
    if (v.kind === 'skip') v = CONTINUE;
    // Edits only matter for a message that goes on; body packets go first and back to back.
    if (v.kind === 'continue' || v.kind === 'accept') {
      const edits = ctx.bodyPackets.length + ctx.editPackets.length;
      if (edits > 0) this.sendMany([...ctx.bodyPackets, ...ctx.editPackets, v.packet]);
      else this.send(v.packet);
    } else {
      this.send(v.packet);
    }
    this.opts.counters.messages++;
    this.inMessage = false;
    ctx.resetMessage();
  }

  private startProgress(): void {
    if (this.progressIntervalMs > 0 && !this.ended) this.progressTimer = this.clock.setTimeout(this.progressTick, this.progressIntervalMs);
  }

  private stopProgress(): void {
    if (this.progressTimer === undefined) return;
    this.clock.clearTimeout(this.progressTimer);
    this.progressTimer = undefined;
  }

  /**
   * One SMFIR_PROGRESS, then the next one armed. Skipped while earlier packets still wait to be
   * read: the MTA restarts its timer on whichever arrives, and a peer that does not read must
   * not make us queue more.
   */
  private sendProgress(): void {
    this.progressTimer = undefined;
    if (this.ended) return;
    if (!this.io.backlogged?.()) {
      this.opts.counters.progressPackets++;
      this.send(SIMPLE_PACKETS.progress);
    }
    this.startProgress();
  }

  /** ABORT semantics: abandon the message in progress, if any (never answered). */
  private abandon(): Promise<void> | void {
    const ctx = this.ctx;
    if (!this.inMessage) {
      ctx.resetMessage();
      return;
    }
    this.inMessage = false;
    const done = (): void => ctx.resetMessage();
    return chain(this.notify('abort'), done);
  }

  /** End of the SMTP session: abort a message in flight, then close(). */
  private closeSession(): Promise<void> | void {
    return chain(this.abandon(), () => {
      if (!this.sessionOpen) return;
      this.sessionOpen = false;
      return this.notify('close');
    });
  }

  private finish(reason: EndReason): Promise<void> | void {
    this.ended = true;
    this.decoder.stop();
    this.stopProgress();
    // A negotiated connection that never saw CONNECT still owes close() (NOCONNECT, or EOF early).
    if (this.ctx.negotiated) this.sessionOpen = this.sessionOpen || reason !== 'protocol-error' || this.inMessage;
    return chain(this.closeSession(), () => {
      if (this.debugEnabled) this.opts.logger.debug({ conn: this.opts.id, reason }, 'milter connection finished');
      // Replies collected from the chunk being fed (QUIT may follow them in it) go out first.
      this.flush();
      this.io.end();
      this.onFinished?.();
    });
  }

  /** Calls abort/close/disconnect; their results are ignored and their errors only logged. */
  private notify(name: 'abort' | 'close' | 'disconnect', reason?: EndReason): Promise<void> | void {
    const fn = this.opts.app[name];
    if (!fn) return;
    const onErr = (err: unknown): void => {
      this.opts.counters.callbackErrors++;
      this.opts.logger.error({ conn: this.opts.id, callback: name, err }, 'milter callback failed');
    };
    try {
      // Only disconnect takes the reason; abort and close ignore a second argument.
      const r: unknown = (fn as (ctx: ConnectionContext, reason?: EndReason) => unknown).call(this.opts.app, this.ctx, reason);
      if (isThenable(r)) return Promise.resolve(r).then(() => undefined, onErr);
    } catch (err) {
      onErr(err);
    }
  }
}

/** Whether a level is on, for loggers that can tell (pino); others are assumed to log everything. */
export function levelEnabled(logger: MilterLogger, level: 'debug'): boolean {
  if (logger === SILENT_LOGGER) return false;
  const probe = (logger as { isLevelEnabled?: unknown }).isLevelEnabled;
  if (typeof probe === 'function') return (probe as (l: string) => boolean).call(logger, level);
  return true;
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

/** Runs `then` after `first`, synchronously when `first` did not return a promise. */
function chain(first: Promise<void> | void, then: () => Promise<void> | void): Promise<void> | void {
  return first ? first.then(then) : then();
}

