/**
 * File descriptors: the limit the process runs under (RLIMIT_NOFILE), what MILTER_MAX_CONNECTIONS
 * needs of it, and the count and log of operations that failed for want of one (EMFILE/ENFILE).
 * A process out of descriptors cannot accept, cannot open a DNS socket and cannot reach LDAP:
 * the connection cap is lowered at start-up so that the milter connections leave room for the
 * rest, and what fails anyway is named ("too many open files") and counted, never silent.
 */
import { readFileSync } from 'node:fs';
import { DnsError, type Resolver } from '../dns/index.js';
import { RateLimitedLog, type MilterLogger } from '../milter/index.js';
import type { OwnDomainPort } from '../policy/index.js';

/**
 * The soft limit of open files of this process, from /proc/self/limits (Linux; Node has no API
 * for getrlimit). Node raises the soft limit to the hard one when it starts, so this is the
 * limit in force. Undefined when unlimited or unknown (another OS, /proc not mounted).
 */
export function readOpenFileLimit(read: () => string = () => readFileSync('/proc/self/limits', 'utf8')): number | undefined {
  let text: string;
  try {
    text = read();
  } catch {
    return undefined;
  }
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  if (!m || m[1] === 'unlimited') return undefined;
  const soft = Number(m[1]);
  return Number.isSafeInteger(soft) && soft > 0 ? soft : undefined;
}

/**
 * What the budget counts. Measured: the daemon holds 22 descriptors after start-up with one
 * HTTP listener (stdio, the event loop's epoll and eventfds, signal pipes, the listeners).
 */
export const FD_BUDGET = {
  /** The process itself, its listeners included. */
  base: 32,
  /** LDAP connection(s) while connected or reconnecting. */
  ldap: 2,
  /** HTTP scrapes, the TCP fallback of a truncated DNS answer, files read now and then. */
  headroom: 16,
  /**
   * Each milter connection: its socket, and the UDP socket of the DNS lookup its message
   * starts at MAIL (a lookup holds more while a server is slow, and cached answers need none).
   */
  perConnection: 2,
} as const;

export interface ConnectionCap {
  /** The open-files limit; undefined when unknown or unlimited (then nothing is lowered). */
  limit: number | undefined;
  /** Descriptors MILTER_MAX_CONNECTIONS needs by the budget. */
  needed: number;
  /** Descriptors kept for everything but the milter connections. */
  reserve: number;
  /** The connection cap to apply: MILTER_MAX_CONNECTIONS, or lower so that it fits the limit. */
  cap: number;
  lowered: boolean;
}

export function connectionCapForFdLimit(limit: number | undefined, maxConnections: number, ldap: boolean): ConnectionCap {
  const reserve = FD_BUDGET.base + FD_BUDGET.headroom + (ldap ? FD_BUDGET.ldap : 0);
  const needed = reserve + maxConnections * FD_BUDGET.perConnection;
  if (limit === undefined || needed <= limit) return { limit, needed, reserve, cap: maxConnections, lowered: false };
  const cap = Math.max(1, Math.floor((limit - reserve) / FD_BUDGET.perConnection));
  return { limit, needed, reserve, cap, lowered: true };
}

export type FdExhaustedWhere = 'accept' | 'dns' | 'ldap';

/** EMFILE (this process) or ENFILE (the whole system) named in an error's text, else undefined. */
export function fdExhaustionCode(text: string | undefined): 'EMFILE' | 'ENFILE' | undefined {
  const m = text === undefined ? null : /\b(EMFILE|ENFILE)\b/.exec(text);
  return m ? (m[1] as 'EMFILE' | 'ENFILE') : undefined;
}

const WHAT: Record<FdExhaustedWhere, string> = {
  accept: 'a milter connection could not be accepted',
  dns: 'a DNS lookup could not open a socket; in reject mode its message is deferred (451 4.3.0)',
  ldap: 'the LDAP lookup could not open a connection; in reject mode a message its answer decides is deferred (451 4.3.0)',
};

/** Counts and logs (rate limited, per place) the operations that found no file descriptor. */
export class FdExhaustion {
  readonly counts: Record<FdExhaustedWhere, number> = { accept: 0, dns: 0, ldap: 0 };
  private readonly noise: RateLimitedLog;

  constructor(logger: MilterLogger) {
    this.noise = new RateLimitedLog(logger);
  }

  record(where: FdExhaustedWhere, code: string, detail: string): void {
    this.counts[where]++;
    this.noise.warn(`fd-exhausted-${where}`, { where, code, detail }, `too many open files (${code}): ${WHAT[where]}`);
  }

  /** Watches the lookups that leave the DNS cache for the ones that found no socket. */
  watchDns(upstream: Resolver): Resolver {
    return {
      lookup: (name, type, options) =>
        upstream.lookup(name, type, options).catch((e: unknown) => {
          if (e instanceof DnsError && e.localFault) this.record('dns', fdExhaustionCode(e.message) ?? 'EMFILE', e.message);
          throw e;
        }),
    };
  }

  /**
   * Watches own-domain lookups for connections LDAP could not open (the directory answers its
   * errors, it does not throw): each lookup answered as a local fault, those refused in the
   * second after an attempt that found no descriptor included.
   */
  watchOwnDomains(port: OwnDomainPort): OwnDomainPort {
    return {
      isOwnDomain: (domain) =>
        port.isOwnDomain(domain).then((answer) => {
          if (answer.localFault) this.record('ldap', fdExhaustionCode(answer.error) ?? 'EMFILE', answer.error ?? '');
          return answer;
        }),
      ...(port.isOwnDomainNow ? { isOwnDomainNow: (domain: string) => port.isOwnDomainNow!(domain) } : {}),
    };
  }

  flush(): void {
    this.noise.flush();
  }
}
