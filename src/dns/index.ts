export * from './types.js';
export { StubResolver, DEFAULT_TIMEOUT_MS, DEFAULT_RETRIES, type StubResolverOptions, type StubResolverStats } from './stub-resolver.js';
export { CachingResolver, DEFAULT_CACHE_OPTIONS, entryBytes, type CacheOptions, type CacheStats } from './cache.js';
export { boundTxtAnswer, txtRecordCount, startsSpfRecord, MAX_SPF_RECORD_OCTETS, MAX_EXPLANATION_OCTETS } from './txt-bound.js';
export {
  parseServers,
  parseServer,
  parseResolvConf,
  systemServers,
  serversFromEnv,
  DnsServersError,
  DEFAULT_DNS_PORT,
  type DnsServer,
} from './servers.js';
export { canonicalName } from './names.js';
import { StubResolver } from './stub-resolver.js';
import { CachingResolver, type CacheOptions } from './cache.js';
import { systemServers, type DnsServer } from './servers.js';

export interface CreateResolverOptions {
  /** Upstream servers; default: the system's (see systemServers). */
  servers?: DnsServer[];
  /** Overall budget per upstream lookup in ms (DNS_TIMEOUT_MS). */
  timeoutMs?: number;
  retries?: number;
  cache?: CacheOptions;
}

/** The product's resolver: a caching stub resolver. Reach the stub via `.upstream`. */
export function createResolver(options: CreateResolverOptions = {}): CachingResolver {
  const servers = options.servers && options.servers.length > 0 ? options.servers : systemServers();
  const stub = new StubResolver({ servers, timeoutMs: options.timeoutMs, retries: options.retries });
  return new CachingResolver(stub, options.cache);
}

/** Reads DNS_TIMEOUT_MS; undefined when unset, RangeError when not a positive integer. */
export function timeoutFromEnv(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const n = Number(value.trim());
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`DNS_TIMEOUT_MS must be a positive integer of milliseconds, got ${JSON.stringify(value)}`);
  return n;
}
