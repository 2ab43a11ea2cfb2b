import { randomInt } from 'node:crypto';
import { abortedError, DnsError, type LookupOptions, type LookupResult, type RecordTypeMap, type Resolver, type RRType } from './types.js';
import type { DnsServer } from './servers.js';
import { canonicalName } from './names.js';
import { encodeQuery, toLookupResult, type DecodedResponse } from './wire.js';
import { openTcp, openUdp, type Exchange, type OpenExchange } from './transport.js';

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
}

export interface StubResolverStats {
  udpQueries: number;
  tcpQueries: number;
  /** UDP answers with the TC bit, each retried over TCP. */
  truncated: number;
  timeouts: number;
  networkErrors: number;
  /** SERVFAIL, REFUSED and FORMERR answers. */
  errorAnswers: number;
  /** Answers accepted from an earlier attempt after a later one had been sent. */
  lateAnswers: number;
  /** Lookups abandoned through their signal. */
  aborted: number;
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
  readonly stats: StubResolverStats = { udpQueries: 0, tcpQueries: 0, truncated: 0, timeouts: 0, networkErrors: 0, errorAnswers: 0, lateAnswers: 0, aborted: 0 };

  constructor(options: StubResolverOptions) {
    if (options.servers.length === 0) throw new RangeError('StubResolver needs at least one server');
    this.servers = [...options.servers];
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.retries = options.retries ?? DEFAULT_RETRIES;
    this.defaultNegativeTtl = options.defaultNegativeTtl ?? 60;
    if (!(this.timeoutMs > 0)) throw new RangeError('timeoutMs must be positive');
    if (!Number.isInteger(this.retries) || this.retries < 0) throw new RangeError('retries must be a non-negative integer');
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

/**
 * One lookup: attempts rotate through the servers, a new one every timeoutMs / attempts (or at
 * once when one fails), and all of them listen until the first usable answer or the overall
 * deadline. A server that answered SERVFAIL/REFUSED/FORMERR is not asked again in this lookup:
 * its answer is unlikely to change within the budget, another server's might.
 */
class LookupRun {
  private readonly open = new Map<OpenExchange, number>();
  private readonly gaveErrorAnswer = new Set<number>();
  private readonly attempts: number;
  private started = 0;
  private nextServer = 0;
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
  }

  private readonly onAbort = (): void => {
    this.stub.stats.aborted++;
    this.finish(abortedError(this.qname, this.type));
  };

  start(): void {
    this.deadlineTimer = setTimeout(() => this.expire(), this.stub.timeoutMs);
    this.signal?.addEventListener('abort', this.onAbort, { once: true });
    this.nextAttempt();
  }

  /** Starts the next attempt, or ends the lookup when none is left and none is listening. */
  private nextAttempt(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const n = this.stub.servers.length;
    let idx = this.nextServer % n;
    for (let k = 0; k < n && this.gaveErrorAnswer.has(idx); k++) idx = (idx + 1) % n;
    if (this.started >= this.attempts || this.gaveErrorAnswer.has(idx)) {
      if (this.open.size === 0) this.finish(this.errorAnswer ?? this.lastError ?? this.timeoutError());
      return;
    }
    this.nextServer = idx + 1;
    this.started++;
    this.sendUdp(idx);
    if (this.started < this.attempts) {
      const spacing = Math.max(1, Math.floor(this.stub.timeoutMs / this.attempts));
      this.retryTimer = setTimeout(() => this.nextAttempt(), spacing);
    }
  }

  private sendUdp(idx: number): void {
    const id = randomInt(0x10000);
    const ex: Exchange = { server: this.stub.servers[idx], query: encodeQuery(id, this.qname, this.type, this.edns), id, name: this.qname, type: this.type };
    const attempt = this.started;
    this.stub.stats.udpQueries++;
    const handle: OpenExchange = openUdp(ex, {
      answer: (res) => {
        this.open.delete(handle);
        if (attempt < this.started) this.stub.stats.lateAnswers++;
        if (res.flag_tc) this.sendTcp(idx, ex);
        else this.onAnswer(idx, res);
      },
      failure: (e) => this.onFailure(handle, e),
    });
    this.open.set(handle, idx);
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
        this.onAnswer(idx, res);
      },
      failure: (e) => this.onFailure(handle, e),
    });
    this.open.set(handle, idx);
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

  private onFailure(handle: OpenExchange, e: DnsError): void {
    this.open.delete(handle);
    if (this.finished) return;
    this.stub.stats.networkErrors++;
    this.lastError = e;
    this.nextAttempt();
  }

  private expire(): void {
    this.deadlineTimer = undefined;
    this.stub.stats.timeouts += this.open.size;
    // An attempt that could not even open a socket says more than the silence of the others.
    this.finish(this.errorAnswer ?? (this.lastError?.localFault ? this.lastError : this.timeoutError()));
  }

  private timeoutError(): DnsError {
    return new DnsError('TIMEOUT', this.qname, this.type, `no answer within ${this.stub.timeoutMs} ms`);
  }

  private finish(error: DnsError | undefined, result?: LookupResult<unknown>): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.deadlineTimer);
    this.signal?.removeEventListener('abort', this.onAbort);
    for (const handle of this.open.keys()) handle.close();
    this.open.clear();
    if (error) this.reject(error);
    else this.resolve(result as LookupResult<unknown>);
  }
}
