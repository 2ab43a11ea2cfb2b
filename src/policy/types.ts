/**
 * The judgement's vocabulary: what the policy is told (settings, ports) and what it answers
 * (Assessment, then Outcome in decide.ts). Every type here has this module as its one owner;
 * the configuration and the adapters (DNS/SPF, LDAP) import them from here.
 */
import type { EffectiveRecord, SpfCheck, SpfResult } from '../spf/index.js';

/** MILTER_MODE: `test` logs (and marks own domains), `reject` refuses, `rewrite` sends with an SRS envelope sender. */
export type MilterMode = 'test' | 'reject' | 'rewrite';

/** SRS_REWRITE: the violations rewrite mode rewrites (the others it rejects). */
export type RewriteScope = 'foreign' | 'own' | 'both';

/**
 * What the policy asks of the Sender Rewriting Scheme (src/srs's Srs fits it): the SRS address
 * for a sender, or why there is none (null sender, quoted local part, over 64 octets, ...).
 */
export interface SenderRewriter {
  forward(sender: string): { ok: true; address: string } | { ok: false; reason: string; detail: string };
}
/** SPF_CHECK: compare the record with SPF_REGEX, or evaluate it for the relays (RFC 7208). */
export type SpfCheckMode = 'regex' | 'evaluate';

/** The subset of the configuration the decision needs; plain values, no environment. */
export interface PolicySettings {
  mode: MilterMode;
  check: SpfCheckMode;
  spfRegex: { matches(recordText: string): boolean };
  outboundIps: readonly string[];
  violationResults: ReadonlySet<SpfResult>;
  /** Rewrite mode's SRS_REWRITE; when not `both`, ownership decides a violation's outcome. */
  rewriteScope?: RewriteScope;
}

/** Lets the caller stop work it no longer needs (deadline, message abandoned by the MTA). */
export interface CancelOptions {
  signal?: AbortSignal;
}

/** What the policy asks of the SPF evaluator. */
export interface SpfPort {
  /** A fired `signal` rejects with EvaluationAbortedError (src/spf) and stops the DNS work behind it. */
  effectiveRecord(domain: string, options?: CancelOptions): Promise<EffectiveRecord>;
  /** effectiveRecord's answer when it is known without waiting (all its DNS answers cached), else undefined. */
  effectiveRecordNow?(domain: string): EffectiveRecord | undefined;
  checkHostForIps(sender: string, helo: string, ips: string[], options?: CancelOptions): Promise<Map<string, SpfCheck>>;
}

export interface OwnDomainAnswer {
  own: boolean;
  source: 'ldap' | 'cache' | 'error';
  error?: string;
  /**
   * error only: the directory was never asked, for want of a resource on this host (no file
   * descriptor for the connection). Says nothing about the domain: the policy does not read
   * it as "not own" where that would pass a message (see FailOpenAssessment.localFault).
   */
  localFault?: true;
  /**
   * Own domains only, when LDAP_DKIM_ATTRIBUTE is set: the DKIM signing domains (d=) the
   * attribute names on the domain's entry, checked domain names (lower case, bounded).
   */
  dkimDomains?: readonly string[];
}

/** What the policy asks of the directory of own (customer) domains. */
export interface OwnDomainPort {
  isOwnDomain(domain: string): Promise<OwnDomainAnswer>;
  /** isOwnDomain's answer when it is known without waiting (cached), else undefined. */
  isOwnDomainNow?(domain: string): OwnDomainAnswer | undefined;
}

export type Ownership = 'own' | 'foreign' | 'unknown' | 'not-asked';

export interface OutboundResult {
  ip: string;
  result: SpfResult;
  reason: string;
  /** temperror for want of a local resource (see FailOpenAssessment.localFault). */
  localFault?: true;
}

/** What the regex check makes of the effective record. */
export type RegexResult = 'restrictive' | 'not-restrictive';
/** Results after which nothing can be judged: no policy, a broken one, or DNS failing. */
export type FailOpenResult = 'none' | 'permerror' | 'temperror';

/** What every judged assessment carries: the domain, the check and what was found. */
interface Judged {
  domain: string;
  check: SpfCheckMode;
  ownership: Ownership;
  /** Why ownership is unknown (LDAP error), for the log. */
  ownershipError?: string;
  /** The effective record's text (after redirect), when one was found. */
  record?: string;
  /** Domain whose record is effective (differs from `domain` after redirect=). */
  recordDomain?: string;
  /** evaluate: check_host() for each outbound address. */
  outbound?: readonly OutboundResult[];
  reason: string;
}

/** The sender's policy permits the relays (or says nothing restrictive). */
export interface PassAssessment extends Judged {
  kind: 'pass';
  result: RegexResult | SpfResult;
}

/** The sender's policy does not permit the relays, or an own domain's record is broken. */
export interface ViolationAssessment extends Judged {
  kind: 'violation';
  result: 'restrictive' | SpfResult;
  /** Short text for the reject sentence: `-all`, or e.g. `fail for 192.0.2.1`. */
  detail: string;
}

/** The policy could not be judged (no record, permerror, DNS failure, deadline): the message passes, logged at warning. */
export interface FailOpenAssessment extends Judged {
  kind: 'fail-open';
  result: FailOpenResult;
  /**
   * temperror only: the policy was never asked, because this host lacked a resource for the
   * lookup (no file descriptor). Not the sender's DNS failing: in reject mode the message is
   * deferred (tempfail), never passed unjudged.
   */
  localFault?: true;
}

/** The null sender or a sender without a usable domain: nothing to look up. */
export interface NotJudgedAssessment {
  kind: 'not-judged';
  reason: string;
}

export type Assessment = NotJudgedAssessment | PassAssessment | ViolationAssessment | FailOpenAssessment;
export type JudgedAssessment = Exclude<Assessment, NotJudgedAssessment>;
