import { randomInt } from 'node:crypto';
import { abortedError, DnsError, type LookupOptions, type LookupResult, type RecordTypeMap, type Resolver, type RRType } from './types.js';
import type { DnsServer } from './servers.js';
import { canonicalName } from './names.js';
import { encodeQuery, toLookupResult, type DecodedResponse } from './wire.js';
import { openTcp, openUdp, type Exchange, type OpenExchange } from './transport.js';
import { ServerHealth, type ServerHealthOptions } from './server-health.js';

export interface StubResolverOptions {
  servers: DnsServer[];
  /**
   * Overall budget per lookup in ms, all attempts and the TCP fallback included (default 5000).
   * Attempts start timeoutMs / (retries + 1) apart (at once after a failure), and every attempt
   * keeps listening until the budget is spent: a slow answer to the first query still counts.
   */
  timeoutMs?: number;
  /** Further attempts after the first, rotating through the servers (default 2). */
  retries?: number;
  /** Seconds to cache a negative answer that carries no SOA (default 60). */
  defaultNegativeTtl?: number;
  /** Server health tracking: when a server counts as down, when it is probed again, who hears of it. */
  health?: ServerHealthOptions;
}

export interface StubResolverStats {
  udpQueries: number;
  tcpQueries: number;
  /** UDP answers with the TC bit, each retried over TCP. */
  truncated: number;
  /**
   * Queries left unanswered: still without an answer when the next attempt went out (or the
   * probe's time ran out), or at the overall deadline.
   */
  timeouts: number;
  networkErrors: number;
  /** SERVFAIL, REFUSED and FORMERR answers. */
  errorAnswers: number;
  /** Answers accepted from an earlier attempt after a later one had been sent. */
  lateAnswers: number;
  /** Lookups abandoned through their signal. */
  aborted: number;
  /** Servers marked down now (see server-health.ts). */
  readonly serversDown: number;
}
export const DEFAULT_TIMEOUT_MS = 5000;
export const DEFAULT_RETRIES = 2;

/**
 * A stub resolver: sends RD queries to recursive servers and trusts their answers.
 * Written on dns-packet because Node's dns module hides TTLs for TXT, MX and PTR.
 */
export class StubResolver implements Resolver {
  readonly servers: readonly DnsServer[];
  readonly timeoutMs: number;
  readonly retries: number;
  readonly defaultNegativeTtl: number;
  readonly stats: StubResolverStats;
  readonly health: ServerHealth;
  /** Time between attempts, ms: a query without an answer by then counts as unanswered. */
  readonly spacingMs: number;

  constructor(options: StubResolverOptions) {
    if (options.servers.length === 0) throw new RangeError('StubResolver needs at least one server');
    this.servers = [...options.servers];
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.retries = options.retries ?? DEFAULT_RETRIES;
    this.defaultNegativeTtl = options.defaultNegativeTtl ?? 60;
    if (!(this.timeoutMs > 0)) throw new RangeError('timeoutMs must be positive');
    if (!Number.isInteger(this.retries) || this.retries < 0) throw new RangeError('retries must be a non-negative integer');
    this.spacingMs = Math.max(1, Math.floor(this.timeoutMs / (this.retries + 1)));
    const health = new ServerHealth(this.servers, options.health);
    this.health = health;
    this.stats = {
      udpQueries: 0,
      tcpQueries: 0,
      truncated: 0,
      timeouts: 0,
      networkErrors: 0,
      errorAnswers: 0,
      lateAnswers: 0,
      aborted: 0,
      // Read from the health state, not a copy of it kept in step.
      get serversDown(): number {
        return health.downCount;
      },
    };
  }

  lookup<T extends RRType>(name: string, type: T, options?: LookupOptions): Promise<LookupResult<RecordTypeMap[T]>> {
    return new Promise((resolve, reject) => {
      const qname = canonicalName(name, type);
      const signal = options?.signal;
      if (signal?.aborted) throw abortedError(qname, type);
      new LookupRun(this, qname, type, signal, resolve as (r: LookupResult<unknown>) => void, reject).start();
    });
  }
}

/** One query of a lookup in progress: to which server, and whether it is past its time. */
interface Attempt {
  server: number;
  /** Still unanswered when the next attempt went out or the deadline came: counts as a timeout if it closes so. */
  overdue: boolean;
}

/**
 * One lookup: attempts rotate through the servers the health tracker offers (the live ones, or
 * all when none is), a new one every timeoutMs / attempts (or at once when one fails), and all
 * of them listen until the first usable answer or the overall deadline. A server that answered
 * SERVFAIL/REFUSED/FORMERR is not asked again in this lookup: its answer is unlikely to change
 * within the budget, another server's might. A down server due for a probe is asked alongside
 * the first attempt, so probing a dead server costs the lookup nothing.
 */
class LookupRun {
  private readonly open = new Map<OpenExchange, Attempt>();
  private readonly gaveErrorAnswer = new Set<number>();
  private readonly attempts: number;
  private readonly order: readonly number[];
  private readonly probe: number | undefined;
  private started = 0;
  private nextPosition = 0;
  private edns = true;
  private errorAnswer: DnsError | undefined;
  private lastError: DnsError | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private finished = false;

  constructor(
    private readonly stub: StubResolver,
    private readonly qname: string,
    private readonly type: RRType,
    private readonly signal: AbortSignal | undefined,
    private readonly resolve: (r: LookupResult<unknown>) => void,
    private readonly reject: (e: DnsError) => void,
  ) {
    this.attempts = stub.retries + 1;
    const plan = stub.health.plan();
    this.order = plan.order;
    this.probe = plan.probe;
  }

  private readonly onAbort = (): void => {
    this.stub.stats.aborted++;
    this.finish(abortedError(this.qname, this.type));
  };

  start(): void {
    this.deadlineTimer = setTimeout(() => this.expire(), this.stub.timeoutMs);
    this.signal?.addEventListener('abort', this.onAbort, { once: true });
    this.nextAttempt();
    if (this.probe !== undefined && !this.finished) this.sendProbe(this.probe);
  }

  /** The retry spacing has passed: whatever is still open is overdue, and the next attempt goes out. */
  private readonly onRetryTimer = (): void => {
    this.retryTimer = undefined;
    for (const attempt of this.open.values()) attempt.overdue = true;
    this.nextAttempt();
  };

  /** Starts the next attempt, or ends the lookup when none is left and none is listening. */
  private nextAttempt(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const n = this.order.length;
    let pos = this.nextPosition % n;
    for (let k = 0; k < n && this.gaveErrorAnswer.has(this.order[pos]); k++) pos = (pos + 1) % n;
    const idx = this.order[pos];
    if (this.started >= this.attempts || this.gaveErrorAnswer.has(idx)) {
      if (this.open.size === 0) this.finish(this.errorAnswer ?? this.lastError ?? this.timeoutError());
      return;
    }
    this.nextPosition = pos + 1;
    this.started++;
    this.sendUdp(idx);
    if (this.started < this.attempts) this.retryTimer = setTimeout(this.onRetryTimer, this.stub.spacingMs);
  }

  private exchange(idx: number): Exchange {
    const id = randomInt(0x10000);
    return { server: this.stub.servers[idx], query: encodeQuery(id, this.qname, this.type, this.edns), id, name: this.qname, type: this.type };
  }

  private sendUdp(idx: number): void {
    const ex = this.exchange(idx);
    const attempt = this.started;
    this.stub.stats.udpQueries++;
    const handle: OpenExchange = openUdp(ex, {
      answer: (res) => {
        this.open.delete(handle);
        this.stub.health.answered(idx);
        if (attempt < this.started) this.stub.stats.lateAnswers++;
        if (res.flag_tc) this.sendTcp(idx, ex);
        else this.onAnswer(idx, res);
      },
      failure: (e) => this.onFailure(handle, idx, e),
    });
    this.open.set(handle, { server: idx, overdue: false });
  }

  /**
   * A query to a down server, beside the lookup's own attempts. It listens for one retry
   * spacing, whether or not the lookup has ended by then, so that it can tell the health
   * tracker whether the server answers; a usable answer also serves the lookup.
   */
  private sendProbe(idx: number): void {
    const stats = this.stub.stats;
    const health = this.stub.health;
    stats.udpQueries++;
    const timer = setTimeout(() => {
      handle.close();
      stats.timeouts++;
      health.unanswered(idx);
    }, this.stub.spacingMs);
    const handle: OpenExchange = openUdp(this.exchange(idx), {
      answer: (res) => {
        clearTimeout(timer);
        health.answered(idx);
        if (this.finished || res.flag_tc) return;
        let result: LookupResult<unknown>;
        try {
          result = toLookupResult(res, this.qname, this.type, this.stub.defaultNegativeTtl);
        } catch (e) {
          if (e instanceof DnsError) return; // an error answer: the lookup's own attempts decide
          throw e;
        }
        this.finish(undefined, result);
      },
      failure: () => {
        clearTimeout(timer);
        stats.networkErrors++;
        health.unanswered(idx);
      },
    });
  }

  private sendTcp(idx: number, ex: Exchange): void {
    // The server is there and its answer is on its way over TCP: no more UDP retries meanwhile
    // (each would be truncated again). If TCP fails, the next attempt starts at once.
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.stub.stats.truncated++;
    this.stub.stats.tcpQueries++;
    const handle: OpenExchange = openTcp(ex, {
      answer: (res) => {
        this.open.delete(handle);
        this.stub.health.answered(idx);
        this.onAnswer(idx, res);
      },
      failure: (e) => this.onFailure(handle, idx, e),
    });
    this.open.set(handle, { server: idx, overdue: false });
  }

  private onAnswer(idx: number, res: DecodedResponse): void {
    if (this.finished) return;
    if (res.rcode === 'FORMERR' && this.edns) {
      // Pre-EDNS servers reject the OPT record: ask the same server again without it.
      this.edns = false;
      this.sendUdp(idx);
      return;
    }
    let result: LookupResult<unknown>;
    try {
      result = toLookupResult(res, this.qname, this.type, this.stub.defaultNegativeTtl);
    } catch (e) {
      if (!(e instanceof DnsError)) throw e;
      this.stub.stats.errorAnswers++;
      this.gaveErrorAnswer.add(idx);
      this.errorAnswer ??= e;
      this.lastError = e;
      this.nextAttempt();
      return;
    }
    this.finish(undefined, result);
  }

  private onFailure(handle: OpenExchange, idx: number, e: DnsError): void {
    this.open.delete(handle);
    this.stub.health.unanswered(idx);
    if (this.finished) return;
    this.stub.stats.networkErrors++;
    this.lastError = e;
    this.nextAttempt();
  }

  private expire(): void {
    this.deadlineTimer = undefined;
    for (const attempt of this.open.values()) attempt.overdue = true;
    // An attempt that could not even open a socket says more than the silence of the others.
    this.finish(this.errorAnswer ?? (this.lastError?.localFault ? this.lastError : this.timeoutError()));
  }

  private timeoutError(): DnsError {
    return new DnsError('TIMEOUT', this.qname, this.type, `no answer within ${this.stub.timeoutMs} ms`);
  }

  /**
   * Ends the lookup, once. Queries still open are closed; those past their time count as
   * timeouts of their server (an answer from another server does not make them answered),
   * those closed before it say nothing about their server.
   */
  private finish(error: DnsError | undefined, result?: LookupResult<unknown>): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.deadlineTimer);
    this.signal?.removeEventListener('abort', this.onAbort);
    for (const [handle, attempt] of this.open) {
      handle.close();
      if (attempt.overdue) {
        this.stub.stats.timeouts++;
        this.stub.health.unanswered(attempt.server);
      }
    }
    this.open.clear();
    if (error) this.reject(error);
    else this.resolve(result as LookupResult<unknown>);
  }
}
