/** Parsers for the list-valued variables. */
import { isIP } from 'node:net';
import { ConfigError } from './errors.js';
import { hasControlChars, parsePort, show, splitList } from './parse.js';

/** `[relay.example]:25`, `relay.example`, compared without regard to case. */
export function parseNextHops(variable: string, raw: string | undefined): string[] {
  const hops = splitList(raw).map((hop) => hop.toLowerCase());
  for (const hop of hops) {
    if (hasControlChars(hop) || /\s/.test(hop)) {
      throw new ConfigError('INVALID', variable, `entry ${show(hop)} contains white space or control characters; list next hops separated by commas, e.g. [relay.example]:25, relay.example`);
    }
  }
  return [...new Set(hops)];
}

export function parseIpList(variable: string, raw: string | undefined): string[] {
  const ips = splitList(raw);
  for (const ip of ips) {
    if (isIP(ip) === 0) throw new ConfigError('INVALID', variable, `entry ${show(ip)} is not an IPv4 or IPv6 address; list addresses separated by commas, e.g. 192.0.2.10, 2001:db8::25`);
  }
  return ips;
}

export type SpfViolationResult = 'fail' | 'softfail' | 'permerror';
const VIOLATION_RESULTS: readonly SpfViolationResult[] = ['fail', 'softfail', 'permerror'];

/**
 * The SPF results that count as a violation. `fail` is always required: a policy that
 * tolerated `-all` while stopping `~all` would be a configuration mistake.
 */
export function parseViolationResults(variable: string, raw: string | undefined): SpfViolationResult[] {
  const words = splitList(raw).map((w) => w.toLowerCase());
  if (words.length === 0) return ['fail'];
  const out = new Set<SpfViolationResult>();
  for (const word of words) {
    if (!(VIOLATION_RESULTS as readonly string[]).includes(word)) {
      throw new ConfigError('INVALID', variable, `${show(word)} is not allowed; use a comma-separated subset of ${VIOLATION_RESULTS.join(', ')}`);
    }
    out.add(word as SpfViolationResult);
  }
  if (!out.has('fail')) throw new ConfigError('INVALID', variable, `must include fail (got ${show(raw ?? '')}); e.g. fail or fail,softfail`);
  return VIOLATION_RESULTS.filter((r) => out.has(r));
}

export interface LdapUri {
  /** Normalised `ldap://host:port` / `ldaps://host:port` as ldapts expects it. */
  url: string;
  secure: boolean;
}

/** One or more `ldap://` / `ldaps://` URIs separated by spaces or commas, tried in order. */
export function parseLdapUris(variable: string, raw: string | undefined): LdapUri[] {
  const entries = splitList(raw, /[\s,]+/);
  if (entries.length === 0) throw new ConfigError('MISSING', variable, 'is required when LDAP_ENABLED is set; e.g. ldaps://ldap.example:636');
  return entries.map((entry) => {
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      throw new ConfigError('INVALID', variable, `${show(entry)} is not a URI; use ldap://host[:port] or ldaps://host[:port]`);
    }
    const scheme = url.protocol.toLowerCase();
    if (scheme !== 'ldap:' && scheme !== 'ldaps:') {
      throw new ConfigError('INVALID', variable, `${show(entry)} has scheme ${show(scheme)}; only ldap:// and ldaps:// are allowed`);
    }
    // Node's URL leaves non-special schemes' host parsing lax; insist on a real host.
    if (url.hostname === '' || url.username !== '' || url.password !== '' || (url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') {
      throw new ConfigError('INVALID', variable, `${show(entry)} must name only scheme, host and optional port (no user, path, or query); use ldap://host[:port]`);
    }
    if (url.port !== '') parsePort(variable, url.port, entry);
    const host = url.hostname;
    return { url: `${scheme}//${host}${url.port !== '' ? `:${url.port}` : ''}`, secure: scheme === 'ldaps:' };
  });
}
