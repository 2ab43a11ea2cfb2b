export * from './types.js';
export { StubResolver, DEFAULT_TIMEOUT_MS, DEFAULT_RETRIES, type StubResolverOptions, type StubResolverStats } from './stub-resolver.js';
export { ServerHealth, DEFAULT_REPROBE_MS, type ServerHealthChange, type ServerHealthOptions } from './server-health.js';
export { CachingResolver, DEFAULT_CACHE_OPTIONS, type CacheOptions, type CacheStats } from './cache.js';
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
export { label as serverLabel } from './transport.js';
