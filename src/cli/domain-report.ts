/**
 * One own domain judged the way the daemon judges a message from it (the same assessSender
 * and decideOutcome, the same settings), plus what the postmaster needs on top: the remedy
 * and the lookup budget. Shared by `sos-milter check` and `sos-milter audit`.
 */
import type { Config } from '../config/index.js';
import { assessmentTimeoutMs, type DmarcParts, type PolicyParts } from '../app/policy-parts.js';
import { aligns, type Alignment } from '../dmarc/index.js';
import type { LookupOptions, LookupResult, RecordTypeMap, Resolver, RRType } from '../dns/index.js';
import {
  assessDmarcReport,
  BestDkim,
  assessSender,
  dkimInput,
  ldapDkimFor,
  spfPassesForRelays,
  decideOutcome,
  findRemedy,
  hasTerm,
  MAX_DKIM_DOMAINS,
  mechanismFromRegex,
  RecipientHops,
  type Action,
  type DkimSource,
  type DmarcJudgement,
  type FromField,
  type JudgedAssessment,
  type MilterMode,
  type OwnDomainPort,
  type PolicySettings,
  type Remedy,
  type RemedyInput,
  type RemedyVerifier,
} from '../policy/index.js';
import { BUDGET_WARN_AT, lookupBudget, SpfEvaluator, termCost, type EffectiveRecord, type LookupBudget } from '../spf/index.js';
import { escapeText } from '../log/escape.js';

/** pass: nothing to do; fail: the daemon would reject, tag or log; unjudged: it fails open. */
export type DomainStatus = 'pass' | 'fail' | 'unjudged';

export interface BudgetReport {
  used: number;
  limit: number;
  voidLookups: number;
  voidLimit: number;
  /** Lower bound only (macros, DNS errors). */
  incomplete: boolean;
  /** What the configured mechanism would add, when the record lacks it. */
  addition?: { term: string; cost: number };
  /** Set when the budget is at BUDGET_WARN_AT or more, or the addition would exceed it. */
  warning?: string;
}

export interface DomainReport {
  domain: string;
  status: DomainStatus;
  /** The assessment's result under the configured check. */
  result: string;
  /** The action a message from this domain gets in each MILTER_MODE. */
  /** The action in test and reject mode (rewrite mode acts as reject mode on the same assessment, with an SRS address instead of the 550). */
  actions: Record<'test' | 'reject', Action>;
  record?: string;
  recordDomain?: string;
  reason: string;
  remedy: Remedy;
  budget?: BudgetReport;
  /** The DMARC columns (DMARC_CHECK=on or `audit --dmarc`). */
  dmarc?: DomainDmarc;
}

export type Readiness = 'yes' | 'no' | 'unknown';

/** The domain's DMARC policy and how ready mail From: the domain itself is to align. */
export interface DomainDmarc {
  /** The disposition a receiver applies (after pct=0 / t=y), `no-policy`, or `unknown` (DNS failure). */
  policy: 'reject' | 'quarantine' | 'none' | 'no-policy' | 'unknown';
  /** Where the record was found (the domain itself or an ancestor) and the tag that applies. */
  recordDomain?: string;
  tag?: 'p' | 'sp' | 'np';
  /** Would SPF align for a message From: the domain sent with the domain as envelope sender: SPF passes for the relays. */
  spfAligned: Readiness;
  /**
   * Is DKIM signing configured for it: a DKIM_SIGNING_DOMAINS entry or a value of the entry's
   * LDAP_DKIM_ATTRIBUTE that aligns (adkim; `*` signs for every domain).
   */
  dkimSigning: Readiness;
  /** Where the aligned signing domain is known from, when one aligns. */
  dkimSource?: DkimSource;
  /** The prospective judgement of such a message (the daemon's, with no DKIM-Signature present). */
  verdict: DmarcJudgement['kind'];
  reason: string;
}

/** SPF_REMEDY_MECHANISM, else the mechanism SPF_REGEX names. */
export function remedyMechanism(config: Config): string | undefined {
  return config.remedyMechanism ?? mechanismFromRegex(config.spfRegex.source);
}

/** A resolver that answers TXT for one name with a record not (yet) published. */
class OverlayResolver implements Resolver {
  constructor(
    private readonly below: Resolver,
    private readonly name: string,
    private readonly text: string,
  ) {}

  lookup<T extends RRType>(name: string, type: T, options?: LookupOptions): Promise<LookupResult<RecordTypeMap[T]>> {
    if (type === 'TXT' && name.toLowerCase().replace(/\.$/, '') === this.name) {
      // TXT character-strings hold at most 255 octets (RFC 1035 §3.3); receivers join them (RFC 7208 §3.3).
      const strings: string[] = [];
      for (let i = 0; i < this.text.length; i += 255) strings.push(this.text.slice(i, i + 255));
      const answer: LookupResult<RecordTypeMap['TXT']> = { records: [strings], nxdomain: false, ttl: 0 };
      return Promise.resolve(answer as LookupResult<RecordTypeMap[T]>);
    }
    return this.below.lookup(name, type, options);
  }
}

/** The state of the record the domain itself publishes (a broken redirect target is not its own). */
function ownRecordStatus(eff: EffectiveRecord): RemedyInput['recordStatus'] {
  if (eff.status === 'temperror' || eff.chain.length <= 1 || eff.chain[0]?.text === undefined) return eff.status;
  return 'found';
}

function statusOf(a: JudgedAssessment): DomainStatus {
  return a.kind === 'violation' ? 'fail' : a.kind === 'fail-open' ? 'unjudged' : 'pass';
}

function senderFor(domain: string) {
  // The audit asks about the domain, not a mailbox: postmaster exists at every mail domain (RFC 5321 §4.5.1).
  return { sender: `postmaster@${domain}`, domain, helo: domain };
}

export interface DomainJudge {
  judge(domain: string): Promise<DomainReport>;
  /** Remedy and budget for an assessment made elsewhere (`check`). */
  extras(assessment: JudgedAssessment): Promise<{ remedy: Remedy; budget?: BudgetReport }>;
}

function readiness(a: Alignment | undefined): Readiness {
  if (!a) return 'no';
  return a.aligned === 'temperror' ? 'unknown' : a.aligned ? 'yes' : 'no';
}

/** The DMARC columns: the daemon's judgement of a message From: postmaster@DOMAIN whose envelope sender is at DOMAIN. */
async function domainDmarc(domain: string, spf: JudgedAssessment, dmarc: DmarcParts, ownDomains: OwnDomainPort | undefined, signal: AbortSignal): Promise<DomainDmarc> {
  const from: FromField = { kind: 'one', address: `postmaster@${domain}`, domain, mailboxes: 1 };
  const options = { signal, psl: dmarc.psl };
  // LDAP_DKIM_ATTRIBUTE: the audit's port answers from the listing (read with the attribute), so no search per domain.
  const ldap = dmarc.ldapSigningDomains && ownDomains ? await ldapDkimFor(ownDomains, domain) : undefined;
  const dkim = dkimInput(dmarc.signingDomains, from, [], ldap);
  const dkimDomains = dkim.dkimDomains;
  const report = await assessDmarcReport({ from, mailFromDomain: domain, spf, ...dkim }, dmarc.resolver, options);
  const d = report.discovery;
  const found = d?.status === 'found' ? d : undefined;
  // The envelope domain is the From: domain: SPF aligns in either mode whenever it passes.
  const spfAligned: Readiness = spf.kind === 'fail-open' && spf.result === 'temperror' ? 'unknown' : spfPassesForRelays(spf) ? 'yes' : 'no';
  // With an enforcing policy the judgement already tried the signing domains; else try them here (adkim, or relaxed without a record).
  let best = report.dkimAlignment;
  let source = report.dkimSource;
  if (!best && !(found && found.disposition !== 'none')) {
    const pick = new BestDkim();
    for (const signing of dkimDomains.slice(0, MAX_DKIM_DOMAINS)) {
      if (pick.add(signing, await aligns(dmarc.resolver, domain, signing.domain, found?.record.adkim ?? 'r', options))) break;
    }
    if (pick.candidate) {
      best = pick.alignment;
      source = pick.candidate.source;
    }
  }
  // Not aligned as far as known, but the directory could not be asked: not known.
  const dkimSigning = readiness(best) === 'no' && report.dkimLdapError !== undefined ? 'unknown' : readiness(best);
  return {
    policy: found ? found.disposition : d?.status === 'none' ? 'no-policy' : 'unknown',
    ...(found ? { recordDomain: found.recordDomain, tag: found.appliedTag } : {}),
    spfAligned,
    dkimSigning,
    ...(best?.aligned === true && source ? { dkimSource: source } : {}),
    verdict: report.judgement.kind,
    reason: report.judgement.reason,
  };
}

export function createDomainJudge(config: Config, parts: PolicyParts, ownDomains: OwnDomainPort | undefined, dmarc?: DmarcParts): DomainJudge {
  const mechanism = remedyMechanism(config);
  const settingsFor = (mode: MilterMode): PolicySettings => ({ ...parts.settings, mode });
  const deps = { spf: parts.spf, ...(ownDomains ? { ownDomains } : {}) };
  // The daemon's deadline for one message's SPF and LDAP work: a domain that takes longer fails open here too.
  const deadline = () => ({ signal: AbortSignal.timeout(assessmentTimeoutMs(config)) });
  // A message with the facts the MTA always sends: a queue id, a client, one recipient of unknown next hop.
  const facts = () => {
    const recipients = new RecipientHops();
    recipients.add(undefined, parts.ignoredNextHops);
    return { queueId: 'AUDIT', client: '127.0.0.1', recipients };
  };

  const verifier: RemedyVerifier = {
    async verify(domain, recordText) {
      const overlay = new OverlayResolver(parts.resolver, domain, recordText);
      const spf = new SpfEvaluator({ resolver: overlay, receiverHost: 'audit' });
      const a = await assessSender(senderFor(domain), { spf, ...(ownDomains ? { ownDomains } : {}) }, parts.settings, deadline());
      return { passes: a.kind === 'pass', reason: a.reason, budget: await lookupBudget(overlay, domain, recordText) };
    },
  };

  async function budgetReport(domain: string, ownRecord: string | undefined): Promise<{ report?: BudgetReport; budget?: LookupBudget }> {
    const budget = await lookupBudget(parts.resolver, domain);
    if (!budget) return {};
    const report: BudgetReport = { used: budget.used, limit: budget.limit, voidLookups: budget.voidLookups, voidLimit: budget.voidLimit, incomplete: budget.incomplete };
    const hasMechanism = mechanism !== undefined && ownRecord !== undefined && hasTerm(ownRecord, mechanism);
    if (mechanism !== undefined && !hasMechanism) report.addition = { term: mechanism, ...(await termCost(parts.resolver, domain, mechanism)) };
    const after = budget.used + (report.addition?.cost ?? 0);
    if (budget.used > budget.limit) {
      report.warning = `${budget.used} of ${budget.limit} DNS lookups: over the limit, permerror at every receiver (RFC 7208 §4.6.4)`;
    } else if (report.addition && after > budget.limit) {
      report.warning = `adding ${report.addition.term} (+${report.addition.cost}) would need ${after} of ${budget.limit} DNS lookups: permerror at every receiver (RFC 7208 §4.6.4)`;
    } else if (budget.used >= BUDGET_WARN_AT) {
      report.warning = `${budget.used} of ${budget.limit} DNS lookups used: little room for another include`;
    }
    if (budget.voidLookups > budget.voidLimit) {
      report.warning = `${report.warning ? `${report.warning}; ` : ''}${budget.voidLookups} void lookups (limit ${budget.voidLimit})`;
    }
    return { report, budget };
  }

  async function extras(assessment: JudgedAssessment): Promise<{ remedy: Remedy; budget?: BudgetReport }> {
    const eff = await parts.spf.effectiveRecord(assessment.domain);
    const ownRecord = eff.chain[0]?.text;
    const { report, budget } = await budgetReport(assessment.domain, ownRecord);
    const remedy = await findRemedy(
      { assessment, check: parts.settings.check, ownRecord, recordStatus: ownRecordStatus(eff), mechanism, currentBudget: budget },
      verifier,
    );
    return { remedy, ...(report ? { budget: report } : {}) };
  }

  return {
    extras,
    async judge(domain) {
      const input = senderFor(domain);
      const configured = await assessSender(input, deps, settingsFor(config.milterMode), deadline());
      // The mode changes an assessment only through ownership, which only test mode asks of a
      // violation (assess.ts), and a reject decision does not read it (decide.ts): a second
      // assessment is needed only for the test action of a violation judged in reject mode.
      const forTest = config.milterMode === 'test' || configured.kind !== 'violation' ? configured : await assessSender(input, deps, settingsFor('test'), deadline());
      const byMode: Record<'test' | 'reject', JudgedAssessment> = { test: forTest, reject: configured };
      const actions = {} as Record<'test' | 'reject', Action>;
      for (const mode of ['test', 'reject'] as const) {
        actions[mode] = decideOutcome(
          byMode[mode],
          facts(),
          { mode, ignoredNextHops: parts.ignoredNextHops, milterName: config.milterName, rejectMessage: config.milterRejectMessage },
          'audit',
        ).action;
      }
      const { remedy, budget } = await extras(configured);
      const dmarcColumns = dmarc && (await domainDmarc(domain, configured, dmarc, ownDomains, deadline().signal));
      return {
        domain,
        status: statusOf(configured),
        result: configured.result,
        actions,
        ...(configured.record !== undefined ? { record: configured.record } : {}),
        ...(configured.recordDomain !== undefined && configured.recordDomain !== domain ? { recordDomain: configured.recordDomain } : {}),
        reason: configured.reason,
        remedy,
        ...(budget ? { budget } : {}),
        ...(dmarcColumns ? { dmarc: dmarcColumns } : {}),
      };
    },
  };
}

/**
 * A line for the terminal: records and reasons come from DNS, so every control, line break and
 * bidi character is escaped as the logs escape it (src/log/escape.ts), never written raw.
 */
export function terminalLine(text: string): string {
  return escapeText(text, false, Number.POSITIVE_INFINITY);
}

/** The same, in double quotes with `"` escaped too (a record shown as a string). */
export function terminalQuoted(text: string): string {
  return `"${escapeText(text, true, Number.POSITIVE_INFINITY)}"`;
}

/** `7/10`, or `7+/10` when the count is a lower bound (macros, DNS errors). */
export function lookupsUsed(b: BudgetReport): string {
  return `${b.used}${b.incomplete ? '+' : ''}/${b.limit}`;
}
