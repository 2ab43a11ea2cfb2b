/**
 * A loopback UDP hop between a resolver under test and Knot that shapes the way back: every
 * query is forwarded to Knot at once (so Knot counts it at once), and its answer is returned
 * at once, after a delay, or never, by the name asked. Knot itself can only hold a query (its
 * proxy module) or answer at once; this gives slow-but-answered lookups and lost answers
 * without holding a Knot worker, and it records each query it forwarded with its name and time.
 */
import dgram from 'node:dgram';
import * as packet from 'dns-packet';

/** What happens to the answer for a name: returned now, returned after `delayMs`, or lost. */
export type AnswerPath = { delayMs: number } | 'drop';

export interface ForwardedQuery {
  /** Lower-case name without the trailing dot. */
  name: string;
  type: string;
  /** Date.now() when it was forwarded to Knot. */
  at: number;
}

export interface DnsPathProxyOptions {
  upstream: { host: string; port: number };
  /** The path of a name's answer; undefined (the default) returns it at once. */
  pathFor?: (name: string) => AnswerPath | undefined;
  /** Queries in flight at most; more are dropped unforwarded (default 1000). */
  maxInFlight?: number;
  /** How long an answer from upstream is awaited per query, ms (default 5000). */
  upstreamTimeoutMs?: number;
}

export interface DnsPathProxy {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** Every query forwarded so far, in order. */
  readonly forwarded: readonly ForwardedQuery[];
  /** Queries forwarded for `name` (exact, case-insensitive) or, with a leading dot, for names below it. */
  count(name: string): number;
  close(): Promise<void>;
}

function questionOf(msg: Buffer): { name: string; type: string } | undefined {
  try {
    const q = packet.decode(msg).questions?.[0];
    return q ? { name: q.name.toLowerCase().replace(/\.$/, ''), type: q.type } : undefined;
  } catch {
    return undefined;
  }
}

export async function startDnsPathProxy(options: DnsPathProxyOptions): Promise<DnsPathProxy> {
  const maxInFlight = options.maxInFlight ?? 1000;
  const upstreamTimeoutMs = options.upstreamTimeoutMs ?? 5000;
  const forwarded: ForwardedQuery[] = [];
  const inFlight = new Set<dgram.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;

  const front = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.bind(0, '127.0.0.1', () => {
      front.off('error', reject);
      resolve();
    });
  });
  front.on('error', () => {});

  const later = (ms: number, fn: () => void): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  front.on('message', (query, client) => {
    const question = questionOf(query);
    if (closed || !question || inFlight.size >= maxInFlight) return;
    const path = options.pathFor?.(question.name);
    const back = dgram.createSocket('udp4');
    inFlight.add(back);
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      inFlight.delete(back);
      back.close();
    };
    back.on('error', finish);
    back.on('message', (answer) => {
      finish();
      if (closed || path === 'drop') return;
      const reply = (): void => {
        if (!closed) front.send(answer, client.port, client.address);
      };
      if (path && path.delayMs > 0) later(path.delayMs, reply);
      else reply();
    });
    later(upstreamTimeoutMs, finish);
    back.connect(options.upstream.port, options.upstream.host, () => {
      forwarded.push({ ...question, at: Date.now() });
      back.send(query, (e) => e && finish());
    });
  });

  const port = front.address().port;
  return {
    host: '127.0.0.1',
    port,
    forwarded,
    count(name) {
      const n = name.toLowerCase();
      return forwarded.filter((q) => (n.startsWith('.') ? q.name.endsWith(n) : q.name === n)).length;
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of inFlight) s.close();
      inFlight.clear();
      await new Promise<void>((resolve) => front.close(() => resolve()));
    },
  };
}
