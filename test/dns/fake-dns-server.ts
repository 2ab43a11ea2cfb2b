// A tiny in-process DNS responder on loopback (UDP and TCP on the same port), scripted per
// test: the handler returns the messages to send back, in order ([] = stay silent).
import dgram from 'node:dgram';
import net from 'node:net';
import * as packet from 'dns-packet';

export type Transport = 'udp' | 'tcp';
/** A message to send back, or one to send `delayMs` later (a slow upstream). */
export type Reply = packet.Packet | Buffer | { delayMs: number; message: packet.Packet | Buffer };
export type Handler = (query: packet.DecodedPacket, transport: Transport) => Reply[];

export interface FakeDnsServer {
  host: string;
  port: number;
  received: { name: string; type: string; transport: Transport; edns: boolean }[];
  close(): Promise<void>;
}

function bindUdp(port: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(port, '127.0.0.1', () => resolve(s));
  });
}

function listenTcp(server: net.Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
}

export async function startFakeDns(handler: Handler): Promise<FakeDnsServer> {
  const received: FakeDnsServer['received'] = [];
  let closed = false;
  const later = new Set<NodeJS.Timeout>();
  /** Sends each reply now or after its delay. */
  const dispatch = (replies: Reply[], send: (b: Buffer) => void): void => {
    for (const r of replies) {
      if (Buffer.isBuffer(r)) send(r);
      else if ('delayMs' in r) {
        const message = Buffer.isBuffer(r.message) ? r.message : packet.encode(r.message);
        const t = setTimeout(() => {
          later.delete(t);
          if (!closed) send(message);
        }, r.delayMs);
        later.add(t);
      } else send(packet.encode(r));
    }
  };
  const answer = (msg: Buffer, transport: Transport): Reply[] => {
    const q = packet.decode(msg);
    const question = q.questions?.[0];
    received.push({
      name: question?.name ?? '',
      type: question?.type ?? '',
      transport,
      edns: (q.additionals ?? []).some((a) => a.type === 'OPT'),
    });
    return handler(q, transport);
  };
  const tcp = net.createServer((conn) => {
    let buf = Buffer.alloc(0);
    conn.on('error', () => {});
    conn.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        dispatch(answer(msg, 'tcp'), (out) => {
          const frame = Buffer.alloc(2);
          frame.writeUInt16BE(out.length);
          if (!conn.destroyed) conn.write(Buffer.concat([frame, out]));
        });
      }
    });
  });
  // UDP and TCP must share the port number: bind UDP to 0, then try TCP on it (retry if taken).
  for (let tries = 0; ; tries++) {
    const udp = await bindUdp(0);
    const port = udp.address().port;
    try {
      await listenTcp(tcp, port);
    } catch (e) {
      udp.close();
      if (tries >= 20) throw e;
      continue;
    }
    udp.on('message', (msg, rinfo) => {
      dispatch(answer(msg, 'udp'), (out) => udp.send(out, rinfo.port, rinfo.address));
    });
    return {
      host: '127.0.0.1',
      port,
      received,
      close: async () => {
        closed = true;
        for (const t of later) clearTimeout(t);
        udp.close();
        await new Promise<void>((resolve) => tcp.close(() => resolve()));
      },
    };
  }
}

/** A response to `q` with the given sections; flags default to QR+RD+RA. */
export function reply(q: packet.DecodedPacket, parts: Partial<packet.Packet> & { rcode?: number } = {}): packet.Packet {
  const { rcode = 0, ...rest } = parts;
  return {
    type: 'response',
    id: q.id,
    flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE | rcode,
    questions: q.questions,
    ...rest,
  };
}

export function soa(zone: string, ttl: number, minimum: number): packet.Answer {
  return {
    type: 'SOA',
    name: zone,
    ttl,
    data: { mname: `ns.${zone}`, rname: `admin.${zone}`, serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum },
  };
}
