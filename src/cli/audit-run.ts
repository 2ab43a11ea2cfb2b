// The audit's work: the own domains listed from LDAP, each judged as the daemon would judge it.
import { domainToASCII } from 'node:url';
import type { LdapDomainDirectory, ListDomainsOptions } from '../ldap/index.js';
import { errorMessage, type Logger } from '../log/index.js';
import type { OwnDomainAnswer, OwnDomainPort } from '../policy/index.js';
import { mapBounded } from '../lib/bounded-map.js';
import type { DomainJudge, DomainReport } from './domain-report.js';

/**
 * Every own domain the directory lists, in A-labels (IDNA) as the daemon sees a sender domain,
 * with each domain's values of `query.contactAttribute` (unchecked: LDAP holds
 * anything) and, with `query.dkim`, its DKIM signing domains (LDAP_DKIM_ATTRIBUTE, checked).
 */
export async function listOwnDomainsWithContacts(
  directory: LdapDomainDirectory,
  query: ListDomainsOptions,
): Promise<{ listed: Set<string>; contacts: Map<string, string[]>; dkim: Map<string, readonly string[]> }> {
  const listed = new Set<string>();
  const contacts = new Map<string, string[]>();
  const dkim = new Map<string, readonly string[]>();
  for await (const page of directory.listOwnDomainContacts(query)) {
    for (const { domain, contacts: values, dkimDomains } of page) {
      const name = domainToASCII(domain) || domain;
      listed.add(name);
      if (values.length > 0) contacts.set(name, [...(contacts.get(name) ?? []), ...values]);
      if (dkimDomains && dkimDomains.length > 0) dkim.set(name, [...new Set([...(dkim.get(name) ?? []), ...dkimDomains])]);
    }
  }
  return { listed, contacts, dkim };
}

/**
 * The audited domains are own by definition (they came from LDAP): asked of LDAP again, they
 * would say so, with the signing domains their entries list (`dkim`, read with the listing).
 */
export function listedOwnDomains(listed: ReadonlySet<string>, fallback: OwnDomainPort | undefined, dkim?: ReadonlyMap<string, readonly string[]>): OwnDomainPort {
  return {
    isOwnDomain(domain: string): Promise<OwnDomainAnswer> {
      const name = domain.toLowerCase();
      if (listed.has(name)) return Promise.resolve(dkim ? { own: true, source: 'ldap', dkimDomains: dkim.get(name) ?? [] } : { own: true, source: 'ldap' });
      return fallback ? fallback.isOwnDomain(domain) : Promise.resolve({ own: false, source: 'ldap' });
    },
  };
}

/** A report for each domain, in the order given, at most `concurrency` judged at once. */
export function judgeDomains(
  domains: readonly string[],
  judge: DomainJudge,
  options: { concurrency: number; logger: Logger; onDone?: (done: number) => void },
): Promise<DomainReport[]> {
  const { logger } = options;
  return mapBounded(
    domains,
    options.concurrency,
    async (domain): Promise<DomainReport> => {
      try {
        // Kept until the end for sorted output: drop what the report does not print, so
        // that 100,000 domains stay in tens of megabytes.
        const report = await judge.judge(domain);
        if (report.remedy.kind === 'record') report.remedy = { ...report.remedy, budget: undefined };
        return report;
      } catch (e) {
        // Not expected (the assessment fails open by design); one domain must not end the audit.
        logger.error({ domain, err: e }, 'audit: judging the domain failed');
        const reason = `internal error: ${errorMessage(e)}`;
        return { domain, status: 'unjudged', result: 'error', actions: { test: 'none', reject: 'none' }, reason, remedy: { kind: 'unknown', reason } };
      }
    },
    { onDone: options.onDone },
  );
}
