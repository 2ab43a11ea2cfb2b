import { EvaluationAbortedError, type EffectiveRecord, type SpfResult } from '../spf/index.js';
import { spfSender, type EnvelopeSender } from './sender.js';
import type {
  Assessment,
  CancelOptions,
  FailOpenAssessment,
  JudgedAssessment,
  OutboundResult,
  OwnDomainAnswer,
  OwnDomainPort,
  Ownership,
  PassAssessment,
  PolicySettings,
  SpfCheckMode,
  SpfPort,
} from './types.js';

export interface AssessInput {
  /** The sender address (local@domain), used for SPF's %{s} and %{l}. */
  sender: string;
  /** Lower-case A-label domain of the sender. */
  domain: string;
  /** The client's HELO name, for SPF's %{h}; may be empty. */
  helo: string;
}

export interface AssessDeps {
  spf: SpfPort;
  /** Absent when LDAP is disabled. */
  ownDomains?: OwnDomainPort;
}

/** Order of badness, used to report one result for several outbound addresses. */
const RESULT_SEVERITY: Record<SpfResult, number> = {
  pass: 0,
  none: 1,
  neutral: 2,
  softfail: 3,
  temperror: 4,
  permerror: 5,
  fail: 6,
};

export function hasRestrictiveAll(record: EffectiveRecord['record']): boolean {
  if (!record?.hasAll) return false;
  for (const term of record.mechanisms) if (term.name === 'all' && term.qualifier === '-') return true;
  return false;
}

/** SPF_REGEX is satisfied when the queried record or any record it redirects to matches. */
function recordMatchesRegex(eff: EffectiveRecord, settings: PolicySettings): boolean {
  for (const link of eff.chain) if (link.text !== undefined && settings.spfRegex.matches(link.text)) return true;
  return false;
}

interface OwnerAnswer {
  ownership: Ownership;
  ownershipError?: string;
}

const NOT_ASKED: OwnerAnswer = { ownership: 'not-asked' };

async function ownership(deps: AssessDeps, domain: string): Promise<OwnerAnswer> {
  if (!deps.ownDomains) return NOT_ASKED;
  return ownerAnswer(await deps.ownDomains.isOwnDomain(domain));
}

/** Ownership when it is known without waiting (no directory, or a cached answer), else undefined. */
function ownershipNow(deps: AssessDeps, domain: string): OwnerAnswer | undefined {
  if (!deps.ownDomains) return NOT_ASKED;
  const answer = deps.ownDomains.isOwnDomainNow?.(domain);
  return answer && ownerAnswer(answer);
}

function ownerAnswer(answer: OwnDomainAnswer): OwnerAnswer {
  if (answer.source === 'error') return { ownership: 'unknown', ownershipError: answer.error ?? 'LDAP error' };
  return { ownership: answer.own ? 'own' : 'foreign' };
}

/** Ownership only changes the outcome of a violation in test mode (header and log line); a reject is a reject. */
function ownershipMatters(settings: PolicySettings): boolean {
  return settings.mode === 'test';
}

function ownershipOfViolation(deps: AssessDeps, domain: string, settings: PolicySettings): Promise<OwnerAnswer> | OwnerAnswer {
  return ownershipMatters(settings) ? ownership(deps, domain) : NOT_ASKED;
}

/** The assessment of a sender without a usable domain, or undefined when there is one to judge. */
function notJudged(sender: EnvelopeSender): Assessment | undefined {
  if (sender.kind === 'null') return { kind: 'not-judged', reason: 'null sender (bounce/DSN): not judged' };
  if (sender.kind === 'no-domain') return { kind: 'not-judged', reason: `sender has no usable domain: not judged (${sender.reason})` };
  return undefined;
}

/**
 * What an assessment gives: the assessment itself when it needed no waiting (every answer
 * cached), else a promise of it. The daemon judges most messages at MAIL without a promise.
 */
export type AssessmentRun<A> = A | Promise<A>;

/**
 * Judges a sender domain: the one assessment the daemon, `sos-milter check` and `sos-milter
 * audit` share. Sync when every answer is cached (the regex check, and the ownership a test-mode
 * violation needs); else a promise. With a signal, an abort settles the assessment at once as
 * fail-open (temperror, the abort reason as its reason) and the work behind it is told to stop;
 * an unexpected failure of the work rejects, and the caller decides what it makes of it.
 */
export function assessSender(input: AssessInput, deps: AssessDeps, settings: PolicySettings, options: CancelOptions = {}): AssessmentRun<JudgedAssessment> {
  const signal = options.signal;
  if (signal?.aborted) return failOpen(input.domain, settings.check, abortReason(signal));
  const known = assessmentNow(input, deps, settings);
  if (known) return known;
  const work = settings.check === 'regex' ? assessByRegex(input, deps, settings, options) : assessByEvaluation(input, deps, settings, options);
  if (!signal) return work;
  // One listener per assessment that has to wait for DNS or LDAP: 0.2 to 0.9 µs to add and
  // remove (Node 20, loaded 2-core host), against the milliseconds of the lookups themselves.
  return new Promise((resolve, reject) => {
    const onAbort = (): void => resolve(failOpen(input.domain, settings.check, abortReason(signal)));
    signal.addEventListener('abort', onAbort, { once: true });
    // The listener goes with the work: a signal that outlives it (a long timeout, a controller
    // the daemon reuses) holds nothing. After an abort the work's rejection is expected, and lost.
    const done = (): void => signal.removeEventListener('abort', onAbort);
    work.then(
      (judged) => (done(), resolve(judged)),
      (err: unknown) => (done(), reject(err)),
    );
  });
}

/** A parsed envelope sender judged: assessSender, or not judged for a sender without a usable domain. */
export function assessEnvelope(
  sender: EnvelopeSender,
  helo: string,
  deps: AssessDeps,
  settings: PolicySettings,
  options: CancelOptions = {},
): AssessmentRun<Assessment> {
  if (sender.kind !== 'domain') return notJudged(sender)!;
  return assessSender({ sender: spfSender(sender), domain: sender.domain, helo }, deps, settings, options);
}

export function failOpen(domain: string, check: SpfCheckMode, reason: string): FailOpenAssessment {
  return { kind: 'fail-open', domain, check, ownership: 'not-asked', result: 'temperror', reason };
}

function abortReason(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  return typeof reason === 'string' ? reason : reason instanceof Error ? reason.message : 'assessment cancelled';
}

/** The original's rule done right: a parsed `-all` term, and a record text that matches SPF_REGEX. */
async function assessByRegex(input: AssessInput, deps: AssessDeps, settings: PolicySettings, options: CancelOptions): Promise<JudgedAssessment> {
  const eff = await deps.spf.effectiveRecord(input.domain, options);
  const judged = judgeByRegex(input.domain, eff, settings, NOT_ASKED);
  if (judged.kind !== 'violation' || !ownershipMatters(settings)) return judged;
  return judgeByRegex(input.domain, eff, settings, await ownership(deps, input.domain));
}

/**
 * The assessment when it needs no waiting: the regex check, with the effective record and (for a
 * violation in test mode) the ownership known without a lookup. Undefined otherwise.
 */
function assessmentNow(input: AssessInput, deps: AssessDeps, settings: PolicySettings): JudgedAssessment | undefined {
  if (settings.check !== 'regex') return undefined;
  const eff = deps.spf.effectiveRecordNow?.(input.domain);
  if (eff === undefined) return undefined;
  const judged = judgeByRegex(input.domain, eff, settings, NOT_ASKED);
  if (judged.kind !== 'violation' || !ownershipMatters(settings)) return judged;
  const owner = ownershipNow(deps, input.domain);
  return owner && judgeByRegex(input.domain, eff, settings, owner);
}

function judgeByRegex(domain: string, eff: EffectiveRecord, settings: PolicySettings, owner: OwnerAnswer): JudgedAssessment {
  // Literals with every field written out: spreading a shared part cost an object per message.
  const { text: record, domain: recordDomain } = eff;
  if (eff.status !== 'found') {
    if (eff.localFault) return { kind: 'fail-open', domain, check: 'regex', record, recordDomain, ownership: 'not-asked', result: eff.status, reason: eff.reason, localFault: true };
    return { kind: 'fail-open', domain, check: 'regex', record, recordDomain, ownership: 'not-asked', result: eff.status, reason: eff.reason };
  }
  if (!hasRestrictiveAll(eff.record)) {
    return { kind: 'pass', domain, check: 'regex', record, recordDomain, ownership: 'not-asked', result: 'not-restrictive', reason: 'record has no -all' };
  }
  if (recordMatchesRegex(eff, settings)) {
    return { kind: 'pass', domain, check: 'regex', record, recordDomain, ownership: 'not-asked', result: 'restrictive', reason: 'record matches SPF_REGEX' };
  }
  return {
    kind: 'violation',
    domain,
    check: 'regex',
    record,
    recordDomain,
    ownership: owner.ownership,
    ...(owner.ownershipError !== undefined ? { ownershipError: owner.ownershipError } : {}),
    result: 'restrictive',
    detail: '-all',
    reason: 'restrictive record (-all) does not match SPF_REGEX',
  };
}

/** RFC 7208 check_host() for each of our outbound relays; own domains must in addition pass outright. */
async function assessByEvaluation(input: AssessInput, deps: AssessDeps, settings: PolicySettings, options: CancelOptions): Promise<JudgedAssessment> {
  const checks = await deps.spf.checkHostForIps(input.sender, input.helo, [...settings.outboundIps], options);
  const outbound: OutboundResult[] = settings.outboundIps.map((ip) => {
    const check = checks.get(ip);
    if (!check) return { ip, result: 'temperror', reason: 'no evaluation result' };
    return check.localFault ? { ip, result: check.result, reason: check.reason, localFault: true } : { ip, result: check.result, reason: check.reason };
  });
  const found = { domain: input.domain, check: 'evaluate' as const, outbound };

  const violating = outbound.find((o) => settings.violationResults.has(o.result));
  if (violating) {
    // The verdict is settled; in test mode ownership still decides the header.
    const owner = await ownershipOfViolation(deps, input.domain, settings);
    return {
      kind: 'violation',
      ...found,
      ...(await recordForLog(deps, input.domain, options)),
      ...owner,
      result: violating.result,
      detail: `${violating.result} for ${violating.ip}`,
      reason: `${violating.result} for outbound ${violating.ip}: ${violating.reason}`,
    };
  }
  // A local fault first: it alone turns the message into a tempfail in reject mode.
  const temporary = outbound.find((o) => o.result === 'temperror' && o.localFault) ?? outbound.find((o) => o.result === 'temperror');
  if (temporary) {
    return {
      kind: 'fail-open',
      ...found,
      ...(await recordForLog(deps, input.domain, options)),
      ...NOT_ASKED,
      result: 'temperror',
      reason: `temperror for outbound ${temporary.ip}: ${temporary.reason}`,
      ...(temporary.localFault ? { localFault: true as const } : {}),
    };
  }

  const answer = deps.ownDomains && (await deps.ownDomains.isOwnDomain(input.domain));
  const owner = answer ? ownerAnswer(answer) : NOT_ASKED;
  const eff = await deps.spf.effectiveRecord(input.domain, options);
  const judged = { ...found, record: eff.text, recordDomain: eff.domain, ...owner };
  const worst = outbound.reduce((a, b) => (RESULT_SEVERITY[b.result] > RESULT_SEVERITY[a.result] ? b : a));
  if (owner.ownership === 'own') return judgeOwnDomain(judged, eff, outbound, worst, settings);
  if (answer?.localFault) {
    // The directory was never asked (no file descriptor): were the domain ours, would it be a
    // violation? Then "not own" would pass it unjudged; it is a local fault (a tempfail in reject mode).
    const asOwn = judgeOwnDomain(judged, eff, outbound, worst, settings);
    if (asOwn.kind === 'violation') {
      const reason = `own-domain lookup failed for want of a local resource (${owner.ownershipError}); as an own domain: ${asOwn.reason}`;
      return { kind: 'fail-open', ...judged, result: 'temperror', reason, localFault: true };
    }
  }
  if (worst.result === 'none' || worst.result === 'permerror') {
    return { kind: 'fail-open', ...judged, result: worst.result, reason: `${worst.result}: ${worst.reason}` };
  }
  return { kind: 'pass', ...judged, result: worst.result, reason: `no outbound address gives a violating result (worst: ${worst.result})` };
}

/** Own domains must publish a record that carries the documented statements and passes for every relay. */
function judgeOwnDomain(
  judged: Omit<PassAssessment, 'kind' | 'result' | 'reason'>,
  eff: EffectiveRecord,
  outbound: readonly OutboundResult[],
  worst: OutboundResult,
  settings: PolicySettings,
): JudgedAssessment {
  if (eff.status === 'temperror') {
    return { kind: 'fail-open', ...judged, result: 'temperror', reason: `own domain, record lookup failed: ${eff.reason}`, ...(eff.localFault ? { localFault: true as const } : {}) };
  }
  const problems: string[] = [];
  if (eff.status !== 'found') problems.push(`no usable record (${eff.status}: ${eff.reason})`);
  else if (!recordMatchesRegex(eff, settings)) problems.push('record does not match SPF_REGEX');
  const notPassing = outbound.find((o) => o.result !== 'pass');
  if (notPassing) problems.push(`${notPassing.result} for outbound ${notPassing.ip}`);
  if (problems.length === 0) {
    return { kind: 'pass', ...judged, result: worst.result, reason: 'own domain passes for every outbound address and matches SPF_REGEX' };
  }
  return {
    kind: 'violation',
    ...judged,
    result: worst.result,
    detail: notPassing ? `${notPassing.result} for ${notPassing.ip}` : eff.status !== 'found' ? 'no record' : 'expected statements missing',
    reason: `own domain: ${problems.join('; ')}`,
  };
}

/** The record is only for the log here; its lookup shares the evaluator's cached DNS answers. */
async function recordForLog(deps: AssessDeps, domain: string, options: CancelOptions): Promise<{ record?: string; recordDomain?: string }> {
  try {
    const eff = await deps.spf.effectiveRecord(domain, options);
    return { record: eff.text, recordDomain: eff.domain };
  } catch (err) {
    // A cancelled assessment stops here too: nothing more is asked for it.
    if (err instanceof EvaluationAbortedError) throw err;
    return {};
  }
}
