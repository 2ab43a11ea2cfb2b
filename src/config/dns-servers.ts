/** DNS_SERVERS through the DNS layer's own parser, so both agree on the syntax. */
import { DnsServersError, parseServers, type DnsServer } from '../dns/servers.js';
import { ConfigError } from './errors.js';
import { isUnset } from './parse.js';

/** Undefined when unset: the resolver then uses the system's servers. */
export function parseDnsServers(variable: string, raw: string | undefined): DnsServer[] | undefined {
  if (isUnset(raw)) return undefined;
  try {
    return parseServers(raw);
  } catch (err) {
    if (err instanceof DnsServersError) {
      throw new ConfigError('INVALID', variable, `entry ${JSON.stringify(err.entry)}: ${err.reason}; use comma-separated IP or IP:port entries, IPv6 in brackets, e.g. 127.0.0.1, [::1]:5353`, { cause: err });
    }
    throw err;
  }
}
