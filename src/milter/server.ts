/**
 * The listening milter server: accepts MTA connections on a libmilter socket spec and runs one
 * MilterSession per connection, with its ConnectionGuards (idle, packet deadline, write
 * backpressure, input budget), checked by one sweep timer for all connections.
 *
 * State shared by the connections of a server: the counters (one store), the input budget, the
 * rate-limited warning log, the negotiation cache, and the drain on shutdown.
 */
import { chmod, lstat } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { type MilterApplication, type MilterLogger, SILENT_LOGGER } from './application.js';
import { DEFAULT_MAX_PAYLOAD, MILTER_SERVER_DEFAULTS } from './constants.js';
import { SocketBindError } from './errors.js';
import { buildSymbolLists } from './negotiation.js';
import type { SymbolList } from './responses.js';
import { type MilterClock, SYSTEM_CLOCK } from './clock.js';
import { type RateLimit, RateLimitedLog } from './rate-limited-log.js';
import { ConnectionGuards, InputBudget } from './connection-guards.js';
import { newServerCounters } from './counters.js';
import { NegotiationCache } from './negotiation-cache.js';
import { type EndReason, levelEnabled, MilterSession } from './session.js';
import { parseSocketSpec, type SocketSpec } from './socket-spec.js';
import { prepareUnixSocketPath, removeUnixSocket } from './unix-socket.js';

export interface MilterServerOptions {
  /** libmilter socket spec (`inet:8890@127.0.0.1`, `unix:/run/x.sock`, …) or a parsed one. */
  socket: string | SocketSpec;
  logger?: MilterLogger;
  /** Largest inbound payload accepted (default 1 MiB; Postfix sends each header as one packet). */
  maxPayload?: number;
  /** Close a connection silent for this long (default 310 s, just above Postfix's 300 s content timeout). */
  idleTimeoutMs?: number;
  /**
   * A packet must be complete this long after its first byte arrived (default 30 s). Silence
   * between packets is the idle timeout's business; this one stops a peer that trickles a
   * packet byte by byte. The same bound applies to a peer that does not read our replies.
   */
  packetTimeoutMs?: number;
  /**
   * Input received and not yet processed, all connections together (default 64 MiB): incomplete
   * packets and packets waiting behind a pending callback. Past it, the largest holders are closed.
   */
  maxBufferedBytes?: number;
  /** Packets that may wait per connection while a callback is pending (default 4096). */
  maxQueuedPackets?: number;
  /**
   * Replies waiting for a peer that does not read: past `writeHighWaterMark` (default 64 KiB)
   * the connection is not read until they drain; past `maxWriteBuffer` (default 1 MiB) it is closed.
   */
  writeHighWaterMark?: number;
  maxWriteBuffer?: number;
  /** Per-event warnings (protocol errors, refusals, timeouts): lines per interval and kind. */
  warningRate?: RateLimit;
  /**
   * SMFIR_PROGRESS every this many ms while the reply to end of message is pending (default
   * 5000; 0 never): the MTA restarts its reply timeout on each, so a slow verdict is not cut off
   * by Sendmail's default R:10s. Skipped while earlier packets to that peer are still unread.
   */
  progressIntervalMs?: number;
  /**
   * Time and timers of the warning rate limit and of progress packets (default: the system's).
   * Tests pass a clock they drive by hand; the idle and packet sweep keeps the real one.
   */
  clock?: MilterClock;
  /** Concurrent connections; beyond this new ones are closed at once (default 2048). */
  maxConnections?: number;
  /** File mode of a UNIX socket (default 0o666). */
  socketMode?: number;
  /** listen() backlog (default 511). */
  backlog?: number;
}

export interface MilterServerStats {
  connectionsOpen: number;
  connectionsTotal: number;
  /** Connections closed at once because maxConnections was reached (or during shutdown). */
  connectionsRefused: number;
  /**
   * accept() failures reported for want of a file descriptor (EMFILE/ENFILE). libuv closes the
   * pending connections itself in that case and reports only when it cannot, so this undercounts.
   */
  acceptFdExhausted: number;
  /** Other accept() failures. */
  acceptErrors: number;
  protocolErrors: number;
  idleTimeouts: number;
  /** Connections closed because a packet was not complete within packetTimeoutMs. */
  packetTimeouts: number;
  /** Connections closed because their replies were not read (write buffer over the limit, or stalled). */
  writeOverflows: number;
  /** Connections closed because too many packets waited behind a pending callback. */
  queueOverflows: number;
  /** Connections closed to bring the input held for all connections under maxBufferedBytes. */
  bufferedBudgetCloses: number;
  /** Bytes of milter input held now (incomplete packets and packets queued behind a callback), all connections together. */
  bufferedBytes: number;
  /** Connections not read now because their replies wait to be read. */
  connectionsPaused: number;
  /** Connections still open at the shutdown deadline, closed by us. */
  shutdownCloses: number;
  /** Warning lines not written because of the rate limit. */
  warningsSuppressed: number;
  /** SMFIR_PROGRESS packets sent while end-of-message replies were pending. */
  progressPackets: number;
  /** Messages that reached end of message. */
  messages: number;
  callbackErrors: number;
}

export type BoundAddress = { kind: 'unix'; path: string } | { kind: 'inet'; family: 4 | 6; address: string; port: number };

export interface CloseOptions {
  /** How long open connections may go on before they are cut (default 10 s). */
  deadlineMs?: number;
}

interface Connection {
  readonly id: string;
  readonly sock: Socket;
  readonly session: MilterSession;
  readonly guards: ConnectionGuards;
}

export class MilterServer {
  private readonly spec: SocketSpec;
  private readonly logger: MilterLogger;
  private readonly noise: RateLimitedLog;
  private readonly clock: MilterClock;
  private readonly symbolLists: readonly SymbolList[];
  private readonly maxPayload: number;
  private readonly idleTimeoutMs: number;
  private readonly packetTimeoutMs: number;
  private readonly writeHighWaterMark: number;
  private readonly maxWriteBuffer: number;
  private readonly maxConnections: number;
  private server: Server | undefined;
  private readonly connections = new Map<Socket, Connection>();
  /** Connections holding input or paused: the only ones the packet and write checks look at. */
  private readonly watched = new Set<Connection>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly sweepEveryMs: number;
  private readonly inputBudget: InputBudget;
  private readonly counters = newServerCounters();
  private nextId = 1;
  private closing: Promise<void> | undefined;
  /** Ends the drain before its deadline (closeNow). */
  private endDrain: (() => void) | undefined;
  /** closeNow() was called: the drain ends at once. */
  private cutNow = false;
  private socketIno: number | undefined;
  private readonly allClosedWaiters: (() => void)[] = [];
  private readonly negotiations: NegotiationCache;

  constructor(
    private readonly app: MilterApplication,
    private readonly opts: MilterServerOptions,
  ) {
    this.spec = typeof opts.socket === 'string' ? parseSocketSpec(opts.socket) : opts.socket;
    this.logger = opts.logger ?? SILENT_LOGGER;
    this.clock = opts.clock ?? SYSTEM_CLOCK;
    this.noise = new RateLimitedLog(this.logger, opts.warningRate, this.clock);
    // Validate the declared macros now, so a bad name fails at startup, not per connection.
    this.symbolLists = buildSymbolLists(app.macros);
    this.maxPayload = opts.maxPayload ?? DEFAULT_MAX_PAYLOAD;
    const d = MILTER_SERVER_DEFAULTS;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? d.idleTimeoutMs;
    this.packetTimeoutMs = opts.packetTimeoutMs ?? d.packetTimeoutMs;
    this.inputBudget = new InputBudget(opts.maxBufferedBytes ?? d.maxBufferedBytes);
    this.negotiations = new NegotiationCache(app, this.symbolLists, this.maxPayload);
    this.maxWriteBuffer = opts.maxWriteBuffer ?? d.maxWriteBuffer;
    this.writeHighWaterMark = Math.min(opts.writeHighWaterMark ?? d.writeHighWaterMark, this.maxWriteBuffer);
    this.maxConnections = opts.maxConnections ?? d.maxConnections;
    // The idle clock of a connection starts at the first sweep after its last activity, up to one
    // period late, and its end is seen up to one period late: an eighth of the idle timeout keeps
    // a close between 1x and 1.25x of it. A quarter of the packet timeout is its own check's
    // granularity. 10 ms at least (tiny test timeouts), 1 s at most: with the defaults one pass a
    // second over all connections, a flag and a getter read each, nothing allocated.
    const every = Math.min(this.idleTimeoutMs / 8, this.packetTimeoutMs / 4);
    this.sweepEveryMs = Math.max(10, Math.min(1000, Math.floor(every)));
  }

  async listen(): Promise<BoundAddress> {
    if (this.server) throw new SocketBindError('ALREADY_LISTENING', 'server is already listening');
    const server = createServer({ noDelay: true }, (s) => this.onConnection(s));
    server.maxConnections = Number.MAX_SAFE_INTEGER; // enforced ourselves, with a log line
    const backlog = this.opts.backlog ?? 511;
    if (this.spec.kind === 'unix') {
      await prepareUnixSocketPath(this.spec.path);
      await listenOn(server, { path: this.spec.path, backlog });
      await chmod(this.spec.path, this.opts.socketMode ?? 0o666);
      this.socketIno = (await lstat(this.spec.path)).ino;
    } else {
      const host = this.spec.host ?? (this.spec.family === 6 ? '::' : '0.0.0.0');
      await listenOn(server, { port: this.spec.port, host, backlog, ipv6Only: this.spec.family === 6 && this.spec.host === undefined });
    }
    this.server = server;
    // After listen, an 'error' is a failed accept (EMFILE, ENFILE, ENOMEM...): Node would throw
    // it as an uncaught exception. The listener stays open; the failure is named and counted.
    server.on('error', (err: NodeJS.ErrnoException) => this.onAcceptError(err));
    const bound = this.address();
    this.logger.info({ address: bound }, 'milter server listening');
    return bound!;
  }

  /** Where the server listens (the real port when 0 was asked for), or undefined before listen(). */
  address(): BoundAddress | undefined {
    if (!this.server) return undefined;
    if (this.spec.kind === 'unix') return { kind: 'unix', path: this.spec.path };
    const a = this.server.address();
    if (a === null || typeof a === 'string') return undefined;
    return { kind: 'inet', family: a.family === 'IPv6' ? 6 : 4, address: a.address, port: a.port };
  }

  stats(): MilterServerStats {
    return {
      ...this.counters,
      connectionsOpen: this.connections.size,
      bufferedBytes: this.inputBudget.held,
      connectionsPaused: this.pausedConnections(),
      warningsSuppressed: this.noise.suppressedTotal,
    };
  }

  private onAcceptError(err: NodeJS.ErrnoException): void {
    if (err.code === 'EMFILE' || err.code === 'ENFILE') {
      this.counters.acceptFdExhausted++;
      this.noise.warn('accept-fd-exhausted', { code: err.code, open: this.connections.size }, `too many open files (${err.code}): a milter connection could not be accepted`);
      return;
    }
    this.counters.acceptErrors++;
    this.noise.warn('accept-error', { code: err.code, err: err.message }, 'a milter connection could not be accepted');
  }

  private onConnection(sock: Socket): void {
    if (this.closing || this.connections.size >= this.maxConnections) {
      this.counters.connectionsRefused++;
      this.noise.warn(
        'connection-refused',
        { open: this.connections.size, max: this.maxConnections, shuttingDown: this.closing !== undefined },
        'milter connection refused: too many connections or shutting down',
      );
      sock.destroy();
      return;
    }
    this.counters.connectionsTotal++;
    const id = `m${this.nextId++}`;
    const session = new MilterSession(
      {
        write: (p) => {
          if (sock.destroyed) return;
          // Our reply starts the peer's turn: its idle time counts from here (Node's socket timeout did the same).
          conn.guards.stir();
          sock.write(p);
          if (sock.writableLength > this.writeHighWaterMark) this.onWriteBacklog(conn);
        },
        writeMany: (ps) => {
          if (sock.destroyed) return;
          conn.guards.stir();
          sock.cork();
          for (const p of ps) sock.write(p);
          sock.uncork();
          if (sock.writableLength > this.writeHighWaterMark) this.onWriteBacklog(conn);
        },
        // Flush what is pending, then close without waiting for the peer's FIN.
        end: () => {
          if (!sock.destroyed) sock.end(() => sock.destroy());
        },
        backlogged: () => sock.destroyed || sock.writableLength > 0 || conn.guards.paused,
      },
      {
        id,
        app: this.app,
        logger: this.logger,
        maxPayload: this.maxPayload,
        maxQueuedPackets: this.opts.maxQueuedPackets,
        noise: this.noise,
        symbolLists: this.symbolLists,
        counters: this.counters,
        negotiations: this.negotiations,
        progressIntervalMs: this.opts.progressIntervalMs,
        clock: this.clock,
      },
    );
    // The guards keep the real clock even when tests pass one for progress and warnings: the
    // idle and packet sweep runs on a real interval timer.
    const guards = new ConnectionGuards(session, this.inputBudget, { idleTimeoutMs: this.idleTimeoutMs, packetTimeoutMs: this.packetTimeoutMs }, SYSTEM_CLOCK);
    const conn: Connection = { id, sock, session, guards };
    this.connections.set(sock, conn);
    // One timer for the server (not one per socket, re-armed on every read and write), running while connections are open.
    this.sweepTimer ??= setInterval(() => this.sweep(), this.sweepEveryMs).unref();
    if (levelEnabled(this.logger, 'debug')) this.logger.debug({ conn: id }, 'milter connection opened');
    sock.on('data', (chunk: Buffer) => {
      guards.stir();
      session.feed(chunk);
      // Usually whole packets arrive and nothing is left over: one comparison.
      if (session.bufferedBytes !== 0 || guards.held !== 0) this.afterRead(conn);
      // A session that will read no more (QUIT, protocol error, a bound) gets no more bytes from the kernel.
      if (session.isEnded && !sock.isPaused()) sock.pause();
    });
    sock.on('end', () => session.end('eof'));
    sock.on('error', (err) => {
      this.logger.debug({ conn: id, err: err.message }, 'milter socket error');
      session.end('error');
    });
    sock.on('close', () => {
      session.end('eof');
      this.forget(conn);
      if (this.connections.size === 0) for (const w of this.allClosedWaiters.splice(0)) w();
    });
  }

  /** Closes a connection now: the session finishes (abort/close callbacks), unsent replies are dropped. */
  private cut(conn: Connection, reason: EndReason = 'limit'): void {
    conn.session.end(reason);
    conn.sock.destroy();
    this.forget(conn);
  }

  private forget(conn: Connection): void {
    if (!this.connections.delete(conn.sock)) return;
    conn.guards.release();
    this.watched.delete(conn);
  }

  /** After a read that left input held: the packet deadline, the watch list and the shared budget. */
  private afterRead(conn: Connection): void {
    conn.guards.afterRead();
    if (conn.guards.watched) this.watched.add(conn);
    if (this.inputBudget.exceeded) this.enforceBufferedBudget();
  }

  /** The largest holders go first: they are the cheapest way back under the budget. */
  private enforceBufferedBudget(): void {
    for (const c of this.watched) c.guards.recount();
    const holders = [...this.watched].filter((c) => c.guards.held > 0).sort((a, b) => b.guards.held - a.guards.held);
    const budget = this.inputBudget;
    for (const c of holders) {
      if (!budget.exceeded) break;
      this.counters.bufferedBudgetCloses++;
      this.noise.warn(
        'buffered-budget',
        { conn: c.id, heldBytes: c.guards.held, totalHeldBytes: budget.held, maxBufferedBytes: budget.maxBytes },
        'input held for all milter connections exceeds the budget, closing the largest holder',
      );
      this.cut(c);
    }
  }

  private onWriteBacklog(conn: Connection): void {
    const { sock, guards } = conn;
    if (sock.writableLength > this.maxWriteBuffer) {
      this.counters.writeOverflows++;
      this.noise.warn(
        'write-overflow',
        { conn: conn.id, unsentBytes: sock.writableLength, maxWriteBuffer: this.maxWriteBuffer },
        'milter peer does not read its replies (write buffer over the limit), closing connection',
      );
      this.cut(conn);
      return;
    }
    // Stop reading: a peer that does not take its replies gets no more of our work.
    if (!guards.pauseReading()) return;
    sock.pause();
    this.watched.add(conn);
    sock.once('drain', () => {
      if (guards.resumeReading() && !conn.session.isEnded) sock.resume();
    });
  }

  /** A paused connection stays watched until the sweep finds it reading again: counting there is enough. */
  private pausedConnections(): number {
    let paused = 0;
    for (const c of this.watched) if (c.guards.paused) paused++;
    return paused;
  }

  /** The idle timeout for every connection, the packet timeout for those mid-packet or paused. */
  private sweep(): void {
    const now = SYSTEM_CLOCK.now();
    for (const c of this.connections.values()) {
      if (c.guards.idleExpired(now)) {
        this.counters.idleTimeouts++;
        this.noise.warn('idle-timeout', { conn: c.id, idleMs: this.idleTimeoutMs }, 'milter connection idle too long, closing');
        this.cut(c, 'timeout');
      }
    }
    for (const c of this.watched) {
      switch (c.guards.check(now)) {
        case 'write-stalled':
          this.counters.writeOverflows++;
          this.noise.warn(
            'write-stalled',
            { conn: c.id, unsentBytes: c.sock.writableLength, stalledMs: Math.round(c.guards.stalledMs(now)) },
            'milter peer has not read its replies within the packet timeout, closing connection',
          );
          this.cut(c);
          break;
        case 'packet-timeout':
          this.counters.packetTimeouts++;
          this.noise.warn(
            'packet-timeout',
            { conn: c.id, partialBytes: c.guards.partialBytes, packetTimeoutMs: this.packetTimeoutMs },
            'milter packet not complete within the packet timeout, closing connection',
          );
          this.cut(c);
          break;
        case 'settled':
          this.watched.delete(c);
          break;
        case 'watching':
          break;
      }
    }
    if (this.connections.size === 0) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
    }
  }

  /**
   * Graceful shutdown (drain): stop accepting, let every open connection go on, message after
   * message, until the MTA closes it or the deadline passes; then cut the rest. Postfix keeps
   * one milter connection per SMTP session and applies milter_default_action to the rest of a
   * session whose connection we close, so closing early would refuse or pass unjudged mail.
   */
  close(opts: CloseOptions = {}): Promise<void> {
    this.closing ??= this.doClose(opts.deadlineMs ?? 10_000);
    return this.closing;
  }

  /** During a drain: treat the deadline as reached now (an operator's second signal). */
  closeNow(): void {
    // Also before the drain has begun to wait (the socket file is still being removed).
    this.cutNow = true;
    this.endDrain?.();
  }

  private async doClose(deadlineMs: number): Promise<void> {
    const server = this.server;
    const stopped = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    // The listener is closed: the socket file only misleads from now on (connects would hang or fail late).
    if (this.spec.kind === 'unix' && server) await removeUnixSocket(this.spec.path, this.socketIno);
    if (this.connections.size > 0) {
      this.logger.info({ open: this.connections.size, deadlineMs }, 'draining milter connections: each is served until the MTA closes it');
      let timer: NodeJS.Timeout | undefined;
      if (!this.cutNow) await Promise.race([
        new Promise<void>((resolve) => this.allClosedWaiters.push(resolve)),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, deadlineMs);
          this.endDrain = resolve;
        }),
      ]);
      clearTimeout(timer);
      this.endDrain = undefined;
      if (this.connections.size > 0) {
        let inMessage = 0;
        for (const c of this.connections.values()) if (c.session.messageInFlight) inMessage++;
        const open = this.connections.size;
        this.counters.shutdownCloses += open;
        this.logger.warn({ closed: open, inMessage, idle: open - inMessage, deadlineMs }, `shutdown deadline reached, closing ${open} remaining milter connections`);
        for (const c of [...this.connections.values()]) this.cut(c, 'shutdown');
      }
    }
    await stopped;
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    this.noise.flush();
    this.logger.info(this.stats(), 'milter server stopped');
  }
}

function listenOn(server: Server, options: Parameters<Server['listen']>[0]): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(options, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
