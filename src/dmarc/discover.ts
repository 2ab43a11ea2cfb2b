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
import { DnsError, type Resolver, type TxtRecord } from '../dns/index.js';
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

/** The DMARC record at one name, if exactly one valid record is there. */
async function probe(resolver: Resolver, name: string, signal: AbortSignal | undefined): Promise<Probe> {
  let answer;
  try {
    answer = await resolver.lookup(`_dmarc.${name}`, 'TXT', { signal });
  } catch (e) {
    if (e instanceof DnsError && e.code === 'BADNAME') return { outcome: 'bad-name', detail: e.message };
    if (e instanceof DnsError && e.code !== 'ABORTED') return { outcome: 'temperror', detail: e.message };
    throw e;
  }
  // The cache counts the DMARC records it did not keep (dns/txt-bound.ts): several, or too large.
  const leftOut = answer.omitted?.dmarc ?? 0;
  let found: DmarcRecord | undefined;
  let dmarc = leftOut;
  let invalid: string | undefined;
  for (const r of answer.records as TxtRecord[]) {
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

/** The names to ask for `domain`'s policy: the tree walk's, or RFC 7489's two (the domain, then its organizational domain). */
function discoveryNames(domain: string, psl: PublicSuffixList | undefined): string[] {
  if (!psl) return walkNames(domain);
  const org = psl.organizationalDomain(domain);
  return org === domain ? [domain] : [domain, org];
}

/**
 * Finds the DMARC policy that applies to mail whose RFC5322.From domain is `domain` (lower
 * case A-labels, no trailing dot).
 */
export async function discoverPolicy(resolver: Resolver, domain: string, options: DiscoveryOptions = {}): Promise<Discovery> {
  const steps: WalkStep[] = [];
  for (const name of discoveryNames(domain, options.psl)) {
    const p = await probe(resolver, name, options.signal);
    steps.push(p.outcome === 'record' ? { name, outcome: 'record' } : { name, outcome: p.outcome, ...(p.detail ? { detail: p.detail } : {}) });
    if (p.outcome === 'temperror') return { status: 'temperror', domain, steps, error: p.detail ?? 'DNS error' };
    if (p.outcome !== 'record') continue;
    const record = p.record;
    let appliedTag: 'p' | 'sp' | 'np' = 'p';
    if (name !== domain) {
      appliedTag = record.sp ? 'sp' : 'p';
      if (record.np && (await nonExistent(resolver, domain, options.signal))) appliedTag = 'np';
    }
    const policy = (appliedTag === 'p' ? record.p : record[appliedTag]) as DmarcPolicy;
    return { status: 'found', domain, recordDomain: name, record, appliedTag, policy, disposition: strongestDisposition(policy, record), steps };
  }
  return { status: 'none', domain, steps };
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
export async function organizationalDomain(resolver: Resolver, domain: string, options: DiscoveryOptions = {}): Promise<OrgDomain> {
  if (options.psl) return { status: 'found', orgDomain: options.psl.organizationalDomain(domain), steps: [] };
  const labels = domain.split('.');
  const steps: WalkStep[] = [];
  let fewest: string | undefined;
  for (const name of walkNames(domain)) {
    const p = await probe(resolver, name, options.signal);
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
