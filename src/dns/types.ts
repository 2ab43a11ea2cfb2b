/**
 * The DNS contract shared by the SPF evaluator, the caching stub resolver and the
 * in-process fake resolvers used by unit tests and the conformance-suite runner.
 *
 * NXDOMAIN and NODATA are answers, not errors: both come back as a LookupResult with no
 * records, and RFC 7208 counts both as void lookups. Everything that is not an answer
 * (SERVFAIL, REFUSED, timeouts, a name no resolver can send) is thrown as a DnsError.
 */

export type RRType = 'TXT' | 'A' | 'AAAA' | 'MX' | 'PTR';

export interface MxRecord {
  priority: number;
  /** Exchange host name, lower case is not guaranteed, no trailing dot. */
  exchange: string;
}

/**
 * A TXT record is the list of its character-strings. Each string holds one JS char per
 * octet (latin1), so non-ASCII and control octets survive unchanged and can be judged
 * by the SPF parser.
 */
export type TxtRecord = string[];

export interface RecordTypeMap {
  TXT: TxtRecord;
  A: string;
  AAAA: string;
  MX: MxRecord;
  PTR: string;
}

export interface LookupResult<T> {
  records: T[];
  /** true when the name does not exist (NXDOMAIN); false with no records is NODATA. */
  nxdomain: boolean;
  /** Seconds the answer may be cached (minimum of the answer's TTLs, or the SOA minimum for negative answers). */
  ttl: number;
  /**
   * TXT only: records the answer held but `records` leaves out because SPF cannot use them
   * (see txt-bound.ts), by kind. Absent when nothing was left out.
   */
  omitted?: OmittedTxt;
}

/** What the TXT bound left out of an answer: enough for RFC 7208's record counting rules. */
export interface OmittedTxt {
  /** Records starting with "v=spf1" that were left out (too large, or one of several). */
  spf: number;
  /** Other records left out (too large for an explanation, or one of several). */
  other: number;
  /** Records starting with "v=DMARC1" that were left out (too large, or one of several); absent when none. */
  dmarc?: number;
}

/** Per-lookup options: `signal` abandons the lookup (it rejects with DnsError code ABORTED). */
export interface LookupOptions {
  signal?: AbortSignal | undefined;
}

/** Why a lookup failed: the stable `code` of a DnsError, which callers branch on (never on its message). */
export type DnsErrorCode =
  | 'SERVFAIL' // upstream could not answer: temporary
  | 'REFUSED' // upstream will not answer: temporary
  | 'TIMEOUT' // no answer within the timeout and retries: temporary
  | 'NETWORK' // socket error talking to every server: temporary
  | 'LOCAL_RESOURCE' // this process could not open a socket (EMFILE/ENFILE: too many open files): temporary, says nothing about the name
  | 'FORMERR' // upstream or answer malformed: temporary
  | 'BADNAME' // the name cannot be sent (label > 63 octets, name > 253, empty label): no match
  | 'ABORTED'; // the caller's signal abandoned the lookup: not an answer, never cached

export class DnsError extends Error {
  readonly code: DnsErrorCode;
  readonly qname: string;
  readonly qtype: RRType;

  constructor(code: DnsErrorCode, qname: string, qtype: RRType, detail?: string) {
    super(`DNS ${qtype} ${qname}: ${code}${detail ? ` (${detail})` : ''}`);
    this.name = 'DnsError';
    this.code = code;
    this.qname = qname;
    this.qtype = qtype;
  }

  /**
   * The lookup failed for want of a resource on this host (a file descriptor), not because of
   * the name or the servers: nobody was asked. Not cached; the caller may not read it as an
   * ordinary DNS failure.
   */
  get localFault(): boolean {
    return this.code === 'LOCAL_RESOURCE';
  }

  /** Temporary errors map to SPF temperror; BADNAME is a permanent "no match"; ABORTED is neither. */
  get temporary(): boolean {
    return this.code !== 'BADNAME' && this.code !== 'ABORTED';
  }
}

/** The error for a lookup abandoned through its signal. */
export function abortedError(qname: string, qtype: RRType): DnsError {
  return new DnsError('ABORTED', qname, qtype, 'abandoned by the caller');
}

/**
 * Answer identity: a resolver that caches resolves `lookup` with the very LookupResult object
 * (and so the very `records` array) it holds for the question, on every hit for as long as it
 * keeps that entry, and `cachedAnswer` returns that same object. An answer never changes once
 * handed out. Consumers may therefore memoise what they derive from an answer on its identity
 * (the SPF evaluator keeps each TXT answer's parsed record in a WeakMap keyed on `records`, and
 * its effective-record memo compares answers by identity) and must not mutate answers.
 */
export interface Resolver {
  lookup<T extends RRType>(name: string, type: T, options?: LookupOptions): Promise<LookupResult<RecordTypeMap[T]>>;
  /**
   * A cache's answer to the question now, without asking anyone and without waiting: the very
   * object `lookup` would resolve with, or undefined when it holds none (nor an error is
   * reported here). A cache returns the same object for as long as it keeps the answer, so
   * identity tells a caller whether an answer it read before is still the current one.
   */
  cachedAnswer?<T extends RRType>(name: string, type: T): LookupResult<RecordTypeMap[T]> | undefined;
}
