/**
 * The listening milter server: accepts MTA connections on a libmilter socket spec and runs one
 * MilterSession per connection. Connections are independent; the only shared state is counters.
 */
import { chmod, lstat } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { type MilterApplication, type MilterLogger, SILENT_LOGGER } from './application.js';
import { DEFAULT_MAX_PAYLOAD } from './constants.js';
import { SocketBindError } from './errors.js';
import { buildSymbolLists } from './negotiation.js';
import type { SymbolList } from './responses.js';
import { type CachedNegotiation, levelEnabled, MilterSession, type SessionCounters } from './session.js';
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
  protocolErrors: number;
  idleTimeouts: number;
  /** Messages that reached end of message. */
  messages: number;
  callbackErrors: number;
}

export type BoundAddress = { kind: 'unix'; path: string } | { kind: 'inet'; family: 4 | 6; address: string; port: number };

export interface CloseOptions {
  /** How long messages in flight may take to finish before connections are cut (default 10 s). */
  deadlineMs?: number;
}

export class MilterServer {
  private readonly spec: SocketSpec;
  private readonly logger: MilterLogger;
  private readonly symbolLists: readonly SymbolList[];
  private readonly maxPayload: number;
  private readonly idleTimeoutMs: number;
  private readonly maxConnections: number;
  private server: Server | undefined;
  private readonly sockets = new Map<Socket, MilterSession>();
  private readonly counters: SessionCounters = { protocolErrors: 0, messages: 0, callbackErrors: 0 };
  private total = 0;
  private refused = 0;
  private timeouts = 0;
  private nextId = 1;
  private closing: Promise<void> | undefined;
  private socketIno: number | undefined;
  private readonly allClosedWaiters: (() => void)[] = [];
  private readonly negotiationCache = new Map<string, CachedNegotiation>();

  constructor(
    private readonly app: MilterApplication,
    private readonly opts: MilterServerOptions,
  ) {
    this.spec = typeof opts.socket === 'string' ? parseSocketSpec(opts.socket) : opts.socket;
    this.logger = opts.logger ?? SILENT_LOGGER;
    // Validate the declared macros now, so a bad name fails at startup, not per connection.
    this.symbolLists = buildSymbolLists(app.macros);
    this.maxPayload = opts.maxPayload ?? DEFAULT_MAX_PAYLOAD;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 310_000;
    this.maxConnections = opts.maxConnections ?? 2048;
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
      connectionsOpen: this.sockets.size,
      connectionsTotal: this.total,
      connectionsRefused: this.refused,
      protocolErrors: this.counters.protocolErrors,
      idleTimeouts: this.timeouts,
      messages: this.counters.messages,
      callbackErrors: this.counters.callbackErrors,
    };
  }

  private onConnection(sock: Socket): void {
    if (this.closing || this.sockets.size >= this.maxConnections) {
      this.refused++;
      this.logger.warn(
        { open: this.sockets.size, max: this.maxConnections, shuttingDown: this.closing !== undefined },
        'milter connection refused: too many connections or shutting down',
      );
      sock.destroy();
      return;
    }
    this.total++;
    const id = `m${this.nextId++}`;
    const session = new MilterSession(
      {
        write: (p) => {
          if (!sock.destroyed) sock.write(p);
        },
        writeMany: (ps) => {
          if (sock.destroyed) return;
          sock.cork();
          for (const p of ps) sock.write(p);
          sock.uncork();
        },
        // Flush what is pending, then close without waiting for the peer's FIN.
        end: () => {
          if (!sock.destroyed) sock.end(() => sock.destroy());
        },
      },
      {
        id,
        app: this.app,
        logger: this.logger,
        maxPayload: this.maxPayload,
        symbolLists: this.symbolLists,
        counters: this.counters,
        negotiationCache: this.negotiationCache,
      },
    );
    this.sockets.set(sock, session);
    if (levelEnabled(this.logger, 'debug')) this.logger.debug({ conn: id }, 'milter connection opened');
    sock.on('data', (chunk: Buffer) => session.feed(chunk));
    sock.on('end', () => session.end('eof'));
    sock.on('error', (err) => {
      this.logger.debug({ conn: id, err: err.message }, 'milter socket error');
      session.end('error');
    });
    sock.on('close', () => {
      session.end('eof');
      this.sockets.delete(sock);
      if (this.sockets.size === 0) for (const w of this.allClosedWaiters.splice(0)) w();
    });
    sock.setTimeout(this.idleTimeoutMs, () => {
      // The application is still working: the peer is waiting for us, not idle.
      if (session.busyNow) {
        sock.setTimeout(this.idleTimeoutMs);
        return;
      }
      this.timeouts++;
      this.logger.warn({ conn: id, idleMs: this.idleTimeoutMs }, 'milter connection idle too long, closing');
      session.end('timeout');
      sock.destroy();
    });
  }

  /**
   * Graceful shutdown: stop accepting, let messages in flight finish (connections between
   * messages close at once), cut the rest at the deadline, remove a UNIX socket file.
   */
  close(opts: CloseOptions = {}): Promise<void> {
    this.closing ??= this.doClose(opts.deadlineMs ?? 10_000);
    return this.closing;
  }

  private async doClose(deadlineMs: number): Promise<void> {
    const server = this.server;
    const stopped = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    for (const session of this.sockets.values()) session.drain();
    if (this.sockets.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.allClosedWaiters.push(resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, deadlineMs))),
      ]);
      clearTimeout(timer);
      if (this.sockets.size > 0) {
        this.logger.warn({ open: this.sockets.size }, 'shutdown deadline reached, closing remaining milter connections');
        for (const [sock, session] of this.sockets) {
          session.end('shutdown');
          sock.destroy();
        }
      }
    }
    await stopped;
    if (this.spec.kind === 'unix' && server) await removeUnixSocket(this.spec.path, this.socketIno);
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
