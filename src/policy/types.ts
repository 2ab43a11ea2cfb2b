import type { EffectiveRecord, SpfCheck, SpfResult } from '../spf/index.js';

export type MilterMode = 'test' | 'reject';
export type SpfCheckMode = 'regex' | 'evaluate';

/** The subset of the configuration the decision needs; plain values, no environment. */
export interface PolicySettings {
  mode: MilterMode;
  check: SpfCheckMode;
  spfRegex: { matches(recordText: string): boolean };
  outboundIps: readonly string[];
  violationResults: ReadonlySet<SpfResult>;
}

/** What the policy asks of the SPF evaluator. */
export interface SpfPort {
  /** A fired `signal` rejects with an error whose `code` is 'ABORTED' and stops the DNS work behind it. */
  effectiveRecord(domain: string, options?: { signal?: AbortSignal }): Promise<EffectiveRecord>;
  checkHostForIps(sender: string, helo: string, ips: string[], options?: { signal?: AbortSignal }): Promise<Map<string, SpfCheck>>;
}

export interface OwnDomainAnswer {
  own: boolean;
  source: 'ldap' | 'cache' | 'error';
  error?: string;
}

/** What the policy asks of the directory of own (customer) domains. */
export interface OwnDomainPort {
  isOwnDomain(domain: string): Promise<OwnDomainAnswer>;
}

export type Ownership = 'own' | 'foreign' | 'unknown' | 'not-asked';

export interface OutboundResult {
  ip: string;
  result: SpfResult;
  reason: string;
}

/** The SPF side of a judgement, computed once per message as soon as the sender is known. */
export interface Assessment {
  domain: string;
  check: SpfCheckMode;
  ownership: Ownership;
  /** Why ownership is unknown (LDAP error), for the log. */
  ownershipError?: string;
  /** The effective record's text (after redirect), when one was found. */
  record?: string;
  /** Domain whose record is effective (differs from `domain` after redirect=). */
  recordDomain?: string;
  /** regex: `restrictive`, `not-restrictive`, `none`, `permerror`, `temperror`; evaluate: the worst SPF result. */
  result: string;
  violation: boolean;
  /** The record could not be judged (no record, permerror, DNS failure): no violation, logged at warning. */
  failOpen: boolean;
  /** Short text for the reject sentence: `-all`, or e.g. `fail for 192.0.2.1`. */
  detail: string;
  reason: string;
  outbound?: OutboundResult[];
}

export type Action = 'none' | 'pass' | 'pass-ignored-next-hop' | 'reject' | 'log' | 'tag';
