/**
 * The remedy for an own domain whose SPF record fails the configured check: the smallest
 * change to the record the domain publishes that would make it pass, proven by judging the
 * suggested record with the same assessment code (through a `RemedyVerifier`) and by its
 * worst-case lookup budget (RFC 7208 §4.6.4: 10 DNS-querying terms, 2 void lookups).
 */
import type { LookupBudget } from '../spf/lookup-budget.js';
import { describeSpending } from '../spf/lookup-budget.js';
import type { SpfRecord } from '../spf/types.js';
import { parseRecord } from '../spf/parser.js';
import type { JudgedAssessment, SpfCheckMode } from './types.js';

/** What the verifier found for one suggested record. */
export interface RemedyVerdict {
  /** The suggested record passes the configured check (no violation, nothing failing open). */
  passes: boolean;
  /** The assessment's reason, for the report. */
  reason: string;
  /** Worst-case budget of the suggested record; undefined when it does not parse. */
  budget: LookupBudget | undefined;
}

/** Judges a record as if `domain` published it: the same assessment, on an overlaid DNS answer. */
export interface RemedyVerifier {
  verify(domain: string, recordText: string): Promise<RemedyVerdict>;
}

export type Remedy =
  /** Nothing to change. */
  | { kind: 'none' }
  /** Publish `record` (TXT at `domain`) instead of the current one. */
  | { kind: 'record'; domain: string; record: string; change: string; budget: LookupBudget | undefined; note?: string }
  /** No record within the limits passes; `reason` says why and what spends the budget. */
  | { kind: 'impossible'; reason: string }
  /** The domain could not be judged (DNS failure): nothing to suggest until it can. */
  | { kind: 'unknown'; reason: string };

export interface RemedyInput {
  assessment: JudgedAssessment;
  check: SpfCheckMode;
  /** The record the domain itself publishes (the first link of a redirect chain), if any. */
  ownRecord: string | undefined;
  /** Status of the domain's record lookup. */
  recordStatus: 'found' | 'none' | 'permerror' | 'temperror';
  /** SPF_REMEDY_MECHANISM, or the mechanism derived from SPF_REGEX; undefined: none known. */
  mechanism: string | undefined;
  /** Budget of the record the domain publishes today, for the "impossible" explanation. */
  currentBudget: LookupBudget | undefined;
}

const MECHANISM_IN_REGEX = /(include|ip4|ip6|exists|a|mx):((?:\\\.|[A-Za-z0-9_\-/:])+)/i;

/**
 * The mechanism SPF_REGEX asks for, when the pattern names one literally, e.g.
 * `^v=spf1 .*include:_spf\.esp\.example` gives `include:_spf.esp.example`. Undefined when
 * the pattern names none (the default `.*`) or only a pattern of names.
 */
export function mechanismFromRegex(source: string): string | undefined {
  const m = MECHANISM_IN_REGEX.exec(source);
  if (!m) return undefined;
  const name = m[1]!.toLowerCase();
  let value = m[2]!.replace(/\\\./g, '.');
  // A trailing `\` or a lone regex metacharacter means the literal is incomplete.
  value = value.replace(/[\\/:]+$/, (tail) => (name === 'ip4' || name === 'ip6' ? tail.replace(/\\/g, '') : ''));
  if (value === '' || /\\/.test(value)) return undefined;
  return `${name}:${value}`;
}

/** The terms a remedy adds, in order of preference (fewest changes first). */
function additions(input: RemedyInput): string[][] {
  const unauthorised = (input.assessment.outbound ?? []).filter((o) => o.result !== 'pass').map((o) => `${o.ip.includes(':') ? 'ip6' : 'ip4'}:${o.ip}`);
  const options: string[][] = [];
  if (input.mechanism) options.push([input.mechanism]);
  if (input.check === 'evaluate' && unauthorised.length > 0) {
    options.push(unauthorised);
    if (input.mechanism) options.push([input.mechanism, ...unauthorised]);
  }
  return options;
}

/** Inserts terms before `all`; with no `all`, before the first modifier (redirect=, exp=), else at the end. */
export function insertTerms(recordText: string, terms: readonly string[]): { record: string; where: string } {
  const record = parseRecord(recordText);
  const fresh = terms.filter((t) => !holdsTerm(record, t));
  if (fresh.length === 0) return { record: recordText, where: '' };
  const anchor = record.terms.find((t) => t.kind === 'mechanism' && t.name === 'all') ?? record.terms.find((t) => t.kind === 'modifier');
  const words = fresh.join(' ');
  if (!anchor) return { record: `${recordText.replace(/ +$/, '')} ${words}`, where: 'at the end' };
  return { record: `${recordText.slice(0, anchor.position)}${words} ${recordText.slice(anchor.position)}`, where: `before ${anchor.text}` };
}

/** The record has `term` already, written in any case, with or without the default `+`. */
function holdsTerm(record: SpfRecord, term: string): boolean {
  const wanted = term.toLowerCase();
  return record.terms.some((t) => {
    const text = t.text.toLowerCase();
    return text === wanted || text === `+${wanted}`;
  });
}

/** Whether `recordText` (an SPF record) has `term` already; false when it does not parse. */
export function hasTerm(recordText: string, term: string): boolean {
  try {
    return holdsTerm(parseRecord(recordText), term);
  } catch {
    return false;
  }
}

function candidates(input: RemedyInput): { record: string; change: string; note?: string }[] {
  const out: { record: string; change: string; note?: string }[] = [];
  for (const terms of additions(input)) {
    if (input.ownRecord === undefined) {
      if (input.recordStatus !== 'none') continue; // several SPF records: no single one to amend
      // A new record: other senders of the domain must be listed before the all, which we cannot know.
      const note = 'the domain publishes no SPF record: list its other senders before the all';
      if (input.check === 'evaluate') out.push({ record: `v=spf1 ${terms.join(' ')} ~all`, change: `publish a record with ${terms.join(' ')}`, note });
      out.push({ record: `v=spf1 ${terms.join(' ')} -all`, change: `publish a record with ${terms.join(' ')}`, note });
      continue;
    }
    let inserted: { record: string; where: string };
    try {
      inserted = insertTerms(input.ownRecord, terms);
    } catch {
      continue; // a record that does not parse cannot be amended
    }
    if (inserted.record !== input.ownRecord) out.push({ record: inserted.record, change: `add ${terms.join(' ')} ${inserted.where}` });
  }
  return out;
}

function overBudget(budget: LookupBudget | undefined): boolean {
  return budget !== undefined && (budget.used > budget.limit || budget.voidLookups > budget.voidLimit);
}

/** The smallest verified change, or why there is none. */
export async function findRemedy(input: RemedyInput, verifier: RemedyVerifier): Promise<Remedy> {
  const a = input.assessment;
  if (a.kind === 'pass') return { kind: 'none' };
  if (input.recordStatus === 'temperror' || a.result === 'temperror') {
    return { kind: 'unknown', reason: 'DNS did not answer (see the reason); audit again' };
  }
  const tried = candidates(input);
  if (tried.length === 0) {
    if (input.recordStatus === 'permerror') {
      return { kind: 'impossible', reason: 'the published record is invalid (see the reason); correct it first' };
    }
    return {
      kind: 'impossible',
      reason:
        input.check === 'regex'
          ? 'SPF_REGEX names no mechanism to add; set SPF_REMEDY_MECHANISM (e.g. include:_spf.esp.example)'
          : 'no outbound address is unauthorised and no mechanism is configured; set SPF_REMEDY_MECHANISM',
    };
  }
  const overLimit: string[] = [];
  const stillFailing: string[] = [];
  for (const candidate of tried) {
    const verdict = await verifier.verify(a.domain, candidate.record);
    if (verdict.passes && !overBudget(verdict.budget)) {
      return { kind: 'record', domain: a.domain, record: candidate.record, change: candidate.change, budget: verdict.budget, ...(candidate.note ? { note: candidate.note } : {}) };
    }
    if (overBudget(verdict.budget)) {
      const b = verdict.budget!;
      overLimit.push(`${candidate.change} would need ${b.used}/${b.limit} DNS lookups and ${b.voidLookups}/${b.voidLimit} void lookups (RFC 7208 §4.6.4)`);
    } else stillFailing.push(`${candidate.change} still fails: ${verdict.reason}`);
  }
  // The lookup limit is the usual cause and the one to explain; other attempts only without it.
  if (overLimit.length > 0) {
    const b = input.currentBudget;
    const spending = b && b.terms.length > 0 ? `; the record already spends ${b.used}/${b.limit} on ${describeSpending(b)}` : '';
    return { kind: 'impossible', reason: `${overLimit[0]}${spending}` };
  }
  return { kind: 'impossible', reason: stillFailing.join('; ') };
}

/** One line for tables and logs. */
export function remedyText(remedy: Remedy): string {
  switch (remedy.kind) {
    case 'none':
      return '';
    case 'record':
      return `${remedy.change}: "${remedy.record}"${remedy.note ? ` (${remedy.note})` : ''}`;
    case 'impossible':
      return `no passing record possible: ${remedy.reason}`;
    case 'unknown':
      return `unknown: ${remedy.reason}`;
  }
}
