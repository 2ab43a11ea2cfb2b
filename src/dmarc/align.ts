/**
 * Identifier alignment (RFC 7489 §3.1, DMARCbis): an authenticated domain (the MAIL FROM
 * domain SPF passes for, or a DKIM signing domain d=) aligns with the RFC5322.From domain
 * strictly when the two are the same name, relaxed when their organizational domains are.
 */
import type { Resolver } from '../dns/index.js';
import { organizationalDomain, organizationalDomainNow, type DiscoveryOptions, type OrgDomain } from './discover.js';
import type { AlignmentMode } from './record.js';

export type Alignment = { aligned: boolean; mode: AlignmentMode; orgDomains?: [string, string] } | { aligned: 'temperror'; mode: AlignmentMode; error: string };

/** The two names in the same form: lower case, no trailing dot. */
function norm(d: string): string {
  return (d.endsWith('.') ? d.slice(0, -1) : d).toLowerCase();
}

/** The alignment when it needs no organizational domain, else the two names (normalised) whose organizational domains decide. */
function alignWithoutOrg(fromDomain: string, authDomain: string, mode: AlignmentMode): Alignment | [string, string] {
  const a = norm(fromDomain);
  const b = norm(authDomain);
  if (a === b) return { aligned: true, mode };
  if (mode === 's') return { aligned: false, mode };
  // Names that share no label past the top-level domain cannot share an organizational domain
  // (it has at least the labels of the public suffix plus one, or is the name itself).
  const tail = (d: string): string => d.slice(d.lastIndexOf('.', d.lastIndexOf('.') - 1) + 1);
  if (tail(a) !== tail(b)) return { aligned: false, mode };
  return [a, b];
}

function alignByOrg(mode: AlignmentMode, oa: OrgDomain, ob: OrgDomain): Alignment {
  if (oa.status === 'temperror') return { aligned: 'temperror', mode, error: oa.error };
  if (ob.status === 'temperror') return { aligned: 'temperror', mode, error: ob.error };
  return { aligned: oa.orgDomain === ob.orgDomain, mode, orgDomains: [oa.orgDomain, ob.orgDomain] };
}

/**
 * Whether `authDomain` aligns with `fromDomain` in `mode`. Relaxed alignment needs both
 * organizational domains (a tree walk each, answered from the cache once warm); a name and its
 * own subdomain share the organizational domain only if the walk says so (a parent publishing
 * psd=y, for instance, separates them).
 */
export async function aligns(resolver: Resolver, fromDomain: string, authDomain: string, mode: AlignmentMode, options: DiscoveryOptions = {}): Promise<Alignment> {
  const pre = alignWithoutOrg(fromDomain, authDomain, mode);
  if (!Array.isArray(pre)) return pre;
  const [oa, ob] = await Promise.all([organizationalDomain(resolver, pre[0], options), organizationalDomain(resolver, pre[1], options)]);
  return alignByOrg(mode, oa, ob);
}

/** aligns' answer when every DNS answer it needs is cached, else undefined. */
export function alignsNow(resolver: Resolver, fromDomain: string, authDomain: string, mode: AlignmentMode, options: DiscoveryOptions = {}): Alignment | undefined {
  const pre = alignWithoutOrg(fromDomain, authDomain, mode);
  if (!Array.isArray(pre)) return pre;
  const oa = organizationalDomainNow(resolver, pre[0], options);
  const ob = oa && organizationalDomainNow(resolver, pre[1], options);
  return ob && alignByOrg(mode, oa, ob);
}
