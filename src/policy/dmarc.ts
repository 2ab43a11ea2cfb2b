/**
 * The prospective DMARC judgement, beside the SPF one: will the receiver's DMARC check let this
 * message through? It fails (a violation) when the From: domain's policy asks receivers to
 * reject or quarantine mail that does not align, and neither SPF nor DKIM will align:
 *
 *  - SPF aligns when the MAIL FROM domain aligns with the From: domain (aspf, relaxed or strict)
 *    and SPF passes for the relays: with SPF_CHECK=evaluate every outbound address passes;
 *    with the regex check, the record is restrictive and matches SPF_REGEX. After an envelope
 *    rewrite (MILTER_MODE=rewrite) SPF is for the rewriting domain and never aligns;
 *  - DKIM aligns when a domain the message will be (or already was) signed for aligns (adkim):
 *    DKIM_SIGNING_DOMAINS, the values of LDAP_DKIM_ATTRIBUTE on the From: domain's own-domain
 *    entry, the d= of DKIM-Signature fields already present. When that LDAP lookup failed and
 *    nothing else aligns, the judgement is unknown (fails open), as for a DNS temperror.
 *
 * judgeDmarc decides from plain values; assessDmarc gathers them (policy discovery, the
 * organizational domains alignment needs) through src/dmarc.
 */
import type { Resolver } from '../dns/index.js';
import { aligns, alignsNow, discoverPolicy, discoverPolicyNow, type Alignment, type Discovery, type DiscoveryOptions, type FromResult } from '../dmarc/index.js';
import { senderDomain } from './sender.js';
import type { MessageFacts } from './decide.js';
import type { JudgedAssessment, MilterMode, OwnDomainAnswer, OwnDomainPort } from './types.js';

/** What the milter saw of the From: field(s). */
export type FromField = FromResult | { kind: 'several-fields'; count: number } | { kind: 'missing' };

export type DmarcJudgement =
  | { kind: 'violation'; domain: string; policy: 'reject' | 'quarantine'; recordDomain: string; reason: string }
  | { kind: 'pass'; domain: string; how: 'spf' | 'dkim' | 'no-enforcement'; reason: string }
  /** Nothing to predict: no single From: domain. Logged and counted, no action. */
  | { kind: 'not-applicable'; reason: string }
  /** The policy or an alignment could not be found out (DNS temperror): fails open. */
  | { kind: 'unknown'; domain: string; reason: string };

export interface DmarcFacts {
  fromDomain: string;
  discovery: Discovery;
  /** SPF passes for the relays (see the module comment). */
  spfPasses: boolean;
  spfAlignment: Alignment | undefined;
  dkimAlignment: Alignment | undefined;
  /** The aligned DKIM domain, for the reason. */
  dkimDomain?: string;
  /** Where dkimDomain came from. */
  dkimSource?: DkimSource;
  /** The LDAP lookup of the From: domain's signing domains failed (LDAP_DKIM_ATTRIBUTE): why. */
  dkimLdapError?: string;
}

/** Where a DKIM signing domain is known from. */
export type DkimSource = 'DKIM_SIGNING_DOMAINS' | 'LDAP' | 'DKIM-Signature';

/** A domain the message will be or was signed for (d=), and where that is known from. */
export interface DkimCandidate {
  domain: string;
  source: DkimSource;
}

/** The source in words, for reasons and `check --from`. */
export function dkimSourceText(source: DkimSource): string {
  switch (source) {
    case 'DKIM_SIGNING_DOMAINS':
      return 'DKIM_SIGNING_DOMAINS';
    case 'LDAP':
      return "LDAP_DKIM_ATTRIBUTE of the From: domain's entry";
    case 'DKIM-Signature':
      return 'a DKIM-Signature already present';
  }
}

/** Decides from plain values. */
export function judgeDmarc(f: DmarcFacts): DmarcJudgement {
  const domain = f.fromDomain;
  const d = f.discovery;
  if (d.status === 'temperror') return { kind: 'unknown', domain, reason: `DMARC policy lookup failed: ${d.error}` };
  if (d.status === 'none') return { kind: 'pass', domain, how: 'no-enforcement', reason: 'no DMARC policy' };
  if (d.disposition === 'none') return { kind: 'pass', domain, how: 'no-enforcement', reason: `DMARC ${d.appliedTag}=${d.policy} at ${d.recordDomain} asks for no enforcement` };
  if (f.spfPasses && f.spfAlignment?.aligned === true) return { kind: 'pass', domain, how: 'spf', reason: `SPF passes aligned (aspf=${d.record.aspf})` };
  if (f.dkimAlignment?.aligned === true) {
    const from = f.dkimSource === undefined || f.dkimSource === 'DKIM-Signature' ? '' : ` (${f.dkimSource})`;
    return { kind: 'pass', domain, how: 'dkim', reason: `DKIM signature for ${f.dkimDomain}${from} aligns (adkim=${d.record.adkim})` };
  }
  const unknown = [f.spfAlignment, f.dkimAlignment].find((a): a is Extract<Alignment, { aligned: 'temperror' }> => a?.aligned === 'temperror');
  if (unknown) return { kind: 'unknown', domain, reason: `alignment not known: ${unknown.error}` };
  // The directory might have named a signing domain that aligns: fail open, as for a DNS temperror.
  if (f.dkimLdapError !== undefined) return { kind: 'unknown', domain, reason: `DKIM signing domains from LDAP not known: ${f.dkimLdapError}` };
  const spfWhy = !f.spfPasses ? 'SPF does not pass for the relays' : `MAIL FROM domain not aligned (aspf=${d.record.aspf})`;
  const dkimWhy = f.dkimAlignment ? `no DKIM signing domain aligned (adkim=${d.record.adkim})` : 'no DKIM signing domain known';
  return {
    kind: 'violation',
    domain,
    policy: d.disposition,
    recordDomain: d.recordDomain,
    reason: `DMARC ${d.appliedTag}=${d.policy} at ${d.recordDomain}: ${spfWhy}; ${dkimWhy}`,
  };
}

/** SPF passes for the relays, as the configured check can tell. */
export function spfPassesForRelays(spf: JudgedAssessment | undefined): boolean {
  if (!spf || spf.kind !== 'pass') return false;
  if (spf.check === 'evaluate') return spf.outbound !== undefined && spf.outbound.length > 0 && spf.outbound.every((o) => o.result === 'pass');
  return spf.result === 'restrictive';
}

export interface DmarcInput {
  from: FromField;
  /** The MAIL FROM domain, when there is one. */
  mailFromDomain: string | undefined;
  /** The SPF judgement of the MAIL FROM domain. */
  spf: JudgedAssessment | undefined;
  /** Domains the message will be or was signed for: DKIM_SIGNING_DOMAINS, LDAP_DKIM_ATTRIBUTE values, present DKIM-Signature d= values (dkimDomainsFor). */
  dkimDomains: readonly DkimCandidate[];
  /** The From: domain's LDAP lookup for its signing domains failed: why (see judgeDmarc). */
  dkimLdapError?: string;
  /** The envelope is rewritten (MILTER_MODE=rewrite): SPF is for the rewriting domain. */
  envelopeRewritten?: boolean;
}

/** The From: domain the judgement is about (A-labels, lower case), when the field names one usable domain. */
export function dmarcFromDomain(from: FromField): string | undefined {
  const d = fromDomainOf(from);
  return typeof d === 'string' ? d : undefined;
}

/** The From: field as a judgement when it names no single domain, else the domain (A-labels). */
function fromDomainOf(from: FromField): string | DmarcJudgement {
  switch (from.kind) {
    case 'one': {
      const checked = senderDomain(from.domain);
      return typeof checked === 'string' ? checked : { kind: 'not-applicable', reason: `From: domain unusable: ${checked.reason}` };
    }
    case 'several':
      return { kind: 'not-applicable', reason: `From: names ${from.domains.length} domains` };
    case 'several-fields':
      return { kind: 'not-applicable', reason: `${from.count} From: fields` };
    case 'missing':
      return { kind: 'not-applicable', reason: 'no From: field' };
    case 'none':
      return { kind: 'not-applicable', reason: 'From: holds no address' };
    case 'invalid':
      return { kind: 'not-applicable', reason: `From: unreadable: ${from.reason}` };
  }
}

/**
 * The judgement with what it was made of, for `sos-milter check --from` and the audit: the
 * From: domain, the policy discovery (where the record is), the SPF and DKIM alignments.
 */
export interface DmarcReport {
  judgement: DmarcJudgement;
  /** The From: domain (A-labels), when the From: field named one. */
  fromDomain?: string;
  discovery?: Discovery;
  /** SPF passes for the relays (false after an envelope rewrite). */
  spfPasses?: boolean;
  /** Absent when not needed (no enforcing policy) or not possible (SPF does not pass, no MAIL FROM domain). */
  spfAlignment?: Alignment;
  /** The best DKIM alignment found among the signing domains; absent when none is known. */
  dkimAlignment?: Alignment;
  dkimDomain?: string;
  /** Where dkimDomain is known from. */
  dkimSource?: DkimSource;
  /** Every signing domain judged, with its source. */
  dkimCandidates?: readonly DkimCandidate[];
  /** The LDAP lookup of the From: domain's signing domains failed: why. */
  dkimLdapError?: string;
}

export async function assessDmarc(input: DmarcInput, resolver: Resolver, options: DiscoveryOptions = {}): Promise<DmarcJudgement> {
  return (await assessDmarcReport(input, resolver, options)).judgement;
}

export async function assessDmarcReport(input: DmarcInput, resolver: Resolver, options: DiscoveryOptions = {}): Promise<DmarcReport> {
  const fromDomain = fromDomainOf(input.from);
  if (typeof fromDomain !== 'string') return { judgement: fromDomain };
  const discovery = await discoverPolicy(resolver, fromDomain, options);
  const known = knownDkim(input);
  if (discovery.status !== 'found' || discovery.disposition === 'none') {
    return { judgement: judgeDmarc({ fromDomain, discovery, spfPasses: false, spfAlignment: undefined, dkimAlignment: undefined }), fromDomain, discovery, ...known };
  }
  const spfPasses = !input.envelopeRewritten && spfPassesForRelays(input.spf);
  const spfAlignment = spfPasses && input.mailFromDomain ? await aligns(resolver, fromDomain, input.mailFromDomain, discovery.record.aspf, options) : undefined;
  const dkim = new BestDkim();
  for (const d of input.dkimDomains.slice(0, MAX_DKIM_DOMAINS)) if (dkim.add(d, await aligns(resolver, fromDomain, d.domain, discovery.record.adkim, options))) break;
  return reportOf(fromDomain, discovery, spfPasses, spfAlignment, dkim, input);
}

/** The report's fields on what was known of DKIM before any alignment. */
function knownDkim(input: DmarcInput): Pick<DmarcReport, 'dkimCandidates' | 'dkimLdapError'> {
  return {
    ...(input.dkimDomains.length > 0 ? { dkimCandidates: input.dkimDomains.slice(0, MAX_DKIM_DOMAINS) } : {}),
    ...(input.dkimLdapError !== undefined ? { dkimLdapError: input.dkimLdapError } : {}),
  };
}

/** DKIM signing domains judged per message at most (DKIM_SIGNING_DOMAINS, up to 8 from LDAP, up to 4 present). */
export const MAX_DKIM_DOMAINS = 16;

/** The best DKIM alignment among the signing domains: aligned, else unknown (temperror), else the first. */
export class BestDkim {
  alignment: Alignment | undefined;
  candidate: DkimCandidate | undefined;
  /** True when `a` aligns: no need to look further. */
  add(d: DkimCandidate, a: Alignment): boolean {
    if (this.alignment === undefined || a.aligned === true || (a.aligned === 'temperror' && this.alignment.aligned === false)) {
      this.alignment = a;
      this.candidate = d;
    }
    return a.aligned === true;
  }
}

function reportOf(fromDomain: string, discovery: Discovery, spfPasses: boolean, spfAlignment: Alignment | undefined, dkim: BestDkim, input: DmarcInput): DmarcReport {
  const { alignment: dkimAlignment, candidate } = dkim;
  const dkimLdapError = input.dkimLdapError;
  const judgement = judgeDmarc({
    fromDomain,
    discovery,
    spfPasses,
    spfAlignment,
    dkimAlignment,
    ...(candidate ? { dkimDomain: candidate.domain, dkimSource: candidate.source } : {}),
    ...(dkimLdapError !== undefined ? { dkimLdapError } : {}),
  });
  return {
    judgement,
    fromDomain,
    discovery,
    spfPasses,
    ...(spfAlignment ? { spfAlignment } : {}),
    ...(dkimAlignment ? { dkimAlignment } : {}),
    ...(candidate ? { dkimDomain: candidate.domain, dkimSource: candidate.source } : {}),
    ...knownDkim(input),
  };
}

/**
 * assessDmarc's judgement when every DNS answer it needs is cached, else undefined: the daemon
 * judges a warm message without a promise, a timer or an abort controller (as the SPF side does).
 */
export function assessDmarcNow(input: DmarcInput, resolver: Resolver, options: DiscoveryOptions = {}): DmarcJudgement | undefined {
  const fromDomain = fromDomainOf(input.from);
  if (typeof fromDomain !== 'string') return fromDomain;
  const discovery = discoverPolicyNow(resolver, fromDomain, options);
  if (discovery === undefined) return undefined;
  if (discovery.status !== 'found' || discovery.disposition === 'none') {
    return judgeDmarc({ fromDomain, discovery, spfPasses: false, spfAlignment: undefined, dkimAlignment: undefined });
  }
  const spfPasses = !input.envelopeRewritten && spfPassesForRelays(input.spf);
  let spfAlignment: Alignment | undefined;
  if (spfPasses && input.mailFromDomain) {
    spfAlignment = alignsNow(resolver, fromDomain, input.mailFromDomain, discovery.record.aspf, options);
    if (spfAlignment === undefined) return undefined;
  }
  const dkim = new BestDkim();
  for (const d of input.dkimDomains.slice(0, MAX_DKIM_DOMAINS)) {
    const a = alignsNow(resolver, fromDomain, d.domain, discovery.record.adkim, options);
    if (a === undefined) return undefined;
    if (dkim.add(d, a)) break;
  }
  return reportOf(fromDomain, discovery, spfPasses, spfAlignment, dkim, input).judgement;
}

/** One line for an alignment: `aligned (r)`, `not aligned (s)`, `unknown (r): error`, or `-`. */
export function alignmentText(a: Alignment | undefined, what?: string): string {
  if (!a) return '-';
  const on = what ? ` ${what}` : '';
  if (a.aligned === 'temperror') return `unknown${on} (${a.mode}): ${a.error}`;
  return `${a.aligned ? 'aligned' : 'not aligned'}${on} (${a.mode === 'r' ? 'relaxed' : 'strict'})`;
}

/** The d= tag of a DKIM-Signature field's value (RFC 6376 §3.5), lower case, or undefined. */
export function dkimSigningDomain(value: string): string | undefined {
  const m = /(?:^|;)\s*d\s*=\s*([^;\s]+)/i.exec(value.length > 8192 ? value.slice(0, 8192) : value);
  return m ? m[1].toLowerCase().replace(/\.$/, '') : undefined;
}

/** DKIM-Signature fields read per message at most (their d= only). */
export const MAX_DKIM_FIELDS = 4;

/**
 * The domains a message will be (or already was) signed for: DKIM_SIGNING_DOMAINS (`*`: the
 * ESP signs for every From: domain, so the From: domain itself), the values of
 * LDAP_DKIM_ATTRIBUTE on the From: domain's entry (`ldap`), and the d= values present. Each
 * domain once, with the first source that names it.
 */
export function dkimDomainsFor(signingDomains: readonly string[], from: FromField, present: readonly string[] = [], ldap: readonly string[] = []): DkimCandidate[] {
  const out: DkimCandidate[] = [];
  const seen = new Set<string>();
  const add = (domain: string, source: DkimSource): void => {
    if (seen.has(domain)) return;
    seen.add(domain);
    out.push({ domain, source });
  };
  if (from.kind === 'one' && signingDomains.includes('*')) add(from.domain, 'DKIM_SIGNING_DOMAINS');
  for (const d of signingDomains) if (d !== '*') add(d, 'DKIM_SIGNING_DOMAINS');
  for (const d of ldap) add(d, 'LDAP');
  for (const d of present) add(d, 'DKIM-Signature');
  return out;
}

/** What the own-domain lookup of the From: domain says of its signing domains (LDAP_DKIM_ATTRIBUTE). */
export interface LdapDkim {
  /** The entry's signing domains (none when the domain is not own). */
  domains: readonly string[];
  /** The lookup failed: why. */
  error?: string;
}

/** The From: domain's signing domains when the directory knows them without waiting (cached), else undefined. */
export function ldapDkimNow(port: OwnDomainPort, fromDomain: string): LdapDkim | undefined {
  const answer = port.isOwnDomainNow?.(fromDomain);
  return answer && ldapDkimOf(answer);
}

/** The From: domain's signing domains from the directory (the own-domain lookup, cached; it never throws). */
export async function ldapDkimFor(port: OwnDomainPort, fromDomain: string): Promise<LdapDkim> {
  return ldapDkimOf(await port.isOwnDomain(fromDomain));
}

/** DmarcInput's DKIM fields from DKIM_SIGNING_DOMAINS, the d= values present and the directory's answer. */
export function dkimInput(signingDomains: readonly string[], from: FromField, present: readonly string[] = [], ldap?: LdapDkim): Pick<DmarcInput, 'dkimDomains' | 'dkimLdapError'> {
  const dkimDomains = dkimDomainsFor(signingDomains, from, present, ldap?.domains);
  return ldap?.error !== undefined ? { dkimDomains, dkimLdapError: ldap.error } : { dkimDomains };
}

/** The signing domains an own-domain answer carries, or the failure to report. */
export function ldapDkimOf(answer: OwnDomainAnswer): LdapDkim {
  if (answer.source === 'error') return { domains: [], error: answer.error ?? 'LDAP lookup failed' };
  return { domains: answer.own ? (answer.dkimDomains ?? []) : [] };
}

/** What the DMARC judgement makes the milter do; the SPF outcome's vocabulary (decide.ts). */
export type DmarcOutcome =
  | { action: 'none'; reason: string }
  | { action: 'pass'; reason: string }
  | { action: 'pass-ignored-next-hop'; reason: string }
  /** The text after `550 5.7.1 `. */
  | { action: 'reject'; rejectText: string; reason: string }
  | { action: 'tag'; header: { name: string; value: string }; reason: string }
  /** Rewrite mode: the message leaves with an SRS envelope, so only DKIM can align; logged, not refused. */
  | { action: 'warn'; reason: string };

export interface DmarcDecisionSettings {
  mode: MilterMode;
  milterName: string;
  /** DMARC_REJECT_MESSAGE. */
  rejectMessage: string;
}

export const DMARC_HEADER = { name: 'X-SOS-Milter', value: 'failed DMARC-expectation' } as const;

/** The sentence logged and sent for a DMARC violation. */
export function dmarcViolationSentence(judged: Extract<DmarcJudgement, { kind: 'violation' }>): string {
  return `DMARC policy (${judged.policy}) of 5322_from_domain=${judged.domain} is not met: neither SPF nor DKIM will align!`;
}

/**
 * Decides from the judgement like decideOutcome does from the SPF assessment: a violation is
 * refused in reject mode, marked (for every From: domain) in test mode and logged as a warning
 * in rewrite mode (the customer's mail keeps flowing there), unless every next hop is ignored;
 * anything else passes (unknown fails open).
 */
export function decideDmarc(judged: DmarcJudgement, facts: Pick<MessageFacts, 'recipients'>, settings: DmarcDecisionSettings, messageId: string): DmarcOutcome {
  if (judged.kind === 'not-applicable') return { action: 'none', reason: judged.reason };
  if (judged.kind !== 'violation') return { action: 'pass', reason: judged.reason };
  if (facts.recipients.everyIgnored()) return { action: 'pass-ignored-next-hop', reason: `every next hop is ignored (${facts.recipients.toString()})` };
  if (settings.mode === 'reject') {
    return { action: 'reject', rejectText: `${settings.milterName}: ${messageId} ${dmarcViolationSentence(judged)} ${settings.rejectMessage}`, reason: judged.reason };
  }
  if (settings.mode === 'rewrite') return { action: 'warn', reason: judged.reason };
  return { action: 'tag', header: { ...DMARC_HEADER }, reason: judged.reason };
}
