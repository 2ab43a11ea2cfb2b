/**
 * The policy's collaborators as the configuration describes them: the DNS resolver and its
 * cache, the SPF evaluator, the LDAP directory and the plain settings. Built here once, so the
 * daemon, `sos-milter check` and `sos-milter spf` judge with exactly the same parts.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Config } from '../config/index.js';
import { CachingResolver, DEFAULT_REPROBE_MS, StubResolver, systemServers, type Resolver } from '../dns/index.js';
import { DnsHealthLog } from './dns-health-log.js';
import { parsePublicSuffixList, type PublicSuffixList } from '../dmarc/index.js';
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

export interface DnsParts {
  stub: StubResolver;
  resolver: CachingResolver;
}

export interface PolicyPartsOptions {
  /** Wraps the resolver that asks the DNS servers (the daemon times it for its metrics). */
  wrapUpstream?: (upstream: Resolver) => Resolver;
  /**
   * DMARC is judged although DMARC_CHECK is off (`check --from`, `audit --dmarc`): the
   * directory then reads LDAP_DKIM_ATTRIBUTE too, as it does with DMARC_CHECK=on.
   */
  dmarc?: boolean;
}

export interface DnsPartsOptions extends PolicyPartsOptions {
  /** Hears when a DNS server is marked down or is back (one line each, rate-limited; see dns-health-log.ts). */
  logger?: Logger;
}

/** The one place the product's resolver is built: DNS_SERVERS (or the system's), DNS_TIMEOUT_MS, the cache. */
export function createDnsParts(config: Config, options: DnsPartsOptions = {}): DnsParts {
  const { logger } = options;
  const servers = config.dnsServers ?? systemServers();
  const healthLog = logger && new DnsHealthLog(logger, { reprobeMs: DEFAULT_REPROBE_MS, servers: servers.length, serversDown: () => stub.health.downCount });
  const stub: StubResolver = new StubResolver({
    servers,
    timeoutMs: config.dnsTimeoutMs,
    health: healthLog && { onChange: (change) => healthLog.report(change) },
  });
  return { stub, resolver: new CachingResolver(options.wrapUpstream ? options.wrapUpstream(stub) : stub, { maxBytes: config.dnsCacheMaxBytes }) };
}

/** The one place the SPF evaluator is built. */
export function createSpfEvaluator(resolver: CachingResolver): SpfEvaluator {
  return new SpfEvaluator({ resolver, receiverHost: hostname() });
}

/** Upper bound of one message's SPF and LDAP work: a few sequential DNS timeouts, then fail open. */
export function assessmentTimeoutMs(config: Config): number {
  return config.dnsTimeoutMs * 4 + (config.ldap ? config.ldap.timeoutMs : 0);
}

export function createPolicyParts(config: Config, logger: Logger, options: PolicyPartsOptions = {}): PolicyParts {
  const { stub, resolver } = createDnsParts(config, { ...options, logger });
  return {
    stub,
    resolver,
    spf: createSpfEvaluator(resolver),
    directory: config.ldap ? directoryFromConfig(config.ldap, logger, config.dmarcCheck || options.dmarc === true) : undefined,
    settings: policySettings(config),
    ignoredNextHops: new IgnoredNextHops(config.ignoredNextHops),
  };
}

/** The policy's plain settings from the configuration. */
export function policySettings(config: Config): PolicySettings {
  return {
    mode: config.milterMode,
    check: config.spfCheck,
    spfRegex: config.spfRegex,
    outboundIps: config.outboundIps,
    violationResults: new Set<SpfResult>(config.spfViolationResults),
    ...(config.milterMode === 'rewrite' && config.srs ? { rewriteScope: config.srs.rewrite } : {}),
  };
}

/** DMARC_CHECK=on: what the prospective DMARC judgement needs, for the daemon and `check` alike. */
export interface DmarcParts {
  resolver: Resolver;
  /** DMARC_PSL_FILE read; undefined: the DMARCbis tree walk. */
  psl: PublicSuffixList | undefined;
  /** DKIM_SIGNING_DOMAINS; `*`: the ESP signs for every From: domain. */
  signingDomains: readonly string[];
  /**
   * LDAP_DKIM_ATTRIBUTE is set (LDAP on): the From: domain is looked up in the directory (the
   * same cached own-domain lookup) and its entry's values count as signing domains.
   */
  ldapSigningDomains: boolean;
  /** DMARC_REJECT_MESSAGE. */
  rejectMessage: string;
}

/** The DMARC parts when DMARC_CHECK=on (or `force`, for `check --from`), else undefined. */
export function createDmarcParts(config: Config, resolver: Resolver, force = false): DmarcParts | undefined {
  if (!config.dmarcCheck && !force) return undefined;
  return {
    resolver,
    psl: config.dmarcPslFile ? parsePublicSuffixList(readFileSync(config.dmarcPslFile, 'utf8')) : undefined,
    signingDomains: config.dkimSigningDomains,
    ldapSigningDomains: config.ldap?.dkimAttribute !== undefined,
    rejectMessage: config.dmarcRejectMessage,
  };
}
