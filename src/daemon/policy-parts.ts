/**
 * The policy's collaborators as the configuration describes them: the DNS resolver and its
 * cache, the SPF evaluator, the LDAP directory and the plain settings. Built here once, so the
 * daemon and `sos-milter check` judge with exactly the same parts.
 */
import { hostname } from 'node:os';
import type { Config } from '../config/index.js';
import { CachingResolver, StubResolver, systemServers, type Resolver } from '../dns/index.js';
import { directoryFromConfig, type LdapDomainDirectory } from '../ldap/index.js';
import type { Logger } from '../log/index.js';
import { IgnoredNextHops, type PolicySettings } from '../policy/index.js';
import { SpfEvaluator, type SpfResult } from '../spf/index.js';

export interface PolicyParts {
  stub: StubResolver;
  resolver: CachingResolver;
  spf: SpfEvaluator;
  /** Undefined when LDAP is disabled. */
  directory: LdapDomainDirectory | undefined;
  settings: PolicySettings;
  ignoredNextHops: IgnoredNextHops;
}

export interface PolicyPartsOptions {
  /** Wraps the resolver that asks the DNS servers (the daemon times it for its metrics). */
  wrapUpstream?: (upstream: Resolver) => Resolver;
}

export function createPolicyParts(config: Config, logger: Logger, options: PolicyPartsOptions = {}): PolicyParts {
  const stub = new StubResolver({ servers: config.dnsServers ?? systemServers(), timeoutMs: config.dnsTimeoutMs });
  const resolver = new CachingResolver(options.wrapUpstream ? options.wrapUpstream(stub) : stub);
  return {
    stub,
    resolver,
    spf: new SpfEvaluator({ resolver, receiverHost: hostname() }),
    directory: config.ldap ? directoryFromConfig(config.ldap, logger) : undefined,
    settings: {
      mode: config.milterMode,
      check: config.spfCheck,
      spfRegex: config.spfRegex,
      outboundIps: config.outboundIps,
      violationResults: new Set<SpfResult>(config.spfViolationResults),
    },
    ignoredNextHops: new IgnoredNextHops(config.ignoredNextHops),
  };
}
