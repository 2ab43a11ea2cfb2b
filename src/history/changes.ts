/** Compares one run's outcomes with what the history knew: the change sets of the report. */
import type { ChangeKind, ChangeSets, DomainChange, DomainOutcome, KnownState, NotificationPayload } from './types.js';

export function isBroken(outcome: Pick<DomainOutcome, 'status'>): boolean {
  return outcome.status !== 'pass';
}

/** The change one domain went through; `now` is the run's time (ISO 8601). */
export function classify(outcome: DomainOutcome, known: KnownState | undefined, now: string): DomainChange {
  const base = { domain: outcome.domain, outcome, ...(known ? { previous: known.status } : {}) };
  if (outcome.unknown) return { ...base, kind: 'unknown', since: known?.since ?? now };
  const broken = isBroken(outcome);
  let kind: ChangeKind;
  if (known === undefined) kind = broken ? 'newly-broken' : 'unchanged';
  else if (known.broken) kind = broken ? 'still-broken' : 'fixed';
  else kind = broken ? 'newly-broken' : 'unchanged';
  const changed = kind === 'newly-broken' || kind === 'fixed';
  return { ...base, kind, since: changed || known === undefined ? now : known.since };
}

export function emptyChangeSets(): ChangeSets {
  return { newlyBroken: [], fixed: [], stillBroken: [], unchanged: [], unknown: [] };
}

export function addChange(sets: ChangeSets, change: DomainChange): void {
  switch (change.kind) {
    case 'newly-broken':
      sets.newlyBroken.push(change);
      break;
    case 'fixed':
      sets.fixed.push(change);
      break;
    case 'still-broken':
      sets.stillBroken.push(change);
      break;
    case 'unchanged':
      sets.unchanged.push(change);
      break;
    case 'unknown':
      sets.unknown.push(change);
      break;
  }
}

/** A change that owes a notification: the domain turned broken, or was fixed. */
export function notifies(change: DomainChange): change is DomainChange & { kind: 'newly-broken' | 'fixed' } {
  return change.kind === 'newly-broken' || change.kind === 'fixed';
}

export function payloadOf(change: DomainChange & { kind: 'newly-broken' | 'fixed' }): NotificationPayload {
  const o = change.outcome;
  return {
    event: change.kind === 'fixed' ? 'spf.fixed' : 'spf.newly_broken',
    domain: o.domain,
    status: o.status,
    result: o.result,
    since: change.since,
    record: o.record,
    suggested_record: o.suggested,
    remedy: o.remedy,
    reason: o.reason,
    lookups: o.lookups,
  };
}
