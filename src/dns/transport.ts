import dgram from 'node:dgram';
import net from 'node:net';
import { DnsError, type RRType } from './types.js';
import type { DnsServer } from './servers.js';
import { decodeMatching, type DecodedResponse } from './wire.js';

/** What one exchange is about: the question and the id we sent. */
export interface Exchange {
  server: DnsServer;
  query: Buffer;
  id: number;
  name: string;
  type: RRType;
}

/** Where an exchange reports: a matching answer, or a failure (each at most once, never after close). */
export interface ExchangeEvents {
  answer(res: DecodedResponse): void;
  failure(err: DnsError): void;
}

/** An exchange in progress; close() stops listening and releases the socket. */
export interface OpenExchange {
  close(): void;
}

/** Errno codes of a process (EMFILE) or system (ENFILE) out of file descriptors. */
const FD_EXHAUSTED = new Set(['EMFILE', 'ENFILE']);

/**
 * A socket error as a DnsError: running out of file descriptors is this host's fault
 * (LOCAL_RESOURCE, named as such), anything else a network error.
 */
function socketError(ex: Exchange, e: NodeJS.ErrnoException, via = ''): DnsError {
  if (e.code !== undefined && FD_EXHAUSTED.has(e.code)) {
    return new DnsError('LOCAL_RESOURCE', ex.name, ex.type, `too many open files (${e.code}): no socket for ${label(ex.server)}${via}`);
  }
  return new DnsError('NETWORK', ex.name, ex.type, `${label(ex.server)}${via}: ${e.message}`);
}

function family(host: string): 'udp4' | 'udp6' {
  return net.isIPv6(host.split('%')[0]) ? 'udp6' : 'udp4';
}

/**
 * One UDP attempt on a fresh socket: the OS picks a random ephemeral source port per query,
 * and connect() makes the kernel drop datagrams from any other address. Packets that do not
 * match id and question are ignored (we keep listening) so a spoofer must guess both. The
 * socket listens until closed: the caller decides how long a late answer is still welcome.
 */
export function openUdp(ex: Exchange, events: ExchangeEvents): OpenExchange {
  const socket = dgram.createSocket(family(ex.server.host));
  let open = true;
  const close = (): void => {
    if (!open) return;
    open = false;
    socket.close();
  };
  socket.on('error', (e) => {
    if (!open) return;
    close();
    events.failure(socketError(ex, e));
  });
  socket.on('message', (msg) => {
    if (!open) return;
    const res = decodeMatching(msg, ex.id, ex.name, ex.type);
    if (!res) return;
    close();
    events.answer(res);
  });
  socket.connect(ex.server.port, ex.server.host, () => {
    if (!open) return;
    socket.send(ex.query, (e) => {
      if (e && open) {
        close();
        events.failure(socketError(ex, e));
      }
    });
  });
  return { close };
}

/**
 * One TCP attempt (RFC 1035 §4.2.2 framing, RFC 7766): used when the UDP answer was truncated.
 * At most one DNS message (65535 octets) plus its length is buffered.
 */
export function openTcp(ex: Exchange, events: ExchangeEvents): OpenExchange {
  const socket = net.connect({ host: ex.server.host, port: ex.server.port });
  let open = true;
  let buffered: Buffer = Buffer.alloc(0);
  const close = (): void => {
    if (!open) return;
    open = false;
    socket.destroy();
  };
  const fail = (err: DnsError): void => {
    if (!open) return;
    close();
    events.failure(err);
  };
  socket.on('error', (e) => fail(socketError(ex, e, ' (TCP)')));
  socket.on('close', () => fail(new DnsError('NETWORK', ex.name, ex.type, `${label(ex.server)} (TCP): connection closed before an answer`)));
  socket.on('connect', () => {
    const frame = Buffer.alloc(2 + ex.query.length);
    frame.writeUInt16BE(ex.query.length, 0);
    ex.query.copy(frame, 2);
    socket.write(frame);
  });
  socket.on('data', (chunk: Buffer) => {
    if (!open) return;
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    // A server may send several messages on one connection; look at each complete one.
    while (buffered.length >= 2) {
      const len = buffered.readUInt16BE(0);
      if (buffered.length < 2 + len) return;
      const msg = buffered.subarray(2, 2 + len);
      buffered = buffered.subarray(2 + len);
      const res = decodeMatching(msg, ex.id, ex.name, ex.type);
      if (res) {
        close();
        events.answer(res);
        return;
      }
    }
  });
  return { close };
}

export function label(server: DnsServer): string {
  return server.host.includes(':') ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`;
}
