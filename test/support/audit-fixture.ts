/**
 * An ESP's own-domain tree for the audit test and bench: N domains in slapd (one entry each,
 * RDN dc=<domain>) whose SPF records Knot serves, with a known mix of passing and broken
 * records and the remedy each broken one should get.
 *
 * The ESP: relay 192.0.2.10; customers must `include:_spf.esp.test`, which itself costs two
 * DNS lookups (it includes _relays.esp.test). SPF_CHECK=evaluate, SPF_REGEX names the include.
 */

export const ESP_INCLUDE = 'include:_spf.esp.test';
export const RELAY = '192.0.2.10';
export const ZONE = 'audit.test';
export const HANG_ZONE = 'hang.audit-timeout.test';
const BASE_DN = 'dc=example,dc=test';
export const SEARCH_BASE = `ou=domains,${BASE_DN}`;
export const HOSTED_BASE = `ou=hosted,${BASE_DN}`;
export const MILTER_DN = `uid=milter,ou=accounts,${BASE_DN}`;
export const MILTER_PW = 'milter-secret';

export type Kind =
  | 'pass'
  | 'pass-budget-9'
  | 'fail-missing-include'
  | 'softfail-missing-include'
  | 'regex-missing-include'
  | 'redirect-missing-include'
  | 'no-record'
  | 'permerror'
  | 'timeout'
  | 'budget-8-missing-include'
  | 'budget-9-missing-include';

export interface FixtureDomain {
  domain: string;
  kind: Kind;
  /** TXT published at the domain; undefined: none. */
  record?: string;
  /** Expected audit status. */
  status: 'pass' | 'fail' | 'unjudged';
  /** Expected remedy: the suggested record, or a pattern of the reason when none is possible. */
  remedy?: { record: string } | { impossible: RegExp } | { unknown: true };
}

/** How many of each broken kind; everything else passes. */
export const BROKEN_COUNTS: Record<Exclude<Kind, 'pass'>, number> = {
  'pass-budget-9': 5,
  'fail-missing-include': 20,
  'softfail-missing-include': 5,
  'regex-missing-include': 10,
  'redirect-missing-include': 5,
  'no-record': 10,
  permerror: 10,
  timeout: 3,
  'budget-8-missing-include': 5,
  'budget-9-missing-include': 5,
};

function includes(n: number): string {
  return Array.from({ length: n }, (_, i) => `include:_n${i + 1}.${ZONE}`).join(' ');
}

function make(kind: Kind, i: number): FixtureDomain {
  const name = (prefix: string) => `${prefix}${String(i).padStart(5, '0')}.${ZONE}`;
  switch (kind) {
    case 'pass':
      return { domain: name('p'), kind, record: i % 2 ? `v=spf1 ${ESP_INCLUDE} -all` : `v=spf1 ip4:198.51.100.0/24 ${ESP_INCLUDE} ~all`, status: 'pass' };
    case 'pass-budget-9':
      // 7 includes + the ESP's (2) = 9: passes, and is flagged.
      return { domain: name('q'), kind, record: `v=spf1 ${includes(7)} ${ESP_INCLUDE} -all`, status: 'pass' };
    case 'fail-missing-include':
      return { domain: name('f'), kind, record: 'v=spf1 ip4:198.51.100.1 -all', status: 'fail', remedy: { record: `v=spf1 ip4:198.51.100.1 ${ESP_INCLUDE} -all` } };
    case 'softfail-missing-include':
      return { domain: name('s'), kind, record: 'v=spf1 mx:mx.esp.test ~all', status: 'fail', remedy: { record: `v=spf1 mx:mx.esp.test ${ESP_INCLUDE} ~all` } };
    case 'regex-missing-include':
      // Passes for the relay, but lacks the statement SPF_REGEX asks for.
      return { domain: name('r'), kind, record: `v=spf1 ip4:${RELAY} -all`, status: 'fail', remedy: { record: `v=spf1 ip4:${RELAY} ${ESP_INCLUDE} -all` } };
    case 'redirect-missing-include':
      return { domain: name('d'), kind, record: `v=spf1 redirect=_hosted.${ZONE}`, status: 'fail', remedy: { record: `v=spf1 ${ESP_INCLUDE} redirect=_hosted.${ZONE}` } };
    case 'no-record':
      return { domain: name('n'), kind, status: 'fail', remedy: { record: `v=spf1 ${ESP_INCLUDE} ~all` } };
    case 'permerror':
      return { domain: name('e'), kind, record: 'v=spf1 ip4:192.0.2.300 -all', status: 'fail', remedy: { impossible: /record is invalid/ } };
    case 'timeout':
      return { domain: `t${i}.${HANG_ZONE}`, kind, status: 'unjudged', remedy: { unknown: true } };
    case 'budget-8-missing-include':
      // 8 + 2 = 10: still within the limit, so the include is the remedy (flagged).
      return { domain: name('h'), kind, record: `v=spf1 ${includes(8)} -all`, status: 'fail', remedy: { record: `v=spf1 ${includes(8)} ${ESP_INCLUDE} -all` } };
    case 'budget-9-missing-include':
      // 9 + 2 = 11: over RFC 7208's 10; no record passes.
      return { domain: name('x'), kind, record: `v=spf1 ${includes(9)} -all`, status: 'fail', remedy: { impossible: /11\/10 DNS lookups/ } };
  }
}

export function fixtureDomains(total: number): FixtureDomain[] {
  const out: FixtureDomain[] = [];
  let i = 0;
  for (const [kind, count] of Object.entries(BROKEN_COUNTS) as [Kind, number][]) for (let n = 0; n < count; n++) out.push(make(kind, i++));
  while (out.length < total) out.push(make('pass', i++));
  return out;
}

/** The zone text; `override` replaces a domain's record (e.g. with its remedy). */
export function zoneText(domains: readonly FixtureDomain[], override: ReadonlyMap<string, string> = new Map()): string {
  const lines = [
    `$ORIGIN ${ZONE}.`,
    '$TTL 300',
    `@ SOA ns.${ZONE}. hostmaster.${ZONE}. 1 3600 600 86400 60`,
    `@ NS ns.${ZONE}.`,
    'ns A 127.0.0.1',
    `_hosted TXT "v=spf1 ip4:203.0.113.0/24 -all"`,
    ...Array.from({ length: 9 }, (_, n) => `_n${n + 1} TXT "v=spf1 ip4:203.0.113.${n + 1} -all"`),
  ];
  for (const d of domains) {
    if (!d.domain.endsWith(`.${ZONE}`)) continue;
    const record = override.get(d.domain) ?? d.record;
    if (record === undefined) continue;
    const label = d.domain.slice(0, -ZONE.length - 1);
    // Records up to 255 octets fit one character-string.
    const strings = record.match(/.{1,255}/g)!.map((s) => `"${s}"`).join(' ');
    lines.push(`${label} TXT ${strings}`);
  }
  return `${lines.join('\n')}\n`;
}

export const ESP_ZONE = [
  '$ORIGIN esp.test.',
  '$TTL 300',
  '@ SOA ns.esp.test. hostmaster.esp.test. 1 3600 600 86400 60',
  '@ NS ns.esp.test.',
  'ns A 127.0.0.1',
  '_spf TXT "v=spf1 include:_relays.esp.test ~all"',
  '_relays TXT "v=spf1 ip4:192.0.2.0/24 -all"',
  'mx A 198.51.100.25',
  '',
].join('\n');

export function ldif(domains: readonly FixtureDomain[]): string {
  const parts = [
    `dn: ${BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example ESP\n`,
    `dn: ${SEARCH_BASE}\nobjectClass: organizationalUnit\nou: domains\n`,
    `dn: ou=accounts,${BASE_DN}\nobjectClass: organizationalUnit\nou: accounts\n`,
    `dn: ${MILTER_DN}\nobjectClass: account\nobjectClass: simpleSecurityObject\nuid: milter\nuserPassword: ${MILTER_PW}\n`,
  ];
  for (const d of domains) parts.push(`dn: dc=${d.domain},${SEARCH_BASE}\nobjectClass: domain\ndc: ${d.domain}\n`);
  // A second layout: one entry per customer, its domains in associatedDomain (LDAP_DOMAIN_ATTRIBUTE).
  parts.push(`dn: ${HOSTED_BASE}\nobjectClass: organizationalUnit\nou: hosted\n`);
  const passing = domains.filter((d) => d.kind === 'pass').slice(0, 4);
  if (passing.length < 3) return parts.join('\n');
  parts.push(`dn: dc=customer1,${HOSTED_BASE}\nobjectClass: domain\nobjectClass: domainRelatedObject\ndc: customer1\nassociatedDomain: ${passing[0]!.domain}\nassociatedDomain: ${passing[1]!.domain}\n`);
  parts.push(`dn: dc=customer2,${HOSTED_BASE}\nobjectClass: domain\nobjectClass: domainRelatedObject\ndc: customer2\nassociatedDomain: ${passing[2]!.domain.toUpperCase()}\n`);
  return parts.join('\n');
}

/** The environment of the audited milter. */
export function auditEnv(ldapUrl: string, dnsPort: number): NodeJS.ProcessEnv {
  return {
    SPF_CHECK: 'evaluate',
    OUTBOUND_IPS: RELAY,
    SPF_REGEX: '^v=spf1 .*include:_spf\\.esp\\.test',
    MILTER_MODE: 'test',
    DNS_SERVERS: `127.0.0.1:${dnsPort}`,
    DNS_TIMEOUT_MS: '1000',
    LDAP_ENABLED: 'yes',
    LDAP_SERVER_URI: ldapUrl,
    LDAP_BINDDN: MILTER_DN,
    LDAP_BINDPW: MILTER_PW,
    LDAP_SEARCH_BASE: SEARCH_BASE,
    LDAP_QUERY_FILTER: '(&(objectClass=domain)(dc=%d))',
    LDAP_TIMEOUT_MS: '5000',
    LOG_LEVEL: 'error',
  };
}
