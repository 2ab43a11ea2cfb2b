/**
 * The history store: what each audit run found per domain, the last known state of every
 * domain, and the outbox of notifications. Two backends behind one interface: SQLite, one
 * file (sqlite.ts: node:sqlite, else better-sqlite3), and PostgreSQL for several replicas (postgres.ts, pg).
 *
 * Crash safety (the outbox pattern): a run is committed in ONE transaction at its end. It
 * reads each domain's last known state inside that transaction, writes the new states, the
 * per-domain results and, for each change that owes one, a notification as `pending`. A
 * notification is marked `sent` only after delivery. So a run killed while judging leaves
 * nothing behind (the next run finds the same changes); one killed after the commit leaves
 * its notifications pending, and the next run delivers them, never queueing them again. The
 * one window left is between a delivery and its mark (milliseconds): such a notification is
 * sent again by the next run, with the same delivery id (webhook header X-SOS-Delivery,
 * mail Message-ID), so a receiver can drop it.
 */
import { addChange, classify, emptyChangeSets, isBroken, notifies, payloadOf } from './changes.js';
import type { Channel, ChangeKind, ChangeSets, DomainChange, DomainOutcome, KnownState, OutboxEntry } from './types.js';

export interface RunInput {
  startedAt: Date;
  finishedAt: Date;
  outcomes: readonly DomainOutcome[];
  /** Who is told of a change: one entry per channel and recipient. */
  recipients(change: DomainChange): readonly { channel: Channel; recipient: string }[];
}

export interface RunCommit {
  runId: number;
  changes: ChangeSets;
  /** Notifications queued by this run. */
  queued: number;
  /** What was queued (for `--dry-run`: what would have been). */
  outbox: RunPlan['outbox'];
}

export interface CommitOptions {
  /** Read and compare, then roll back: the history is left as it was. */
  dryRun?: boolean;
}

export interface HistoryStore {
  readonly kind: 'sqlite' | 'postgres';
  /** Where the history lives, for messages (a URL without its password). */
  readonly location: string;
  commitRun(input: RunInput, options?: CommitOptions): Promise<RunCommit>;
  /** Pending notifications, oldest first. */
  pending(limit: number): Promise<OutboxEntry[]>;
  pendingCount(): Promise<number>;
  markSent(id: number, at: Date): Promise<void>;
  /** A failed attempt; `final` gives the notification up (state `failed`), else it stays pending. */
  markFailed(id: number, error: string, final: boolean): Promise<void>;
  close(): Promise<void>;
}

export const SCHEMA_VERSION = 1;
/** Per-domain results of this many runs are kept; older ones, and delivered notifications of those runs, are pruned. */
export const DEFAULT_KEEP_RUNS = 100;

export const STATUS_CODE = { pass: 0, fail: 1, unjudged: 2 } as const;
export const CHANGE_CODE: Record<ChangeKind, number> = { unchanged: 0, 'newly-broken': 1, fixed: 2, 'still-broken': 3, unknown: 4 };

/** What a backend writes for one run, computed from the known states alone. */
export interface RunPlan {
  changes: ChangeSets;
  /** Outcomes of this run that are broken (any status but pass), unknown ones included. */
  broken: number;
  /** Domains whose state row is written (new, or changed, or merely seen again). */
  states: { domain: string; broken: boolean; status: DomainOutcome['status']; since: string; record: string | null; suggested: string | null; isNew: boolean }[];
  results: { domain: string; status: number; result: string; change: number }[];
  outbox: { domain: string; channel: Channel; recipient: string; kind: 'newly-broken' | 'fixed'; payload: string }[];
}

export function planRun(input: RunInput, known: ReadonlyMap<string, KnownState>): RunPlan {
  const now = input.finishedAt.toISOString();
  const plan: RunPlan = { changes: emptyChangeSets(), broken: 0, states: [], results: [], outbox: [] };
  for (const outcome of input.outcomes) {
    const before = known.get(outcome.domain);
    const change = classify(outcome, before, now);
    const broken = isBroken(outcome);
    if (broken) plan.broken++;
    addChange(plan.changes, change);
    plan.results.push({ domain: outcome.domain, status: STATUS_CODE[outcome.status], result: outcome.result, change: CHANGE_CODE[change.kind] });
    // An unknown outcome keeps the last known state; a first-seen unknown domain gets none yet.
    if (change.kind !== 'unknown') {
      plan.states.push({ domain: outcome.domain, broken, status: outcome.status, since: change.since, record: outcome.record, suggested: outcome.suggested, isNew: before === undefined });
    }
    if (notifies(change)) {
      const payload = JSON.stringify(payloadOf(change));
      for (const r of input.recipients(change)) plan.outbox.push({ domain: outcome.domain, channel: r.channel, recipient: r.recipient, kind: change.kind, payload });
    }
  }
  return plan;
}

/** Where the history lives: a PostgreSQL URL, or a file path (SQLite). */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

/** A URL without its password, for messages and logs. */
export function redactLocation(location: string): string {
  if (!isPostgresUrl(location)) return location;
  try {
    const url = new URL(location);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return 'postgresql://(unparsable URL)';
  }
}

export class HistoryError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'HistoryError';
  }
}

/** Thrown inside a transaction to roll a dry run back with its result. */
export class DryRunRollback extends Error {
  constructor(readonly result: RunCommit) {
    super('dry run: rolled back');
  }
}
