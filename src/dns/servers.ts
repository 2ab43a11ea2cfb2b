import { readFileSync } from 'node:fs';
import { getServers } from 'node:dns';
import { isIP } from 'node:net';

/** One upstream DNS server. `host` is an IPv4 or IPv6 literal (no brackets). */
export interface DnsServer {
  host: string;
  port: number;
}

export const DEFAULT_DNS_PORT = 53;

/**
 * A DNS_SERVERS value that cannot be used; `entry` is the offending item, `reason` what is wrong
 * with it. Not a DnsError (no lookup failed): its `code` is always 'BAD_SERVERS'.
 */
export class DnsServersError extends Error {
  readonly code = 'BAD_SERVERS' as const;
  readonly entry: string;
  readonly reason: string;

  constructor(entry: string, reason: string) {
    super(`DNS_SERVERS entry ${JSON.stringify(entry)}: ${reason}`);
    this.name = 'DnsServersError';
    this.entry = entry;
    this.reason = reason;
  }
}

function parsePort(entry: string, text: string): number {
  if (!/^\d{1,5}$/.test(text)) throw new DnsServersError(entry, `port ${JSON.stringify(text)} is not a number`);
  const port = Number(text);
  if (port < 1 || port > 65535) throw new DnsServersError(entry, `port ${port} is out of range 1-65535`);
  return port;
}

/** Parses one `host`, `host:port`, `[v6]`, `[v6]:port` or bare `v6` item. */
export function parseServer(raw: string): DnsServer {
  const entry = raw.trim();
  if (entry === '') throw new DnsServersError(raw, 'empty entry');
  let host: string;
  let port = DEFAULT_DNS_PORT;
  if (entry.startsWith('[')) {
    const close = entry.indexOf(']');
    if (close < 0) throw new DnsServersError(entry, 'missing closing bracket');
    host = entry.slice(1, close);
    const rest = entry.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) throw new DnsServersError(entry, 'expected ":port" after the bracketed address');
      port = parsePort(entry, rest.slice(1));
    }
    if (isIP(host) !== 6) throw new DnsServersError(entry, `${JSON.stringify(host)} is not an IPv6 address`);
    return { host, port };
  }
  // More than one colon and no brackets: a bare IPv6 address, which cannot carry a port.
  const colons = entry.split(':').length - 1;
  if (colons > 1) {
    if (isIP(entry) !== 6) throw new DnsServersError(entry, 'not an IPv6 address (use [addr]:port to give a port)');
    return { host: entry, port };
  }
  if (colons === 1) {
    const at = entry.indexOf(':');
    host = entry.slice(0, at);
    port = parsePort(entry, entry.slice(at + 1));
  } else {
    host = entry;
  }
  if (isIP(host) !== 4) throw new DnsServersError(entry, `${JSON.stringify(host)} is not an IPv4 address`);
  return { host, port };
}

/** Parses the DNS_SERVERS syntax: comma-separated servers, whitespace around items ignored. */
export function parseServers(value: string): DnsServer[] {
  if (value.trim() === '') throw new DnsServersError(value, 'no servers given');
  return value.split(',').map(parseServer);
}

/** Nameservers from resolv.conf text; scoped IPv6 (fe80::1%eth0) keeps its zone id. */
export function parseResolvConf(text: string): DnsServer[] {
  const servers: DnsServer[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (!m) continue;
    const host = m[1];
    const bare = host.split('%')[0];
    if (isIP(bare) !== 0) servers.push({ host, port: DEFAULT_DNS_PORT });
  }
  return servers;
}

/** The system's resolvers: /etc/resolv.conf, else whatever Node's resolver was configured with. */
export function systemServers(resolvConfPath = '/etc/resolv.conf'): DnsServer[] {
  try {
    const fromFile = parseResolvConf(readFileSync(resolvConfPath, 'latin1'));
    if (fromFile.length > 0) return fromFile;
  } catch {
    // No resolv.conf (containers, non-Unix): fall through to Node's view.
  }
  return getServers().map((s) => {
    try {
      return parseServer(s);
    } catch {
      return { host: s, port: DEFAULT_DNS_PORT };
    }
  });
}

/** DNS_SERVERS when set (and non-blank), else the system's servers. */
export function serversFromEnv(value: string | undefined): DnsServer[] {
  if (value === undefined || value.trim() === '') return systemServers();
  return parseServers(value);
}
