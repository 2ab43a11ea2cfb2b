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
}

export type DnsErrorCode =
  | 'SERVFAIL' // upstream could not answer: temporary
  | 'REFUSED' // upstream will not answer: temporary
  | 'TIMEOUT' // no answer within the timeout and retries: temporary
  | 'NETWORK' // socket error talking to every server: temporary
  | 'FORMERR' // upstream or answer malformed: temporary
  | 'BADNAME'; // the name cannot be sent (label > 63 octets, name > 253, empty label): no match

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

  /** Temporary errors map to SPF temperror; BADNAME is a permanent "no match". */
  get temporary(): boolean {
    return this.code !== 'BADNAME';
  }
}

export interface Resolver {
  lookup<T extends RRType>(name: string, type: T): Promise<LookupResult<RecordTypeMap[T]>>;
}
