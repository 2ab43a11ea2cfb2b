import { randomInt } from 'node:crypto';
import { DnsError, type LookupResult, type RecordTypeMap, type Resolver, type RRType } from './types.js';
import type { DnsServer } from './servers.js';
import { canonicalName } from './names.js';
import { encodeQuery, toLookupResult, type DecodedResponse } from './wire.js';
import { tcpExchange, udpExchange } from './transport.js';

export interface StubResolverOptions {
  servers: DnsServer[];
  /**
   * Overall budget per lookup in ms, all attempts and the TCP fallback included (default 5000).
   * Each attempt gets an equal share (timeoutMs / (retries + 1)); time left over by attempts
   * that failed fast goes to the last one.
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
  readonly stats: StubResolverStats = { udpQueries: 0, tcpQueries: 0, truncated: 0, timeouts: 0, networkErrors: 0, errorAnswers: 0 };

  constructor(options: StubResolverOptions) {
    if (options.servers.length === 0) throw new RangeError('StubResolver needs at least one server');
    this.servers = [...options.servers];
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.retries = options.retries ?? DEFAULT_RETRIES;
    this.defaultNegativeTtl = options.defaultNegativeTtl ?? 60;
    if (!(this.timeoutMs > 0)) throw new RangeError('timeoutMs must be positive');
    if (!Number.isInteger(this.retries) || this.retries < 0) throw new RangeError('retries must be a non-negative integer');
  }

  async lookup<T extends RRType>(name: string, type: T): Promise<LookupResult<RecordTypeMap[T]>> {
    const qname = canonicalName(name, type);
    const attempts = this.retries + 1;
    const deadline = Date.now() + this.timeoutMs;
    const share = Math.max(1, Math.floor(this.timeoutMs / attempts));
    const n = this.servers.length;
    // A server that answered SERVFAIL/REFUSED/FORMERR is not asked again for this lookup:
    // its answer is unlikely to change within the budget, another server's might.
    const gaveErrorAnswer = new Set<number>();
    let errorAnswer: DnsError | undefined;
    let lastError: DnsError | undefined;
    let edns = true;
    let next = 0;

    for (let attempt = 0; attempt < attempts; attempt++) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      let idx = next % n;
      for (let k = 0; k < n && gaveErrorAnswer.has(idx); k++) idx = (idx + 1) % n;
      if (gaveErrorAnswer.has(idx)) break;
      next = idx + 1;
      const server = this.servers[idx];
      const timeoutMs = attempt === attempts - 1 ? remaining : Math.min(share, remaining);
      const id = randomInt(0x10000);
      const query = encodeQuery(id, qname, type, edns);
      const ex = { server, query, id, name: qname, type, timeoutMs };
      try {
        this.stats.udpQueries++;
        let res: DecodedResponse = await udpExchange(ex);
        if (res.flag_tc) {
          this.stats.truncated++;
          this.stats.tcpQueries++;
          res = await tcpExchange({ ...ex, timeoutMs: Math.max(1, deadline - Date.now()) });
        }
        if (res.rcode === 'FORMERR' && edns) {
          // Pre-EDNS servers reject the OPT record: ask the same server again without it.
          edns = false;
          next = idx;
          attempt--;
          continue;
        }
        return toLookupResult(res, qname, type, this.defaultNegativeTtl);
      } catch (e) {
        if (!(e instanceof DnsError)) throw e;
        lastError = e;
        if (e.code === 'TIMEOUT') this.stats.timeouts++;
        else if (e.code === 'NETWORK') this.stats.networkErrors++;
        else {
          this.stats.errorAnswers++;
          gaveErrorAnswer.add(idx);
          errorAnswer ??= e;
        }
      }
    }
    throw errorAnswer ?? lastError ?? new DnsError('TIMEOUT', qname, type, `no answer within ${this.timeoutMs} ms`);
  }
}
