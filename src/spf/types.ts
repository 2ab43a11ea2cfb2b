import type { LookupResult, TxtRecord } from '../dns/types.js';

/**
 * The SPF module's data types, in one place: the parsed record (RFC 7208 §4.6, §5, §6, §7),
 * the results and traces of an evaluation, and the effective record. Types only: every other
 * module of src/spf imports from here, and this module imports from none of them.
 */

/* ---- The parsed form of an SPF record ---- */

export type Qualifier = '+' | '-' | '~' | '?';

export type MechanismName = 'all' | 'include' | 'a' | 'mx' | 'ptr' | 'ip4' | 'ip6' | 'exists';

/** One piece of a macro-string (RFC 7208 §7.1). */
export type MacroToken =
  | { kind: 'literal'; text: string }
  | {
      kind: 'macro';
      /** Lower-case macro letter: s l o d i p h v c r t. */
      letter: string;
      /** Upper-case letter in the source: URL-escape the value. */
      escape: boolean;
      /** Number of right-hand parts to keep; 0 keeps all. */
      keep: number;
      reverse: boolean;
      /** Characters to split on; "." when none were given. */
      delimiters: string;
    };

export interface MacroString {
  /** The source text. */
  text: string;
  tokens: MacroToken[];
  /** Whether any %{…} expansion occurs (otherwise the literal is the value). */
  hasMacros: boolean;
  /** Whether %{p} occurs: expansion needs PTR validation first. */
  usesPtr: boolean;
  /** The text ends in a macro-expand (%{…}, %%, %_ or %-): a valid domain-end. */
  endsWithMacro: boolean;
}

interface TermBase {
  /** The term exactly as written in the record. */
  text: string;
  /** Offset of the term in the record text. */
  position: number;
}

interface MechanismBase<N extends MechanismName> extends TermBase {
  kind: 'mechanism';
  name: N;
  qualifier: Qualifier;
}

/** RFC 7208 §5.1: matches any client. */
export type AllMechanism = MechanismBase<'all'>;

/** RFC 7208 §5.2: the result of check_host() on the target; the domain-spec is required. */
export interface IncludeMechanism extends MechanismBase<'include'> {
  domainSpec: MacroString;
}

/** RFC 7208 §5.3 (a), §5.4 (mx): the target's addresses, compared under the dual-cidr-length. */
interface AddressMechanism<N extends 'a' | 'mx'> extends MechanismBase<N> {
  /** The target; the current <domain> when not written. */
  domainSpec?: MacroString;
  /** IPv4 prefix length, 32 when not written. */
  cidr4: number;
  /** IPv6 prefix length, 128 when not written. */
  cidr6: number;
}
export type AMechanism = AddressMechanism<'a'>;
export type MxMechanism = AddressMechanism<'mx'>;

/** RFC 7208 §5.5: a validated PTR name of the client under the target. */
export interface PtrMechanism extends MechanismBase<'ptr'> {
  /** The target; the current <domain> when not written. */
  domainSpec?: MacroString;
}

/** RFC 7208 §5.6: the client is in the network. */
export interface Ip4Mechanism extends MechanismBase<'ip4'> {
  /** The network as written and as 4 octets. */
  network: string;
  networkBytes: Uint8Array;
  /** Prefix length, 32 when not written. */
  cidr4: number;
}

/** RFC 7208 §5.6: the client is in the network. */
export interface Ip6Mechanism extends MechanismBase<'ip6'> {
  /** The network as written and as 16 octets. */
  network: string;
  networkBytes: Uint8Array;
  /** Prefix length, 128 when not written. */
  cidr6: number;
}

/** RFC 7208 §5.7: the target has an A record; the domain-spec is required. */
export interface ExistsMechanism extends MechanismBase<'exists'> {
  domainSpec: MacroString;
}

/** One mechanism (RFC 7208 §5), discriminated by `name`: each carries exactly the fields it needs. */
export type MechanismTerm = AllMechanism | IncludeMechanism | AMechanism | MxMechanism | PtrMechanism | Ip4Mechanism | Ip6Mechanism | ExistsMechanism;

/** The mechanisms that query DNS, each one of the 10 DNS-querying terms (RFC 7208 §4.6.4). */
export type DnsMechanism = IncludeMechanism | AMechanism | MxMechanism | PtrMechanism | ExistsMechanism;

/** RFC 7208 §6 (redirect=, exp=) and §6.3's unknown modifiers, which are ignored. */
export interface ModifierTerm extends TermBase {
  kind: 'modifier';
  /** Lower-case modifier name (redirect, exp, or any unknown name). */
  name: string;
  value: MacroString;
}

export type SpfTerm = MechanismTerm | ModifierTerm;

export interface SpfRecord {
  /** The record text (strings joined). */
  text: string;
  /** All terms in order. */
  terms: readonly SpfTerm[];
  mechanisms: readonly MechanismTerm[];
  redirect?: ModifierTerm;
  exp?: ModifierTerm;
  /** The record has an `all` mechanism (so any redirect= is ignored, RFC 7208 §6.1). */
  hasAll: boolean;
}

/* ---- What an evaluation did, as plain JSON-serialisable data: logs, metrics and the CLI read it ---- */

/** RFC 7208 §2.6. */
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

/* ---- check_host() (RFC 7208 §4) and the effective record ---- */

export interface CheckHostInput {
  ip: string;
  /** MAIL FROM; '' for the null reverse-path (then postmaster@helo is checked). */
  sender: string;
  helo: string;
  /** The <domain> to check; the sender's domain (or the HELO for a null sender) by default. */
  domain?: string;
}

/** Per-call options: `signal` abandons the evaluation (it rejects with EvaluationAbortedError, code ABORTED). */
export interface EvaluationOptions {
  signal?: AbortSignal | undefined;
}

/** check_host()'s answer (RFC 7208 §2.6 results, §6.2 explanation) and what led to it. */
export interface SpfCheck {
  result: SpfResult;
  /**
   * temperror only: a DNS lookup could not even be sent, for want of a resource on this host
   * (no file descriptor), not because of the domain's DNS. Absent otherwise.
   */
  localFault?: true;
  /** Set for fail results: the exp= text of the deciding record, or the default explanation. */
  explanation?: string;
  reason: string;
  trace: SpfTrace;
}

/** The record that decides for a domain whatever the client (RFC 7208 §6.1: after its redirects). */
export interface EffectiveRecord {
  status: 'found' | 'none' | 'permerror' | 'temperror';
  /** The domain whose record is effective (after redirects). */
  domain: string;
  /** That record's text as published (strings joined). */
  text?: string;
  record?: SpfRecord;
  /** Queried domain first, then each redirect target. */
  chain: { domain: string; text?: string }[];
  /** Why none/permerror/temperror, or how the record was found. */
  reason: string;
  /** temperror only: as SpfCheck.localFault, the lookup failed for want of a local resource. */
  localFault?: true;
}

/**
 * The SPF record a TXT answer holds (RFC 7208 §4.5). `answer`: the TXT answer the selection
 * was read from (absent when there was none to read).
 */
export type RecordSelection =
  | { status: 'found'; text: string; record: SpfRecord; answer?: LookupResult<TxtRecord> }
  | { status: 'none' | 'permerror' | 'temperror'; text?: string; reason: string; answer?: LookupResult<TxtRecord>; localFault?: true };
