/**
 * The audit's history in plain values: what one run found per domain, how that compares
 * with what the history knew, and the notifications a change owes. Nothing here knows LDAP,
 * DNS or a database: the store (store.ts) keeps these values, the audit command fills them.
 */

/** The audit's status of a domain (README, "Audit"). */
export type AuditStatus = 'pass' | 'fail' | 'unjudged';

/** One domain as one run found it: what the store keeps and what a notification tells. */
export interface DomainOutcome {
  domain: string;
  status: AuditStatus;
  /** The assessment's result (fail, softfail, none, permerror, temperror, ...). */
  result: string;
  /**
   * The run could not tell (DNS failed, a local fault): the domain keeps its last known
   * state, no change is recorded and nobody is notified. A DNS hiccup is not news for a customer.
   */
  unknown: boolean;
  /** The record the domain publishes, as published; null: none. */
  record: string | null;
  reason: string;
  /** The suggested record, when a remedy exists. */
  suggested: string | null;
  /** The remedy in words: the change, or why none exists. */
  remedy: string | null;
  /** DNS-querying terms the record spends (worst case) and the limit; null when unknown. */
  lookups: { used: number; limit: number; warning?: string } | null;
  /** The contact addresses from LDAP (the configured attribute), as found: validated before use. */
  contacts: readonly string[];
}

/** What the history knew of a domain before this run. */
export interface KnownState {
  broken: boolean;
  status: AuditStatus;
  /** When the domain last turned broken or fixed (ISO 8601), or was first seen. */
  since: string;
}

/**
 * - newly-broken: passed before (or first seen) and does not pass now;
 * - fixed: did not pass before and passes now;
 * - still-broken: did not pass before and does not now (`since` says from when);
 * - unchanged: passed before and passes now (or first seen passing);
 * - unknown: not judged this run (DNS failure): the last known state is kept.
 */
export type ChangeKind = 'newly-broken' | 'fixed' | 'still-broken' | 'unchanged' | 'unknown';

export interface DomainChange {
  domain: string;
  kind: ChangeKind;
  /** Since when the domain is in its current state (ISO 8601). */
  since: string;
  /** The status before this run; undefined: first seen. */
  previous?: AuditStatus;
  outcome: DomainOutcome;
}

export type Channel = 'webhook' | 'email';

/** A notification owed for a change, as kept in the outbox until it is delivered. */
export interface OutboxEntry {
  id: number;
  runId: number;
  domain: string;
  channel: Channel;
  /** The email address for `email`; '' for the webhook. */
  recipient: string;
  kind: 'newly-broken' | 'fixed';
  /** The JSON the sender needs: the change and the outcome (NotificationPayload). */
  payload: NotificationPayload;
  attempts: number;
  createdAt: string;
}

/** What one notification says; the webhook's JSON body carries exactly these fields. */
export interface NotificationPayload {
  event: 'spf.newly_broken' | 'spf.fixed';
  domain: string;
  status: AuditStatus;
  result: string;
  since: string;
  record: string | null;
  suggested_record: string | null;
  remedy: string | null;
  reason: string;
  lookups: { used: number; limit: number; warning?: string } | null;
}

export interface ChangeSets {
  newlyBroken: DomainChange[];
  fixed: DomainChange[];
  stillBroken: DomainChange[];
  unchanged: DomainChange[];
  unknown: DomainChange[];
}
