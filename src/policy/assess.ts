import type { EffectiveRecord, SpfResult } from '../spf/index.js';
import type { Assessment, OutboundResult, OwnDomainPort, Ownership, PolicySettings, SpfPort } from './types.js';

export interface AssessInput {
  /** The sender address as given (local@domain), used for SPF's %{s} and %{l}. */
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
  if (!record) return false;
  return record.terms.some((term) => term.kind === 'mechanism' && term.name === 'all' && term.qualifier === '-');
}

/** SPF_REGEX is satisfied when the queried record or any record it redirects to matches. */
function recordMatchesRegex(eff: EffectiveRecord, settings: PolicySettings): boolean {
  return eff.chain.some((link) => link.text !== undefined && settings.spfRegex.matches(link.text));
}

async function ownership(deps: AssessDeps, domain: string): Promise<{ ownership: Ownership; error?: string }> {
  if (!deps.ownDomains) return { ownership: 'not-asked' };
  const answer = await deps.ownDomains.isOwnDomain(domain);
  if (answer.source === 'error') return { ownership: 'unknown', error: answer.error ?? 'LDAP error' };
  return { ownership: answer.own ? 'own' : 'foreign' };
}

export async function assessSender(input: AssessInput, deps: AssessDeps, settings: PolicySettings): Promise<Assessment> {
  return settings.check === 'regex' ? assessByRegex(input, deps, settings) : assessByEvaluation(input, deps, settings);
}

/** The original's rule done right: a parsed `-all` term, and a record text that matches SPF_REGEX. */
async function assessByRegex(input: AssessInput, deps: AssessDeps, settings: PolicySettings): Promise<Assessment> {
  const eff = await deps.spf.effectiveRecord(input.domain);
  const base = {
    domain: input.domain,
    check: 'regex' as const,
    record: eff.text,
    recordDomain: eff.domain,
    detail: '-all',
  };
  if (eff.status !== 'found') {
    return { ...base, ownership: 'not-asked', result: eff.status, violation: false, failOpen: true, reason: eff.reason };
  }
  if (!hasRestrictiveAll(eff.record)) {
    return {
      ...base,
      ownership: 'not-asked',
      result: 'not-restrictive',
      violation: false,
      failOpen: false,
      reason: 'record has no -all',
    };
  }
  if (recordMatchesRegex(eff, settings)) {
    return { ...base, ownership: 'not-asked', result: 'restrictive', violation: false, failOpen: false, reason: 'record matches SPF_REGEX' };
  }
  // Ownership only changes the outcome in test mode (header and log line); a reject is a reject.
  const owner = settings.mode === 'test' ? await ownership(deps, input.domain) : { ownership: 'not-asked' as const };
  return {
    ...base,
    ownership: owner.ownership,
    ownershipError: owner.error,
    result: 'restrictive',
    violation: true,
    failOpen: false,
    reason: 'restrictive record (-all) does not match SPF_REGEX',
  };
}

/** RFC 7208 check_host() for each of our outbound relays; own domains must in addition pass outright. */
async function assessByEvaluation(input: AssessInput, deps: AssessDeps, settings: PolicySettings): Promise<Assessment> {
  const checks = await deps.spf.checkHostForIps(input.sender, input.helo, [...settings.outboundIps]);
  const outbound: OutboundResult[] = settings.outboundIps.map((ip) => {
    const check = checks.get(ip);
    return check
      ? { ip, result: check.result, reason: check.reason }
      : { ip, result: 'temperror' as const, reason: 'no evaluation result' };
  });
  const worst = outbound.reduce((a, b) => (RESULT_SEVERITY[b.result] > RESULT_SEVERITY[a.result] ? b : a));
  const violating = outbound.find((o) => settings.violationResults.has(o.result));
  const temporary = outbound.find((o) => o.result === 'temperror');

  const base = { domain: input.domain, check: 'evaluate' as const, outbound };
  if (violating) {
    // The verdict is settled; in test mode ownership still decides the header.
    const owner = settings.mode === 'test' ? await ownership(deps, input.domain) : { ownership: 'not-asked' as const };
    const eff = await recordForLog(deps, input.domain);
    return {
      ...base,
      ...eff,
      ownership: owner.ownership,
      ownershipError: owner.error,
      result: violating.result,
      violation: true,
      failOpen: false,
      detail: `${violating.result} for ${violating.ip}`,
      reason: `${violating.result} for outbound ${violating.ip}: ${violating.reason}`,
    };
  }
  if (temporary) {
    const eff = await recordForLog(deps, input.domain);
    return {
      ...base,
      ...eff,
      ownership: 'not-asked',
      result: 'temperror',
      violation: false,
      failOpen: true,
      detail: `temperror for ${temporary.ip}`,
      reason: `temperror for outbound ${temporary.ip}: ${temporary.reason}`,
    };
  }

  const owner = await ownership(deps, input.domain);
  const eff = await deps.spf.effectiveRecord(input.domain);
  const recordFields = { record: eff.text, recordDomain: eff.domain };
  const foreignFailOpen = worst.result === 'none' || worst.result === 'permerror';
  if (owner.ownership !== 'own') {
    return {
      ...base,
      ...recordFields,
      ownership: owner.ownership,
      ownershipError: owner.error,
      result: worst.result,
      violation: false,
      failOpen: foreignFailOpen,
      detail: `${worst.result} for ${worst.ip}`,
      reason: foreignFailOpen ? `${worst.result}: ${worst.reason}` : `no outbound address gives a violating result (worst: ${worst.result})`,
    };
  }

  // Own domains must publish a record that carries the documented statements and passes for every relay.
  const problems: string[] = [];
  if (eff.status === 'temperror') {
    return {
      ...base,
      ...recordFields,
      ownership: 'own',
      result: 'temperror',
      violation: false,
      failOpen: true,
      detail: 'temperror',
      reason: `own domain, record lookup failed: ${eff.reason}`,
    };
  }
  if (eff.status !== 'found') problems.push(`no usable record (${eff.status}: ${eff.reason})`);
  else if (!recordMatchesRegex(eff, settings)) problems.push('record does not match SPF_REGEX');
  const notPassing = outbound.find((o) => o.result !== 'pass');
  if (notPassing) problems.push(`${notPassing.result} for outbound ${notPassing.ip}`);
  const broken = problems.length > 0;
  return {
    ...base,
    ...recordFields,
    ownership: 'own',
    result: worst.result,
    violation: broken,
    failOpen: false,
    detail: notPassing ? `${notPassing.result} for ${notPassing.ip}` : eff.status !== 'found' ? `no record` : 'expected statements missing',
    reason: broken ? `own domain: ${problems.join('; ')}` : 'own domain passes for every outbound address and matches SPF_REGEX',
  };
}

/** The record is only for the log here; its lookup shares the evaluator's cached DNS answers. */
async function recordForLog(deps: AssessDeps, domain: string): Promise<{ record?: string; recordDomain?: string }> {
  try {
    const eff = await deps.spf.effectiveRecord(domain);
    return { record: eff.text, recordDomain: eff.domain };
  } catch {
    return {};
  }
}
