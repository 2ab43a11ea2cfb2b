/**
 * What the log says while LDAP cannot answer: one warning when the outage starts, a summary
 * while it lasts (at the first failure after every `summaryEveryMs`), and one info line when
 * a search succeeds again. Each failed lookup is a debug line only: during an outage every
 * message fails its lookup, and a line per message (100 a second at a busy relay) hides the
 * lines that matter. No timer: summaries ride on the failures, so a quiet outage stays quiet.
 */
import type { Logger } from '../log/index.js';

export interface OutageLogOptions {
  /** A summary line at most this often while the outage lasts (default 60 s). */
  summaryEveryMs?: number;
  /** Milliseconds clock (default Date.now); tests pass their own. */
  now?: () => number;
}

interface Outage {
  startedAt: number;
  lastSummaryAt: number;
  /** Lookups that failed since the outage began. */
  failedLookups: number;
  /** Failed lookups since the last summary. */
  failedSinceSummary: number;
  lastError: string;
}

export class LdapOutageLog {
  private readonly summaryEveryMs: number;
  private readonly now: () => number;
  private outage: Outage | undefined;

  constructor(
    private readonly logger: Logger,
    options: OutageLogOptions = {},
  ) {
    this.summaryEveryMs = options.summaryEveryMs ?? 60_000;
    this.now = options.now ?? Date.now;
  }

  /** An outage is running (begun, not yet ended by a successful search). */
  get active(): boolean {
    return this.outage !== undefined;
  }

  /** A lookup could not be answered by LDAP. */
  lookupFailed(domain: string, error: string): void {
    this.failure(error, 1, { domain });
  }

  /** A connection attempt to every server failed (no lookup counted: the lookups say so themselves). */
  connectFailed(errors: readonly string[], retryInMs: number): void {
    this.failure(errors.join('; '), 0, { errors, retryInMs });
  }

  /** A search answered: the outage, if any, is over. */
  succeeded(): void {
    const o = this.outage;
    if (o === undefined) return;
    this.outage = undefined;
    const seconds = Math.round((this.now() - o.startedAt) / 1000);
    this.logger.info(
      { outageSeconds: seconds, failedLookups: o.failedLookups },
      `LDAP answers again after ${seconds} s unavailable; ${o.failedLookups} own-domain lookups failed meanwhile (treated as not own)`,
    );
  }

  private failure(error: string, lookups: number, fields: object): void {
    const now = this.now();
    let o = this.outage;
    if (o === undefined) {
      o = { startedAt: now, lastSummaryAt: now, failedLookups: lookups, failedSinceSummary: lookups, lastError: error };
      this.outage = o;
      this.logger.warn(
        { ...fields, error },
        'LDAP unavailable: own-domain lookups fail and their domains count as not own until it answers again (one summary line a minute meanwhile)',
      );
      return;
    }
    o.failedLookups += lookups;
    o.failedSinceSummary += lookups;
    o.lastError = error;
    this.logger.debug({ ...fields, error }, lookups > 0 ? 'LDAP own-domain lookup failed (outage)' : 'LDAP connection attempt failed (outage)');
    if (now - o.lastSummaryAt >= this.summaryEveryMs) {
      o.lastSummaryAt = now;
      const seconds = Math.round((now - o.startedAt) / 1000);
      this.logger.warn(
        { outageSeconds: seconds, failedLookups: o.failedLookups, failedSinceLastSummary: o.failedSinceSummary, lastError: o.lastError },
        `LDAP still unavailable for ${seconds} s, ${o.failedLookups} lookups failed`,
      );
      o.failedSinceSummary = 0;
    }
  }
}
