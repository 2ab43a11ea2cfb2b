/**
 * Which upstream servers answer. A server that leaves `downAfter` queries in a row unanswered
 * (no answer within the retry spacing, or a network error) is marked down: new lookups skip
 * it and go straight to the servers that answer. Every `reprobeMs` one lookup takes a down
 * server along as a probe, one query at a time; its first answer marks it up again. When every
 * server is down, lookups still try them all (never fail without asking anyone).
 *
 * Knows nothing of time itself (the clock is injected) and nothing of the caller: changes are
 * reported through `onChange`, once per transition, so the caller can log one line each.
 */
import type { DnsServer } from './servers.js';

/** Queries in a row a server may leave unanswered before it is marked down. */
export const DEFAULT_DOWN_AFTER = 3;
/** How long a server stays skipped before a lookup takes it along as a probe, ms. */
export const DEFAULT_REPROBE_MS = 10_000;

/** A server was marked down (it left `unanswered` queries in a row unanswered) or is back up. */
export interface ServerHealthChange {
  server: DnsServer;
  index: number;
  up: boolean;
  /** Queries in a row left unanswered when marked down; 0 when back up. */
  unanswered: number;
  /** ms it was down, when back up. */
  downForMs?: number;
}

export interface ServerHealthOptions {
  downAfter?: number;
  reprobeMs?: number;
  /** Milliseconds on any monotonic scale (default performance.now). */
  now?: () => number;
  onChange?: (change: ServerHealthChange) => void;
}

/** The servers to ask in one lookup: `order` to rotate through, `probe` (a down server) to ask alongside. */
export interface ServerPlan {
  order: readonly number[];
  probe: number | undefined;
}

interface State {
  unanswered: number;
  down: boolean;
  downSince: number;
  /** When a down server may next be taken along as a probe. */
  probeAt: number;
}

export class ServerHealth {
  readonly downAfter: number;
  readonly reprobeMs: number;
  private readonly now: () => number;
  private readonly onChange: ((change: ServerHealthChange) => void) | undefined;
  private readonly states: State[];
  private readonly all: readonly number[];
  private live: readonly number[];

  constructor(
    private readonly servers: readonly DnsServer[],
    options: ServerHealthOptions = {},
  ) {
    this.downAfter = options.downAfter ?? DEFAULT_DOWN_AFTER;
    this.reprobeMs = options.reprobeMs ?? DEFAULT_REPROBE_MS;
    if (!Number.isInteger(this.downAfter) || this.downAfter < 1) throw new RangeError('downAfter must be a positive integer');
    if (!(this.reprobeMs > 0)) throw new RangeError('reprobeMs must be positive');
    this.now = options.now ?? (() => performance.now());
    this.onChange = options.onChange;
    this.states = servers.map(() => ({ unanswered: 0, down: false, downSince: 0, probeAt: 0 }));
    this.all = servers.map((_, i) => i);
    this.live = this.all;
  }

  /** Servers marked down now. */
  get downCount(): number {
    return this.all.length - this.live.length;
  }

  isDown(index: number): boolean {
    return this.states[index].down;
  }

  /**
   * The plan for a new lookup: the live servers in their configured order (all of them when
   * none is live) and, when one is due, a down server to probe. Handing out a probe starts its
   * next interval, so a dead server gets one probe per interval however busy the resolver is.
   */
  plan(): ServerPlan {
    if (this.live.length === 0) return { order: this.all, probe: undefined };
    if (this.live.length === this.all.length) return { order: this.all, probe: undefined };
    const now = this.now();
    let probe: number | undefined;
    for (const i of this.all) {
      const s = this.states[i];
      if (s.down && s.probeAt <= now) {
        s.probeAt = now + this.reprobeMs;
        probe = i;
        break;
      }
    }
    return { order: this.live, probe };
  }

  /** The server answered (any answer, SERVFAIL included: it is there). */
  answered(index: number): void {
    const s = this.states[index];
    s.unanswered = 0;
    if (!s.down) return;
    s.down = false;
    this.recount();
    this.onChange?.({ server: this.servers[index], index, up: true, unanswered: 0, downForMs: Math.max(0, Math.round(this.now() - s.downSince)) });
  }

  /** The server left a query unanswered (past the retry spacing, or a network error). */
  unanswered(index: number): void {
    const s = this.states[index];
    s.unanswered++;
    if (s.down || s.unanswered < this.downAfter) return;
    const now = this.now();
    s.down = true;
    s.downSince = now;
    s.probeAt = now + this.reprobeMs;
    this.recount();
    this.onChange?.({ server: this.servers[index], index, up: false, unanswered: s.unanswered });
  }

  private recount(): void {
    this.live = this.all.filter((i) => !this.states[i].down);
  }
}
