import dgram from 'node:dgram';
import net from 'node:net';
import { DnsError, type RRType } from './types.js';
import type { DnsServer } from './servers.js';
import { decodeMatching, type DecodedResponse } from './wire.js';

/** What one exchange is about: the question, the id we sent, and when to give up. */
export interface Exchange {
  server: DnsServer;
  query: Buffer;
  id: number;
  name: string;
  type: RRType;
  timeoutMs: number;
}

function family(host: string): 'udp4' | 'udp6' {
  return net.isIPv6(host.split('%')[0]) ? 'udp6' : 'udp4';
}

/**
 * One UDP attempt on a fresh socket: the OS picks a random ephemeral source port per query,
 * and connect() makes the kernel drop datagrams from any other address. Packets that do not
 * match id and question are ignored (we keep waiting) so a spoofer must guess both.
 */
export function udpExchange(ex: Exchange): Promise<DecodedResponse> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(family(ex.server.host));
    let done = false;
    const finish = (err: DnsError | undefined, res?: DecodedResponse): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.close();
      if (err) reject(err);
      else resolve(res as DecodedResponse);
    };
    const timer = setTimeout(
      () => finish(new DnsError('TIMEOUT', ex.name, ex.type, `no UDP answer from ${label(ex.server)} in ${ex.timeoutMs} ms`)),
      ex.timeoutMs,
    );
    socket.on('error', (e) => finish(new DnsError('NETWORK', ex.name, ex.type, `${label(ex.server)}: ${e.message}`)));
    socket.on('message', (msg) => {
      const res = decodeMatching(msg, ex.id, ex.name, ex.type);
      if (res) finish(undefined, res);
    });
    socket.connect(ex.server.port, ex.server.host, () => {
      socket.send(ex.query, (e) => {
        if (e) finish(new DnsError('NETWORK', ex.name, ex.type, `${label(ex.server)}: ${e.message}`));
      });
    });
  });
}

/** One TCP attempt (RFC 1035 §4.2.2 framing, RFC 7766): used when the UDP answer was truncated. */
export function tcpExchange(ex: Exchange): Promise<DecodedResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: ex.server.host, port: ex.server.port });
    let done = false;
    let buffered: Buffer = Buffer.alloc(0);
    const finish = (err: DnsError | undefined, res?: DecodedResponse): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(res as DecodedResponse);
    };
    const timer = setTimeout(
      () => finish(new DnsError('TIMEOUT', ex.name, ex.type, `no TCP answer from ${label(ex.server)} in ${ex.timeoutMs} ms`)),
      ex.timeoutMs,
    );
    socket.on('error', (e) => finish(new DnsError('NETWORK', ex.name, ex.type, `${label(ex.server)} (TCP): ${e.message}`)));
    socket.on('close', () => finish(new DnsError('NETWORK', ex.name, ex.type, `${label(ex.server)} (TCP): connection closed before an answer`)));
    socket.on('connect', () => {
      const frame = Buffer.alloc(2 + ex.query.length);
      frame.writeUInt16BE(ex.query.length, 0);
      ex.query.copy(frame, 2);
      socket.write(frame);
    });
    socket.on('data', (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      // A server may send several messages on one connection; look at each complete one.
      while (buffered.length >= 2) {
        const len = buffered.readUInt16BE(0);
        if (buffered.length < 2 + len) return;
        const msg = buffered.subarray(2, 2 + len);
        buffered = buffered.subarray(2 + len);
        const res = decodeMatching(msg, ex.id, ex.name, ex.type);
        if (res) return finish(undefined, res);
      }
    });
  });
}

export function label(server: DnsServer): string {
  return server.host.includes(':') ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`;
}
