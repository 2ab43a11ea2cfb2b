/**
 * How much of RFC 7208's lookup budget a record spends (§4.6.4): at most 10 DNS-querying
 * terms (include, a, mx, ptr, exists, redirect) and at most 2 void lookups per check_host().
 * check_host() stops at the first match, so the budget that matters to a receiver is the
 * worst case: a client that matches nothing walks every term. This walks the record like
 * that, following include: and redirect= into their records, and says which term costs what.
 */
import type { Resolver } from '../dns/index.js';
import type { DnsMechanism, DnsQueryTrace, SpfRecord } from './types.js';
import { DEFAULT_LIMITS, selectRecord } from './evaluator.js';
import { parseRecord } from './parser.js';

/** One DNS-querying term and what it costs, itself included. */
export interface BudgetTerm {
  /** The term as written, e.g. `include:_spf.esp.example`. */
  term: string;
  /** Domain whose record holds the term. */
  domain: string;
  /** DNS-querying terms spent by this term and everything it pulls in. */
  cost: number;
  voidLookups: number;
  /** Terms of the included / redirected-to record. */
  nested: BudgetTerm[];
  /** Why the cost is a lower bound or the term is broken (macro, missing record, loop). */
  note?: string;
}

export interface LookupBudget {
  domain: string;
  /** DNS-querying terms spent in the worst case (RFC 7208 §4.6.4 limit: 10). */
  used: number;
  limit: number;
  voidLookups: number;
  voidLimit: number;
  /** The top-level DNS-querying terms, each with its share. */
  terms: BudgetTerm[];
  /** Some cost could not be known (macros, DNS errors): `used` is a lower bound. */
  incomplete: boolean;
}

/** Budget use at or above this is flagged: one more include can be the permerror. */
export const BUDGET_WARN_AT = 8;

interface Walk {
  resolver: Resolver;
  seen: Set<string>;
  /** Records fetched, bounded so that a hostile tree costs little. */
  fetches: number;
  incomplete: boolean;
}

const MAX_FETCHES = 40;

type Fetched = { record: SpfRecord; void: false } | { record?: undefined; void: boolean; note: string };

async function fetchRecord(walk: Walk, domain: string): Promise<Fetched> {
  if (++walk.fetches > MAX_FETCHES) {
    walk.incomplete = true;
    return { void: false, note: 'not followed: tree too large' };
  }
  // The evaluator's own choice of record (RFC 7208 §4.5), so that the budget reads a TXT answer
  // exactly as check_host() does, the cache's cut-down answers included.
  let query: DnsQueryTrace | undefined;
  const selected = await selectRecord(walk.resolver, domain, (q) => (query = q), undefined);
  if (selected.status === 'found') return { record: selected.record, void: false };
  if (selected.status === 'temperror') walk.incomplete = true;
  // §4.6.4: a lookup that answers NXDOMAIN or no record at all is void.
  if (query?.outcome === 'nxdomain') return { void: true, note: `${domain} does not exist` };
  if (query?.outcome === 'nodata') return { void: true, note: `${domain} has no TXT record` };
  return { void: false, note: selected.reason };
}

/** a, mx and exists: one query whose empty answer counts as void. */
async function isVoidTarget(walk: Walk, name: string, type: 'A' | 'MX'): Promise<boolean> {
  try {
    const answer = await walk.resolver.lookup(name, type);
    return answer.records.length === 0;
  } catch {
    return false;
  }
}

function literalTarget(term: DnsMechanism, domain: string): string | undefined {
  if (!term.domainSpec) return domain;
  return term.domainSpec.hasMacros ? undefined : term.domainSpec.text.replace(/\.$/, '');
}

async function recordTerms(walk: Walk, record: SpfRecord, domain: string): Promise<BudgetTerm[]> {
  const out: BudgetTerm[] = [];
  for (const term of record.mechanisms) {
    if (term.name === 'all' || term.name === 'ip4' || term.name === 'ip6') continue;
    const target = literalTarget(term, domain);
    if (target === undefined) {
      walk.incomplete = true;
      out.push({ term: term.text, domain, cost: 1, voidLookups: 0, nested: [], note: 'target has macros: what it pulls in depends on the sender' });
      continue;
    }
    if (term.name === 'include') out.push(await followed(walk, term.text, domain, target));
    else if (term.name === 'a' || term.name === 'exists' || term.name === 'mx') {
      const isVoid = await isVoidTarget(walk, target, term.name === 'mx' ? 'MX' : 'A');
      out.push({ term: term.text, domain, cost: 1, voidLookups: isVoid ? 1 : 0, nested: [], ...(isVoid ? { note: `${target} has no ${term.name === 'mx' ? 'MX' : 'address'} record` } : {}) });
    } else out.push({ term: term.text, domain, cost: 1, voidLookups: 0, nested: [], note: 'ptr is slow and discouraged (RFC 7208 §5.5)' });
  }
  // redirect= is ignored when the record has `all` (§6.1).
  if (record.redirect && !record.hasAll) {
    const spec = record.redirect.value;
    if (spec.hasMacros) {
      walk.incomplete = true;
      out.push({ term: record.redirect.text, domain, cost: 1, voidLookups: 0, nested: [], note: 'target has macros' });
    } else out.push(await followed(walk, record.redirect.text, domain, spec.text.replace(/\.$/, '')));
  }
  return out;
}

async function followed(walk: Walk, termText: string, domain: string, target: string): Promise<BudgetTerm> {
  const key = target.toLowerCase();
  if (walk.seen.has(key)) return { term: termText, domain, cost: 1, voidLookups: 0, nested: [], note: `loop: ${target} is already being evaluated` };
  walk.seen.add(key);
  try {
    const fetched = await fetchRecord(walk, target);
    if (!fetched.record) return { term: termText, domain, cost: 1, voidLookups: fetched.void ? 1 : 0, nested: [], note: fetched.note };
    const nested = await recordTerms(walk, fetched.record, target);
    return {
      term: termText,
      domain,
      cost: 1 + nested.reduce((n, t) => n + t.cost, 0),
      voidLookups: nested.reduce((n, t) => n + t.voidLookups, 0),
      nested,
    };
  } finally {
    walk.seen.delete(key);
  }
}

function summarise(domain: string, terms: BudgetTerm[], incomplete: boolean): LookupBudget {
  return {
    domain,
    used: terms.reduce((n, t) => n + t.cost, 0),
    limit: DEFAULT_LIMITS.dnsMechanisms,
    voidLookups: terms.reduce((n, t) => n + t.voidLookups, 0),
    voidLimit: DEFAULT_LIMITS.voidLookups,
    terms,
    incomplete,
  };
}

/**
 * The worst-case budget of `recordText` published at `domain` (or of the record `domain`
 * publishes, when no text is given; undefined when it has none usable).
 */
export async function lookupBudget(resolver: Resolver, domain: string, recordText?: string): Promise<LookupBudget | undefined> {
  const walk: Walk = { resolver, seen: new Set([domain.toLowerCase()]), fetches: 0, incomplete: false };
  let record: SpfRecord;
  if (recordText !== undefined) {
    try {
      record = parseRecord(recordText);
    } catch {
      return undefined;
    }
  } else {
    const fetched = await fetchRecord(walk, domain);
    if (!fetched.record) return undefined;
    record = fetched.record;
  }
  const terms = await recordTerms(walk, record, domain);
  return summarise(domain, terms, walk.incomplete);
}

/** What one mechanism (e.g. the ESP's `include:`) would add to a record at `domain`. */
export async function termCost(resolver: Resolver, domain: string, term: string): Promise<{ cost: number; voidLookups: number }> {
  const budget = await lookupBudget(resolver, domain, `v=spf1 ${term}`);
  return budget ? { cost: budget.used, voidLookups: budget.voidLookups } : { cost: 0, voidLookups: 0 };
}

/** "include:a.example (3), mx (1), ..." — the terms that spend the budget, biggest first. */
export function describeSpending(budget: LookupBudget): string {
  return [...budget.terms]
    .sort((a, b) => b.cost - a.cost)
    .map((t) => `${t.term} (${t.cost})`)
    .join(', ');
}
