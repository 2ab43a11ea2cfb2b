/**
 * A server for Postfix's (and Sendmail's) socketmap protocol: the client sends the netstring
 * `<map name> <key>`, the server answers `OK <value>`, `NOTFOUND `, `TEMP <reason>`,
 * `TIMEOUT <reason>` or `PERM <reason>` as a netstring, and the connection carries the next
 * request. Postfix keeps it open between lookups (`ipc_idle`, 5 s by default).
 *
 * Every resource a client can take is bounded: requests over `maxRequestBytes` are answered
 * PERM and the connection closed before the payload is buffered; a connection must complete
 * a request within `timeoutMs` of connecting or of its previous answer, or it is closed (an
 * idle client and one that trickles bytes alike); replies a client leaves unread stop the
 * reading at `maxWriteBytes` and close it at twice that; at most `maxConnections` are open,
 * more are closed at once. Per connection the server holds at most one request's bytes plus
 * one socket read.
 */
import net from 'node:net';
import { errorMessage, type Logger } from '../log/index.js';
import { netstringOverhead, readNetstring, writeNetstring } from './netstring.js';

export type SocketmapReply =
  | { status: 'OK'; value: string }
  | { status: 'NOTFOUND' }
  | { status: 'TEMP' | 'TIMEOUT' | 'PERM'; reason: string };

/** Answers one lookup; synchronous, as decoding is CPU only. */
export type SocketmapLookup = (map: string, key: string) => SocketmapReply;

/** What the server counts, for metrics; `lookup` outcomes are the lookup function's to count. */
export type SocketmapEvent = 'connection' | 'refused-connection' | 'timeout' | 'oversized' | 'malformed' | 'write-overflow';

export interface SocketmapServerOptions {
  lookup: SocketmapLookup;
  logger: Logger;
  maxConnections?: number;
  timeoutMs?: number;
  maxRequestBytes?: number;
  maxWriteBytes?: number;
  onEvent?: (event: SocketmapEvent) => void;
}

export const SOCKETMAP_DEFAULTS = Object.freeze({
  maxConnections: 100,
  timeoutMs: 30_000,
  /** A map name, a space and an address (RFC 5321: at most 256 octets of path) fit many times over. */
  maxRequestBytes: 1024,
  maxWriteBytes: 65_536,
});

/** At most this many warning lines per 10 s; the rest are counted into the next one. */
const WARN_LIMIT = 10;
const WARN_INTERVAL_MS = 10_000;

export class SocketmapServer {
  readonly #options: Required<Omit<SocketmapServerOptions, 'onEvent'>> & Pick<SocketmapServerOptions, 'onEvent'>;
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  #warnWindowStart = 0;
  #warnCount = 0;
  #suppressed = 0;

  constructor(options: SocketmapServerOptions) {
    this.#options = { ...SOCKETMAP_DEFAULTS, ...options };
    this.#server = net.createServer((socket) => this.#accept(socket));
  }

  /** Open connections now. */
  get connections(): number {
    return this.#sockets.size;
  }

  async listen(host: string | undefined, port: number): Promise<net.AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.#server.once('error', onError);
      this.#server.listen({ host, port }, () => {
        this.#server.off('error', onError);
        resolve();
      });
    });
    this.#server.on('error', (err) => this.#options.logger.error({ err }, `socketmap server error: ${errorMessage(err)}`));
    return this.#server.address() as net.AddressInfo;
  }

  /** Stops accepting and closes every open connection. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }

  #event(event: SocketmapEvent): void {
    this.#options.onEvent?.(event);
  }

  #warn(fields: object, message: string): void {
    const now = Date.now();
    if (now - this.#warnWindowStart >= WARN_INTERVAL_MS) {
      this.#warnWindowStart = now;
      this.#warnCount = 0;
    }
    if (this.#warnCount >= WARN_LIMIT) {
      this.#suppressed++;
      return;
    }
    this.#warnCount++;
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    this.#options.logger.warn(suppressed > 0 ? { ...fields, suppressed } : fields, message);
  }

  #accept(socket: net.Socket): void {
    const { maxConnections, timeoutMs, maxRequestBytes, maxWriteBytes, lookup, logger } = this.#options;
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    if (this.#sockets.size >= maxConnections) {
      this.#event('refused-connection');
      this.#warn({ peer, maxConnections }, `socketmap: connection from ${peer} refused: ${maxConnections} open (SRS_SOCKETMAP_MAX_CONNECTIONS)`);
      socket.destroy();
      return;
    }
    this.#event('connection');
    this.#sockets.add(socket);
    const frameBound = maxRequestBytes + netstringOverhead(maxRequestBytes);
    let pending: Buffer = Buffer.alloc(0);
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        this.#event('timeout');
        logger.debug({ peer, timeoutMs, buffered: pending.length }, `socketmap: ${peer} closed: no complete request within ${timeoutMs} ms`);
        socket.destroy();
      }, timeoutMs);
      timer.unref();
    };
    const fail = (event: SocketmapEvent, reply: string, message: string) => {
      this.#event(event);
      this.#warn({ peer }, `socketmap: ${peer}: ${message}; closing the connection`);
      pending = Buffer.alloc(0);
      if (timer) clearTimeout(timer);
      // The answer, then the connection is gone: no waiting for the client's own close.
      socket.pause();
      socket.end(writeNetstring(reply), () => socket.destroy());
    };
    socket.on('close', () => {
      if (timer) clearTimeout(timer);
      this.#sockets.delete(socket);
    });
    socket.on('error', (err) => logger.debug({ peer, err }, `socketmap: ${peer}: ${errorMessage(err)}`));
    socket.on('drain', () => socket.resume());
    arm();
    socket.on('data', (chunk: Buffer) => {
      if (socket.writableEnded) return;
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length > 0) {
        const read = readNetstring(pending, maxRequestBytes);
        if (read.kind === 'partial') break;
        if (read.kind === 'oversized') {
          const size = read.length === undefined ? 'a length of more digits than allowed' : `${read.length} bytes`;
          return fail('oversized', `PERM request too long: at most ${maxRequestBytes} bytes`, `request of ${size}, over ${maxRequestBytes}`);
        }
        if (read.kind === 'malformed') return fail('malformed', 'PERM malformed netstring', `malformed netstring: ${read.reason}`);
        pending = pending.subarray(read.consumed);
        const request = read.payload.toString('utf8');
        const space = request.indexOf(' ');
        let reply: SocketmapReply;
        if (space <= 0) {
          this.#event('malformed');
          reply = { status: 'PERM', reason: 'request is not "<map> <key>"' };
        } else {
          try {
            reply = lookup(request.slice(0, space), request.slice(space + 1));
          } catch (err) {
            logger.error({ err, peer }, `socketmap: lookup failed: ${errorMessage(err)}`);
            reply = { status: 'TEMP', reason: 'lookup failed' };
          }
        }
        const text = reply.status === 'OK' ? `OK ${reply.value}` : reply.status === 'NOTFOUND' ? 'NOTFOUND ' : `${reply.status} ${reply.reason}`;
        if (!socket.write(writeNetstring(text))) socket.pause();
        if (socket.writableLength > 2 * maxWriteBytes) {
          this.#event('write-overflow');
          this.#warn({ peer }, `socketmap: ${peer} leaves ${socket.writableLength} bytes of replies unread; closing the connection`);
          socket.destroy();
          return;
        }
        arm();
      }
      if (pending.length > frameBound) return fail('oversized', `PERM request too long: at most ${maxRequestBytes} bytes`, 'request over the bound');
      if (socket.writableLength > maxWriteBytes) socket.pause();
    });
  }
}
