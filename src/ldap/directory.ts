/**
 * Is the sender domain one of ours? Asked of an LDAP directory, answered within a hard time
 * bound, cached, and never throwing: when LDAP cannot answer, the caller gets
 * `{ own: false, source: 'error' }` and the mail flow goes on. When this process could not even
 * open the connection (no file descriptor), the answer says so (`localFault`): nobody was asked.
 */
import { LRUCache } from 'lru-cache';
import type { Logger } from '../log/index.js';
import { errorMessage, silentLogger } from '../log/index.js';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import { isLdapsUri, ldaptsClientFactory, uriHost, type LdapClient, type LdapClientFactory, type LdapTlsOptions } from './client.js';
import { DkimValueChecker } from './dkim-domains.js';
import { domainsOfEntry } from './entry-domain.js';
import {
  LdapClosedError,
  LdapConnectError,
  LdapError,
  LdapLocalResourceError,
  LdapSearchError,
  LdapTimeoutError,
  LdapTlsError,
  LdapUnavailableError,
} from './errors.js';
import { buildFilter } from './escape.js';
import { LdapOutageLog } from './outage-log.js';
import type { OwnDomainAnswer } from '../policy/types.js';

export type { OwnDomainAnswer };

export interface LdapDirectoryOptions {
  /** Tried in order on every (re)connect; ldapts wants `ldap[s]://host[:port]`. */
  uris: readonly string[];
  /** Undefined: anonymous bind. */
  bindDn?: string | undefined;
  bindPw?: string | undefined;
  searchBase: string;
  /** Filter template with `%d`. */
  queryFilter: string;
  cacheTtlSeconds: number;
  negativeCacheTtlSeconds: number;
  /** Upper bound for one isOwnDomain() call, connecting included. */
  timeoutMs: number;
  logger?: Logger;
  /** Milliseconds clock for cache expiry, backoff and the outage log; Date.now by default. */
  now?: () => number;
  /** While LDAP is unavailable, a summary line at most this often (default 60 s). */
  outageSummaryEveryMs?: number;
  cacheMaxEntries?: number;
  backoff?: Partial<BackoffOptions>;
  random?: () => number;
  createClient?: LdapClientFactory;
  /** Connect in the background at construction (default true). */
  connectNow?: boolean;
  /** CA bundle and verification for ldaps:// and StartTLS. */
  tls?: LdapTlsOptions;
  /** Upgrade ldap:// URIs with StartTLS before binding; never bind in the clear when it fails. */
  startTls?: boolean;
  /**
   * LDAP_DKIM_ATTRIBUTE (with DMARC judged): every own-domain search also reads this attribute,
   * and an own domain's answer carries its values as `dkimDomains` (checked, bounded), cached
   * with the answer. Undefined: the search asks for no attribute, as before.
   */
  dkimAttribute?: string | undefined;
}

export interface ListDomainsOptions {
  /** Filter selecting every own-domain entry (LDAP_AUDIT_FILTER). */
  filter: string;
  /** Attribute holding the domain name; undefined: the value of the entry's RDN. */
  attribute?: string | undefined;
  pageSize?: number;
  /** Also read this attribute (e.g. `mail`, AUDIT_CONTACT_ATTRIBUTE): the contacts of each listed domain. */
  contactAttribute?: string | undefined;
  /** Also read the directory's dkimAttribute (LDAP_DKIM_ATTRIBUTE), for the audit's DMARC columns. */
  dkim?: boolean;
}

/** A listed own domain with the values of the contact attribute of its entry (unchecked: LDAP holds anything). */
export interface ListedDomain {
  domain: string;
  contacts: string[];
  /** With `dkim`: the entry's DKIM signing domains (checked, as isOwnDomain's). */
  dkimDomains?: string[];
}

/** What the cache holds for a domain: own or not and, with dkimAttribute, the own entry's signing domains. */
interface CachedAnswer {
  own: boolean;
  dkimDomains?: readonly string[];
}

/** An own-domain search with dkimAttribute: entries beyond the first few are not read (a domain is seldom listed twice). */
const DKIM_SEARCH_SIZE_LIMIT = 4;

export interface LdapDirectoryStats {
  lookups: number;
  cacheHits: number;
  /** Lookups that joined an identical one already in flight. */
  sharedLookups: number;
  searches: number;
  /** Failed lookups other than timeouts (each failed lookup counts in one of the two). */
  errors: number;
  /** Lookups that got no answer in time (our deadline, or the client's per-operation timeout). */
  timeouts: number;
  connectAttempts: number;
  connectFailures: number;
  /** Successful connections after the first one. */
  reconnects: number;
  connected: boolean;
}

interface Connection {
  client: LdapClient;
  uri: string;
}

const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 500, maxMs: 30_000, probeMs: 1000 };

/**
 * Our deadline, ldapts's per-operation timeout or the server's time limit: kind="timeout". Our
 * own errors say so by their code (a lookup refused during the backoff did not wait for
 * anything, whatever the last attempt's error said, nor did one that found no descriptor).
 */
function isTimeout(err: unknown): boolean {
  return err instanceof LdapError ? err.timedOut : isLdaptsTimeout(err);
}

/**
 * ldapts's errors carry no code for a timeout ("…: Operation timed out", "Connection timeout",
 * TimeLimitExceededError): the one place that reads a message, where its error is wrapped into ours.
 */
function isLdaptsTimeout(err: unknown): boolean {
  return err instanceof Error && /\btimed out\b|\btimeout\b|TimeLimitExceeded/i.test(`${err.name} ${err.message}`);
}

/** EMFILE (this process) or ENFILE (the system) on the error or its causes: no descriptor for a socket. */
function isFdExhaustion(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; e instanceof Error && depth < 4; depth++, e = e.cause) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EMFILE' || code === 'ENFILE') return true;
  }
  return false;
}

function reason(err: unknown): string {
  return err instanceof Error && err.name !== 'Error' ? `${err.name}: ${errorMessage(err)}` : errorMessage(err);
}

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

function isLoopbackUri(uri: string): boolean {
  const host = uriHost(uri).toLowerCase();
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** Domain names compare without regard to case; a trailing root dot changes nothing. */
function normaliseDomain(domain: string): string {
  return domain.trim().toLowerCase().replace(/\.$/, '');
}

export class LdapDomainDirectory {
  private readonly options: LdapDirectoryOptions;
  private readonly logger: Logger;
  private readonly outage: LdapOutageLog;
  private readonly now: () => number;
  private readonly backoff: BackoffOptions;
  private readonly createClient: LdapClientFactory;
  private readonly cache: LRUCache<string, CachedAnswer>;
  private readonly dkimValues: DkimValueChecker | undefined;
  private readonly inflight = new Map<string, Promise<OwnDomainAnswer>>();
  private readonly counters = {
    lookups: 0,
    cacheHits: 0,
    sharedLookups: 0,
    searches: 0,
    errors: 0,
    timeouts: 0,
    connectAttempts: 0,
    connectFailures: 0,
    reconnects: 0,
  };
  private conn: Connection | undefined;
  private connecting: Promise<Connection> | undefined;
  private everConnected = false;
  private failures = 0;
  private retryAt = 0;
  /** When the last connection attempt began (now() time); lookups probe again probeMs after it. */
  private lastAttemptAt = 0;
  private lastConnectError = '';
  /** The last connection attempt failed for want of a file descriptor on this host (on some URI). */
  private lastConnectLocalFault = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(options: LdapDirectoryOptions) {
    if (options.uris.length === 0) throw new LdapError('NO_SERVER_URI', 'no LDAP server URI given');
    this.options = options;
    this.logger = (options.logger ?? silentLogger()).child({ component: 'ldap' });
    this.now = options.now ?? Date.now;
    this.outage = new LdapOutageLog(this.logger, { now: this.now, summaryEveryMs: options.outageSummaryEveryMs });
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.createClient = options.createClient ?? ldaptsClientFactory;
    // Keys are domain names (at most 253 octets), so the entry bound is also a bound in bytes
    // (10,000 entries: about 3 MiB). ttlResolution 0: the injected clock is read on every get.
    this.dkimValues = options.dkimAttribute === undefined ? undefined : new DkimValueChecker(options.dkimAttribute, this.logger);
    this.cache = new LRUCache<string, CachedAnswer>({ max: Math.max(1, options.cacheMaxEntries ?? 10_000), ttlResolution: 0, perf: { now: this.now } });
    if (options.tls?.verify === false) {
      this.logger.warn({ setting: 'LDAP_TLS_VERIFY=false' }, 'LDAP TLS certificate and host name verification is OFF: anyone on the path can read the bind password');
    }
    const clearText = options.uris.filter((u) => !isLdapsUri(u) && !isLoopbackUri(u));
    if (options.bindPw !== undefined && !options.startTls && clearText.length > 0) {
      this.logger.warn({ uris: clearText }, 'the LDAP bind password goes over ldap:// in the clear; use ldaps:// or LDAP_STARTTLS=true');
    }
    if (options.connectNow ?? true) this.connectInBackground();
  }

  /**
   * Every own domain under the search base, page by page (RFC 2696 paged results) so that a
   * server size limit does not cut the list. Throws when LDAP fails: a partial list must
   * never pass for a complete one. Domains are lower case, without a trailing dot.
   */
  async *listOwnDomains(options: ListDomainsOptions): AsyncGenerator<string[]> {
    for await (const page of this.listOwnDomainContacts(options)) yield page.map((listed) => listed.domain);
  }

  /** listOwnDomains with each domain's contacts, read from the same entries in the same paged search. */
  async *listOwnDomainContacts(options: ListDomainsOptions): AsyncGenerator<ListedDomain[]> {
    const conn = await this.connection();
    const attribute = options.attribute;
    const contact = options.contactAttribute;
    const dkim = options.dkim ? this.options.dkimAttribute : undefined;
    const attributes = [...new Set([attribute, contact, dkim].filter((a): a is string => a !== undefined))];
    try {
      for await (const page of conn.client.listEntries(this.options.searchBase, {
        filter: options.filter,
        attributes: attributes.length === 0 ? ['1.1'] : attributes,
        // Below OpenLDAP's default size limit (500) and Active Directory's MaxPageSize (1000).
        pageSize: options.pageSize ?? 200,
        timeLimit: Math.max(1, Math.ceil(this.options.timeoutMs / 1000)),
      })) {
        this.counters.searches++;
        yield page.flatMap((entry) => {
          const contacts = contact === undefined ? [] : (entry.attributes[contact.toLowerCase()] ?? []);
          return domainsOfEntry(entry, attribute)
            .map(normaliseDomain)
            .filter((d) => d !== '')
            .map((domain): ListedDomain => {
              if (dkim === undefined || this.dkimValues === undefined) return { domain, contacts };
              return { domain, contacts, dkimDomains: this.dkimValues.domains(domain, entry.attributes[dkim.toLowerCase()] ?? []) };
            });
        });
      }
    } catch (err) {
      if (!conn.client.isConnected) this.dropConnection(conn, reason(err));
      throw new LdapSearchError(`listing own domains on ${conn.uri} failed: ${reason(err)}`, { cause: err, timedOut: isLdaptsTimeout(err) });
    }
  }

  /** The cached answer for `domain`, without waiting; undefined when only a search (or isOwnDomain's refusal) can tell. */
  isOwnDomainNow(domain: string): OwnDomainAnswer | undefined {
    const key = normaliseDomain(domain);
    if (key === '' || CONTROL_CHARS.test(domain)) return undefined;
    const answer = this.fromCache(key);
    if (answer) this.counters.lookups++;
    return answer;
  }

  async isOwnDomain(domain: string): Promise<OwnDomainAnswer> {
    this.counters.lookups++;
    const key = normaliseDomain(domain);
    if (key === '') return this.refused(key, 'empty domain');
    // No domain name holds control characters; slapd would even cut a value at NUL and
    // match the truncated name, so such input never reaches the server.
    if (CONTROL_CHARS.test(domain)) return this.refused(JSON.stringify(domain), 'domain contains control characters');
    const cached = this.fromCache(key);
    if (cached) return cached;
    const running = this.inflight.get(key);
    if (running) {
      this.counters.sharedLookups++;
      return running;
    }
    const lookup = this.lookupWithDeadline(key).finally(() => this.inflight.delete(key));
    this.inflight.set(key, lookup);
    return lookup;
  }

  /** A cached answer, counted as a hit; undefined when the cache holds none. */
  private fromCache(key: string): OwnDomainAnswer | undefined {
    const cached = this.cache.get(key);
    if (cached === undefined) return undefined;
    this.counters.cacheHits++;
    return cached.dkimDomains === undefined ? { own: cached.own, source: 'cache' } : { own: cached.own, source: 'cache', dkimDomains: cached.dkimDomains };
  }

  stats(): LdapDirectoryStats {
    return { ...this.counters, connected: this.conn?.client.isConnected ?? false };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.cache.clear();
    const conn = this.conn;
    this.conn = undefined;
    if (conn) await conn.client.unbind().catch(() => undefined);
  }

  private async lookupWithDeadline(key: string): Promise<OwnDomainAnswer> {
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.options.timeoutMs);
    });
    const work = this.query(key).then(
      (found): OwnDomainAnswer => {
        // Cached even when the deadline has passed: the answer is still right for the next one.
        const ttl = (found.own ? this.options.cacheTtlSeconds : this.options.negativeCacheTtlSeconds) * 1000;
        if (!this.closed && ttl > 0) this.cache.set(key, found, { ttl });
        return found.dkimDomains === undefined ? { own: found.own, source: 'ldap' } : { own: found.own, source: 'ldap', dkimDomains: found.dkimDomains };
      },
      // After the deadline nobody waits for this answer: do not count or log it twice.
      (err: unknown): OwnDomainAnswer => (timedOut ? { own: false, source: 'error', error: reason(err) } : this.errorAnswer(key, err)),
    );
    const first = await Promise.race([work, deadline]);
    clearTimeout(timer);
    if (first !== 'timeout') return first;
    timedOut = true;
    // The slow operation is abandoned, not cancelled: ldapts's own timeout tears it down.
    return this.errorAnswer(key, new LdapTimeoutError(`no answer within ${this.options.timeoutMs} ms`));
  }

  /** A lookup LDAP could not answer: counted once, by kind, and told to the outage log. */
  private errorAnswer(domain: string, err: unknown): OwnDomainAnswer {
    if (isTimeout(err)) this.counters.timeouts++;
    else this.counters.errors++;
    const error = reason(err);
    this.outage.lookupFailed(domain, error);
    return err instanceof LdapLocalResourceError ? { own: false, source: 'error', error, localFault: true } : { own: false, source: 'error', error };
  }

  /** A domain no server is asked about (empty, control characters): the input's fault, not LDAP's. */
  private refused(domain: string, why: string): OwnDomainAnswer {
    this.counters.errors++;
    const error = reason(new LdapError('BAD_DOMAIN', why));
    this.logger.warn({ domain, error }, 'LDAP own-domain lookup failed; treating the domain as not own');
    return { own: false, source: 'error', error };
  }

  private async query(key: string): Promise<CachedAnswer> {
    const conn = await this.connection();
    const filter = buildFilter(this.options.queryFilter, key);
    const timeLimit = Math.max(1, Math.ceil(this.options.timeoutMs / 1000));
    const dkim = this.options.dkimAttribute;
    try {
      let found: CachedAnswer;
      if (dkim === undefined || this.dkimValues === undefined) {
        const count = await conn.client.countEntries(this.options.searchBase, { scope: 'sub', filter, sizeLimit: 1, timeLimit, attributes: ['1.1'] });
        found = { own: count > 0 };
      } else {
        // The same one search answers both: is the domain own, and which domains sign for it.
        const { entries, sizeLimitExceeded } = await conn.client.searchEntries(this.options.searchBase, {
          scope: 'sub',
          filter,
          sizeLimit: DKIM_SEARCH_SIZE_LIMIT,
          timeLimit,
          attributes: [dkim],
        });
        const own = sizeLimitExceeded || entries.length > 0;
        const values = entries.flatMap((e) => e.attributes[dkim.toLowerCase()] ?? []);
        found = own ? { own, dkimDomains: this.dkimValues.domains(key, values) } : { own };
        if (sizeLimitExceeded) this.logger.debug({ domain: key, filter }, `more than ${DKIM_SEARCH_SIZE_LIMIT} entries match: own, ${dkim} not read`);
      }
      this.counters.searches++;
      this.outage.succeeded();
      this.logger.debug({ domain: key, filter, own: found.own, dkimDomains: found.dkimDomains?.join(','), uri: conn.uri }, 'LDAP own-domain lookup');
      return found;
    } catch (err) {
      // A lost connection is replaced on the next lookup; a server-side error keeps it.
      if (!conn.client.isConnected) this.dropConnection(conn, reason(err));
      // ldapts reconnects by itself when it finds the socket closed: that can find no descriptor too.
      if (isFdExhaustion(err)) throw new LdapLocalResourceError(`search on ${conn.uri} found no file descriptor: ${reason(err)}`, { cause: err });
      throw new LdapSearchError(`search on ${conn.uri} failed: ${reason(err)}`, { cause: err, timedOut: isLdaptsTimeout(err) });
    }
  }

  private connection(): Promise<Connection> {
    if (this.closed) return Promise.reject(new LdapClosedError('directory closed'));
    if (this.conn) {
      if (this.conn.client.isConnected) return Promise.resolve(this.conn);
      this.dropConnection(this.conn, 'connection closed by the server');
    }
    if (this.connecting) {
      // During an outage only the lookup that started an attempt waits for it: against a
      // server that accepts and never answers, the others would all wait out the timeout.
      if (this.failures > 0) return Promise.reject(this.unavailable(`an attempt is under way (last error: ${this.lastConnectError})`));
      return this.connecting;
    }
    const now = this.now();
    const wait = Math.min(this.retryAt - now, this.lastAttemptAt + this.backoff.probeMs - now);
    if (wait > 0) {
      return Promise.reject(this.unavailable(`next attempt in ${wait} ms (last error: ${this.lastConnectError})`));
    }
    this.connecting = this.connectAny().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  /**
   * A lookup refused while the last attempt's failure stands. When that attempt found no file
   * descriptor, the refusal is the same local fault: passing the domain as "not own" for the
   * second until the next probe would be the silent pass a local fault must never be.
   */
  private unavailable(detail: string): LdapError {
    return this.lastConnectLocalFault
      ? new LdapLocalResourceError(`no LDAP connection: the last attempt found no file descriptor, ${detail}`)
      : new LdapUnavailableError(`no LDAP server reachable, ${detail}`);
  }

  private connectInBackground(): void {
    this.connection().catch(() => undefined); // failures are logged and scheduled for retry
  }

  private async connectAny(): Promise<Connection> {
    this.counters.connectAttempts++;
    this.lastAttemptAt = this.now();
    const { bindDn, bindPw, uris, timeoutMs } = this.options;
    const failures: string[] = [];
    let timedOut = false;
    let localFault = false;
    for (const uri of uris) {
      const client = this.createClient(uri, timeoutMs, this.options.tls);
      if (this.options.startTls && !isLdapsUri(uri)) {
        try {
          await client.startTls();
        } catch (err) {
          // RFC 4513 §3: a failed StartTLS leaves a plain connection; the bind (and its
          // password) must not go over it.
          const why = new LdapTlsError(`StartTLS failed, not binding without TLS: ${reason(err)}`, { cause: err });
          timedOut ||= isLdaptsTimeout(err);
          failures.push(`${uri}: ${reason(why)}`);
          localFault ||= isFdExhaustion(err);
          client.unbind().catch(() => undefined);
          continue;
        }
      }
      try {
        await client.bind(bindDn ?? '', bindDn === undefined ? '' : (bindPw ?? ''));
      } catch (err) {
        failures.push(`${uri}: ${reason(err)}`);
        timedOut ||= isLdaptsTimeout(err);
        localFault ||= isFdExhaustion(err);
        client.unbind().catch(() => undefined);
        continue;
      }
      if (this.closed) {
        await client.unbind().catch(() => undefined);
        throw new LdapClosedError('directory closed');
      }
      const conn = { client, uri };
      this.conn = conn;
      if (this.everConnected) this.counters.reconnects++;
      this.everConnected = true;
      this.failures = 0;
      this.lastConnectLocalFault = false;
      this.retryAt = 0;
      clearTimeout(this.retryTimer);
      const transport = isLdapsUri(uri) ? 'ldaps' : this.options.startTls ? 'starttls' : 'plain';
      this.logger.info({ uri, bindDn: bindDn ?? '(anonymous)', tls: transport, verify: this.options.tls?.verify ?? true }, 'connected to LDAP');
      return conn;
    }
    this.counters.connectFailures++;
    this.failures++;
    this.lastConnectError = failures.join('; ');
    this.lastConnectLocalFault = localFault;
    const delay = backoffDelay(this.failures, this.backoff, this.options.random);
    this.retryAt = this.now() + delay;
    this.outage.connectFailed(failures, delay);
    this.scheduleRetry(delay);
    if (localFault) throw new LdapLocalResourceError(`no LDAP connection could be opened (too many open files): ${this.lastConnectError}`);
    throw new LdapConnectError(`no LDAP server reachable: ${this.lastConnectError}`, { timedOut });
  }

  /** Reconnects on its own after the backoff, so the next lookup finds a connection ready. */
  private scheduleRetry(delay: number): void {
    clearTimeout(this.retryTimer);
    if (this.closed) return;
    this.retryTimer = setTimeout(() => {
      if (!this.closed && !this.conn && !this.connecting) this.connectInBackground();
    }, delay);
    this.retryTimer.unref();
  }

  private dropConnection(conn: Connection, why: string): void {
    if (this.conn !== conn) return;
    this.conn = undefined;
    // Not yet an outage: the next lookup reconnects, and says so in the log if it cannot.
    this.logger.info({ uri: conn.uri, reason: why }, 'LDAP connection lost; reconnecting');
    conn.client.unbind().catch(() => undefined);
  }
}
