/**
 * What an evaluation did, as plain JSON-serialisable data: logs, metrics and the CLI read it.
 */

export type SpfResult = 'pass' | 'fail' | 'softfail' | 'neutral' | 'none' | 'permerror' | 'temperror';

/** One DNS question the evaluator asked (logical: a cache below may have answered it). */
export interface DnsQueryTrace {
  name: string;
  type: string;
  /** answer: records came back; nxdomain/nodata: void; error: temporary DNS failure; badname: not sendable. */
  outcome: 'answer' | 'nxdomain' | 'nodata' | 'error' | 'badname';
  /** Number of records in the answer. */
  answers: number;
  /** Whether this lookup was counted against the void-lookup limit. */
  void: boolean;
  /** DNS error code for outcome "error". */
  error?: string;
}

/** One check_host() run on one domain: the top-level one, an include, or a redirect. */
export interface SpfTraceNode {
  domain: string;
  via: 'check_host' | 'include' | 'redirect';
  /** The include/redirect term that led here, as written in the parent record. */
  term?: string;
  /** The record text evaluated at this domain. */
  record?: string;
  result?: SpfResult;
  /** The term that decided this node's result (mechanism text, or the redirect= term). */
  matched?: string;
  reason?: string;
  children: SpfTraceNode[];
}

export interface SpfTrace {
  ip: string;
  /** The <sender> used (postmaster@helo for a null reverse-path). */
  sender: string;
  /** The <domain> check_host() started with. */
  domain: string;
  helo: string;
  result: SpfResult;
  /** The term that decided the result and the domain whose record holds it. */
  matched?: { term: string; domain: string };
  root?: SpfTraceNode;
  queries: DnsQueryTrace[];
  /** DNS-querying terms used (RFC 7208 §4.6.4 limit, default 10). */
  dnsTerms: number;
  voidLookups: number;
  explanation?: string;
  /** Where the explanation came from: the exp= of the deciding record, or the receiver default. */
  explanationSource?: 'exp' | 'default';
  reason: string;
}
