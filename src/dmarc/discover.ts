/**
 * DMARC policy discovery and the Organizational Domain, by the DNS Tree Walk of DMARCbis
 * (the current revision of DMARC), or by RFC 7489's rule (§3.2, §6.6.3) with a public suffix
 * list (psl.ts) when one is configured.
 *
 * The tree walk (DMARCbis "DNS Tree Walk"): query `_dmarc.<domain>`; if it holds no valid
 * record, drop labels from the left, to the rightmost seven at once when the name has eight or
 * more, then one by one, querying each, down to the top-level domain. So a walk asks at most
 * MAX_WALK_QUERIES (8) names whatever the input, and every answer goes through the caller's
 * Resolver (the daemon's: the shared DNS cache, bounded in bytes like every other answer).
 *
 * At each name (RFC 7489 §6.6.3 steps 2-3, DMARCbis): records that do not start with
 * `v=DMARC1` are discarded; several DMARC records count as none (all are discarded) and so does
 * one that cannot be parsed; the walk then goes on to the next name. A temporary DNS failure
 * before a record is found ends the walk with `temperror`: the policy is unknown.
 */
import { DnsError, type LookupResult, type Resolver, type TxtRecord } from '../dns/index.js';
import { parseDmarcRecord, recordText, strongestDisposition, type DmarcPolicy, type DmarcRecord } from './record.js';
import type { PublicSuffixList } from './psl.js';

/** DMARCbis: the walk queries the name itself and at most seven shorter ones. */
export const MAX_WALK_QUERIES = 8;

export type StepOutcome = 'record' | 'no-record' | 'nxdomain' | 'several' | 'invalid' | 'bad-name' | 'temperror';

/** One name the walk asked, and what it found there. */
export interface WalkStep {
  name: string;
  outcome: StepOutcome;
  /** Why, for `invalid`, `bad-name` and `temperror`. */
  detail?: string;
}

export type Discovery =
  | {
      status: 'found';
      /** The domain the policy is for (the From: domain). */
      domain: string;
      /** Where the record was found: the domain itself or an ancestor. */
      recordDomain: string;
      record: DmarcRecord;
      /** The tag that applies: p at the domain itself; np (non-existent domain), sp or p at an ancestor. */
      appliedTag: 'p' | 'sp' | 'np';
      policy: DmarcPolicy;
      /** The strongest disposition a receiver may apply (one step weaker under pct=0 or t=y). */
      disposition: DmarcPolicy;
      steps: WalkStep[];
    }
  | { status: 'none'; domain: string; steps: WalkStep[] }
  | { status: 'temperror'; domain: string; steps: WalkStep[]; error: string };

export interface DiscoveryOptions {
  signal?: AbortSignal | undefined;
  /** RFC 7489's organizational-domain rule with this list, instead of the DMARCbis tree walk. */
  psl?: PublicSuffixList | undefined;
}

/** The names the tree walk asks for `domain`, in order (without the `_dmarc.` prefix). */
export function walkNames(domain: string): string[] {
  const labels = domain.split('.');
  const names = [domain];
  for (let k = Math.min(labels.length - 1, MAX_WALK_QUERIES - 1); k >= 1; k--) names.push(labels.slice(-k).join('.'));
  return names;
}

type Probe = { outcome: 'record'; record: DmarcRecord } | { outcome: Exclude<StepOutcome, 'record'>; detail?: string };

/**
 * What a TXT answer at `_dmarc.<name>` holds, memoised on the answer's identity (a caching
 * resolver hands out the same object while it keeps the answer, src/dns/types.ts): a warm walk
 * parses no record text again.
 */
const probes = new WeakMap<object, Probe>();

function probeAnswer(answer: LookupResult<TxtRecord>): Probe {
  const known = probes.get(answer);
  if (known) return known;
  const probe = readAnswer(answer);
  probes.set(answer, probe);
  return probe;
}

/** The DMARC record in one answer, if exactly one valid record is there. */
function readAnswer(answer: LookupResult<TxtRecord>): Probe {
  // The cache counts the DMARC records it did not keep (dns/txt-bound.ts): several, or too large.
  const leftOut = answer.omitted?.dmarc ?? 0;
  let found: DmarcRecord | undefined;
  let dmarc = leftOut;
  let invalid: string | undefined;
  for (const r of answer.records) {
    const parsed = parseDmarcRecord(recordText(r));
    if (parsed.kind === 'not-dmarc') continue;
    dmarc++;
    if (parsed.kind === 'invalid') invalid = parsed.reason;
    else found = parsed.record;
  }
  if (dmarc > 1) return { outcome: 'several', detail: `${dmarc} DMARC records` };
  if (invalid !== undefined) return { outcome: 'invalid', detail: invalid };
  if (leftOut === 1) return { outcome: 'invalid', detail: 'record too large' };
  if (found) return { outcome: 'record', record: found };
  return { outcome: answer.nxdomain ? 'nxdomain' : 'no-record' };
}

/** The DMARC record at one name, asked of the resolver. */
async function probe(resolver: Resolver, name: string, signal: AbortSignal | undefined): Promise<Probe> {
  let answer;
  try {
    answer = await resolver.lookup(`_dmarc.${name}`, 'TXT', { signal });
  } catch (e) {
    if (e instanceof DnsError && e.code === 'BADNAME') return { outcome: 'bad-name', detail: e.message };
    if (e instanceof DnsError && e.code !== 'ABORTED') return { outcome: 'temperror', detail: e.message };
    throw e;
  }
  return probeAnswer(answer);
}

/** The names to ask for `domain`'s policy: the tree walk's, or RFC 7489's two (the domain, then its organizational domain). */
function discoveryNames(domain: string, psl: PublicSuffixList | undefined): string[] {
  if (!psl) return walkNames(domain);
  const org = psl.organizationalDomain(domain);
  return org === domain ? [domain] : [domain, org];
}

/**
 * The walks are written once, as generators that yield what they need to know (the DMARC
 * record at a name, whether a name exists) and are told the answer: discoverPolicy and
 * organizationalDomain run them against the resolver, the *Now variants against its cached
 * answers only (undefined as soon as one is missing), so that a warm judgement needs no promise.
 */
type Need = { kind: 'dmarc'; name: string } | { kind: 'exists'; name: string };
type Walk<R> = Generator<Need, R, Probe | boolean>;

async function runAsync<R>(walk: Walk<R>, resolver: Resolver, signal: AbortSignal | undefined): Promise<R> {
  let step = walk.next();
  while (!step.done) {
    const need = step.value;
    step = walk.next(need.kind === 'dmarc' ? await probe(resolver, need.name, signal) : !(await nonExistent(resolver, need.name, signal)));
  }
  return step.value;
}

function runNow<R>(walk: Walk<R>, resolver: Resolver): R | undefined {
  if (!resolver.cachedAnswer) return undefined;
  let step = walk.next();
  while (!step.done) {
    const need = step.value;
    let told: Probe | boolean;
    if (need.kind === 'dmarc') {
      const answer = resolver.cachedAnswer(`_dmarc.${need.name}`, 'TXT');
      if (!answer) return undefined;
      told = probeAnswer(answer);
    } else {
      const answer = resolver.cachedAnswer(need.name, 'A');
      if (!answer) return undefined;
      told = !answer.nxdomain;
    }
    step = walk.next(told);
  }
  return step.value;
}

function* policyWalk(domain: string, psl: PublicSuffixList | undefined): Walk<Discovery> {
  const steps: WalkStep[] = [];
  for (const name of discoveryNames(domain, psl)) {
    const p = (yield { kind: 'dmarc', name }) as Probe;
    steps.push(p.outcome === 'record' ? { name, outcome: 'record' } : { name, outcome: p.outcome, ...(p.detail ? { detail: p.detail } : {}) });
    if (p.outcome === 'temperror') return { status: 'temperror', domain, steps, error: p.detail ?? 'DNS error' };
    if (p.outcome !== 'record') continue;
    const record = p.record;
    let appliedTag: 'p' | 'sp' | 'np' = 'p';
    if (name !== domain) {
      appliedTag = record.sp ? 'sp' : 'p';
      if (record.np && !((yield { kind: 'exists', name: domain }) as boolean)) appliedTag = 'np';
    }
    const policy = (appliedTag === 'p' ? record.p : record[appliedTag]) as DmarcPolicy;
    return { status: 'found', domain, recordDomain: name, record, appliedTag, policy, disposition: strongestDisposition(policy, record), steps };
  }
  return { status: 'none', domain, steps };
}

/**
 * Finds the DMARC policy that applies to mail whose RFC5322.From domain is `domain` (lower
 * case A-labels, no trailing dot).
 */
export function discoverPolicy(resolver: Resolver, domain: string, options: DiscoveryOptions = {}): Promise<Discovery> {
  return runAsync(policyWalk(domain, options.psl), resolver, options.signal);
}

/** discoverPolicy's answer when every DNS answer it needs is cached, else undefined. */
export function discoverPolicyNow(resolver: Resolver, domain: string, options: DiscoveryOptions = {}): Discovery | undefined {
  return runNow(policyWalk(domain, options.psl), resolver);
}

/**
 * RFC 9091 §2.1 / DMARCbis: a domain is non-existent when the DNS says NXDOMAIN for it. NXDOMAIN
 * is about the name, whatever the type, so one A query answers it. A failed query counts as
 * existing (sp or p applies, the usual case).
 */
async function nonExistent(resolver: Resolver, domain: string, signal: AbortSignal | undefined): Promise<boolean> {
  try {
    return (await resolver.lookup(domain, 'A', { signal })).nxdomain;
  } catch (e) {
    if (e instanceof DnsError && e.code === 'ABORTED') throw e;
    return false;
  }
}

export type OrgDomain = { status: 'found'; orgDomain: string; steps: WalkStep[] } | { status: 'temperror'; error: string; steps: WalkStep[] };

/**
 * The Organizational Domain of `domain`. DMARCbis: walk as above; the first record with psd=n
 * names it; the first with psd=y makes the name one label below it the organizational domain
 * (the name itself when the record is at the name); without either, the record with the fewest
 * labels names it; without any record, the domain is its own. RFC 7489 §3.2: the public suffix
 * and one label more, from the list.
 */
export function organizationalDomain(resolver: Resolver, domain: string, options: DiscoveryOptions = {}): Promise<OrgDomain> {
  if (options.psl) return Promise.resolve({ status: 'found', orgDomain: options.psl.organizationalDomain(domain), steps: [] });
  return runAsync(orgWalk(domain), resolver, options.signal);
}

/** organizationalDomain's answer when every DNS answer it needs is cached, else undefined. */
export function organizationalDomainNow(resolver: Resolver, domain: string, options: DiscoveryOptions = {}): OrgDomain | undefined {
  if (options.psl) return { status: 'found', orgDomain: options.psl.organizationalDomain(domain), steps: [] };
  return runNow(orgWalk(domain), resolver);
}

function* orgWalk(domain: string): Walk<OrgDomain> {
  const labels = domain.split('.');
  const steps: WalkStep[] = [];
  let fewest: string | undefined;
  for (const name of walkNames(domain)) {
    const p = (yield { kind: 'dmarc', name }) as Probe;
    steps.push(p.outcome === 'record' ? { name, outcome: 'record' } : { name, outcome: p.outcome, ...(p.detail ? { detail: p.detail } : {}) });
    if (p.outcome === 'temperror') return { status: 'temperror', error: p.detail ?? 'DNS error', steps };
    if (p.outcome !== 'record') continue;
    if (p.record.psd === 'n') return { status: 'found', orgDomain: name, steps };
    if (p.record.psd === 'y') {
      const k = name.split('.').length;
      return { status: 'found', orgDomain: k >= labels.length ? domain : labels.slice(-(k + 1)).join('.'), steps };
    }
    fewest = name;
  }
  return { status: 'found', orgDomain: fewest ?? domain, steps };
}
