/**
 * The log of DNS server health: one WARN when a server is marked down, one INFO when it answers
 * again, never a line per query. Transitions are rare for a dead server (one probe per interval)
 * but not for a live one that anyone can make leave queries unanswered: a sender whose SPF names
 * a domain with hanging nameservers gets the only server marked down, the next answer brings it
 * back. So, as the milter's per-event warnings (src/milter/rate-limited-log.ts), lines are limited
 * per server: past `limit` lines within `intervalMs`, transitions are counted instead, and one
 * line at the end of the interval gives the count and the state the server is in then.
 */
import { serverLabel, type ServerHealthChange } from '../dns/index.js';
import type { Logger } from '../log/index.js';

export interface DnsHealthLogOptions {
  /** Lines per server per interval (default 4: two outages and their ends). */
  limit?: number;
  /** Length of the interval, ms (default 60 s). */
  intervalMs?: number;
  /** Milliseconds on any monotonic scale (default performance.now). */
  now?: () => number;
}

/** What the lines say about the resolver as a whole. */
export interface DnsHealthContext {
  reprobeMs: number;
  serversDown(): number;
  servers: number;
}

interface ServerWindow {
  started: number;
  written: number;
  downs: number;
  ups: number;
  up: boolean;
}

export class DnsHealthLog {
  private readonly windows = new Map<string, ServerWindow>();
  private readonly limit: number;
  private readonly intervalMs: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly context: DnsHealthContext,
    options: DnsHealthLogOptions = {},
  ) {
    this.limit = options.limit ?? 4;
    this.intervalMs = options.intervalMs ?? 60_000;
    this.now = options.now ?? (() => performance.now());
  }

  report(change: ServerHealthChange): void {
    const server = serverLabel(change.server);
    const now = this.now();
    let w = this.windows.get(server);
    if (w === undefined) {
      // One entry per configured server: the keys come from DNS_SERVERS, never from traffic.
      w = { started: now, written: 0, downs: 0, ups: 0, up: change.up };
      this.windows.set(server, w);
    } else if (now - w.started >= this.intervalMs) {
      this.summarize(server, w);
      w.started = now;
      w.written = 0;
    }
    w.up = change.up;
    if (w.written < this.limit) {
      w.written++;
      this.line(server, change);
      return;
    }
    if (change.up) w.ups++;
    else w.downs++;
    this.timer ??= setTimeout(() => this.flush(), this.intervalMs).unref();
  }

  /** Writes the pending counts now (at the end of an interval; tests call it directly). */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const [server, w] of this.windows) this.summarize(server, w);
  }

  private line(server: string, change: ServerHealthChange): void {
    const { reprobeMs, servers } = this.context;
    const serversDown = this.context.serversDown();
    if (change.up) {
      this.logger.info({ server, downForMs: change.downForMs, serversDown, servers }, `DNS server ${server} answers again (down for ${change.downForMs} ms)`);
      return;
    }
    const then = serversDown < servers ? `skipped, probed again every ${reprobeMs / 1000} s` : 'every DNS server is down: all are still tried';
    this.logger.warn({ server, unanswered: change.unanswered, reprobeMs, serversDown, servers }, `DNS server ${server} marked down: ${change.unanswered} queries in a row unanswered; ${then}`);
  }

  private summarize(server: string, w: ServerWindow): void {
    if (w.downs + w.ups === 0) return;
    const fields = { server, markedDown: w.downs, back: w.ups, up: w.up, intervalMs: this.intervalMs, limit: this.limit, serversDown: this.context.serversDown() };
    const msg = `DNS server ${server} was marked down ${w.downs} more times and came back ${w.ups} more times (at most ${this.limit} lines per ${this.intervalMs / 1000} s); ${w.up ? 'it answers now' : 'down now'}`;
    if (w.up) this.logger.info(fields, msg);
    else this.logger.warn(fields, msg);
    w.downs = 0;
    w.ups = 0;
  }
}
