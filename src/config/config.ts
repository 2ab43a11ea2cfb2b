/**
 * The whole configuration, read from environment variables only (12-factor), validated
 * up front so that a bad value stops start-up with a message naming the variable.
 */
import { X509Certificate } from 'node:crypto';
import { accessSync, constants, readFileSync } from 'node:fs';
import type { DnsServer } from '../dns/servers.js';
import { errorMessage, REDACTED } from '../log/index.js';
import type { MilterMode, SpfCheckMode } from '../policy/types.js';
import { LDH_DOMAIN } from '../policy/sender.js';
import { ConfigError } from './errors.js';
import { loadSrsConfig, type SrsConfig } from './srs.js';
import { parseDnsServers } from './dns-servers.js';
import { parseIpList, parseLdapUris, parseNextHops, parseViolationResults, type LdapUri, type SpfViolationResult } from './lists.js';
import {
  MAX_TIMER_MS,
  hasControlChars,
  isUnset,
  parseEnum,
  parseInteger,
  parseListenAddress,
  parseOctalMode,
  parseBoolean,
  parseSmtpReplyText,
  show,
  type HostPort,
} from './parse.js';
import { parseMilterSocket, type MilterSocketSpec } from './socket.js';
import { DEFAULT_SPF_REGEX, compileSpfRegex, type SpfRegex } from './spf-regex.js';
import { MILTER_SERVER_DEFAULTS } from '../milter/constants.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'text' | 'json';

export interface LdapConfig {
  uris: LdapUri[];
  /** Undefined: bind anonymously. */
  bindDn: string | undefined;
  bindPw: string | undefined;
  searchBase: string;
  /** Contains `%d`, replaced by the escaped sender domain. */
  queryFilter: string;
  cacheTtlSeconds: number;
  negativeCacheTtlSeconds: number;
  timeoutMs: number;
  /** Lists every own domain (audit); LDAP_QUERY_FILTER with `%d` as `*` by default. */
  auditFilter: string;
  /** Attribute that holds the domain name; undefined: the value of the entry's RDN. */
  domainAttribute: string | undefined;
  /** LDAP_DKIM_ATTRIBUTE: attribute of an own domain's entry naming the DKIM signing domains (d=) of mail From: it; undefined: off. */
  dkimAttribute: string | undefined;
  tls: LdapTlsConfig;
}

export interface LdapTlsConfig {
  /** LDAP_TLS_CA_FILE as given, and its PEM text (read at start-up); undefined: Node's CAs. */
  caFile: string | undefined;
  ca: string | undefined;
  /** Upgrade ldap:// connections with StartTLS (RFC 4513 §3) before any bind. */
  startTls: boolean;
  /** Certificate chain and host name verification; off only by LDAP_TLS_VERIFY=false. */
  verify: boolean;
}

export interface Config {
  logLevel: LogLevel;
  logFormat: LogFormat;
  milterMode: MilterMode;
  /** SRS: required by rewrite mode; also set for the srsdecode socketmap alone. Holds the secrets. */
  srs: SrsConfig | undefined;
  milterName: string;
  /** The socket spec as written (libmilter syntax) and parsed. */
  milterSocket: string;
  milterSocketSpec: MilterSocketSpec;
  milterSocketMode: number;
  milterRejectMessage: string;
  milterTmpfailMessage: string;
  spfRegex: SpfRegex;
  /** SPF_REMEDY_MECHANISM: the term a remedy adds; undefined: derive it from SPF_REGEX. */
  remedyMechanism: string | undefined;
  /** Lower case, trimmed, no empty entries. */
  ignoredNextHops: string[];
  /** Undefined when LDAP_ENABLED is unset. */
  ldap: LdapConfig | undefined;
  spfCheck: SpfCheckMode;
  /** DMARC_CHECK: predict the receiver's DMARC verdict from the From: field (off by default: drop-in). */
  dmarcCheck: boolean;
  /** DMARC_REJECT_MESSAGE: end of the 550 5.7.1 text for a DMARC violation. */
  dmarcRejectMessage: string;
  /** DKIM_SIGNING_DOMAINS: domains the ESP signs for (lower case), `*` in the list: it signs for every From: domain. */
  dkimSigningDomains: string[];
  /** DMARC_PSL_FILE: RFC 7489's organizational domains from this list instead of the DMARCbis tree walk. */
  dmarcPslFile: string | undefined;
  outboundIps: string[];
  spfViolationResults: SpfViolationResult[];
  /** Undefined: use the system's resolvers. */
  dnsServers: DnsServer[] | undefined;
  dnsTimeoutMs: number;
  /** Bound on the DNS cache's estimated memory, bytes. */
  dnsCacheMaxBytes: number;
  metricsListen: HostPort | undefined;
  /** /metrics is rendered at most once per this many ms; scrapes in between get the same body (0: every scrape renders). */
  metricsCacheMs: number;
  healthListen: HostPort | undefined;
  milterMaxConnections: number;
  milterIdleTimeoutMs: number;
  milterPacketTimeoutMs: number;
  milterMaxBufferedBytes: number;
  milterMaxQueuedPackets: number;
  milterMaxWriteBuffer: number;
  /** SMFIR_PROGRESS interval while an end-of-message reply is pending, ms; 0 never. */
  milterProgressIntervalMs: number;
  shutdownTimeoutMs: number;
  /** A view safe to log: the LDAP password is replaced, the regex shown as written. */
  toLog(): Record<string, unknown>;
}

export const DEFAULTS = {
  milterName: 'sos-milter',
  milterSocketMode: 0o666,
  milterRejectMessage: 'Security policy violation!',
  milterTmpfailMessage: 'Service temporarily not available! Please try again later.',
  dmarcRejectMessage: 'The From: domain\'s DMARC policy would not let this message through.',
  ldapCacheTtlSeconds: 300,
  ldapNegativeCacheTtlSeconds: 60,
  ldapTimeoutMs: 2000,
  /** Per DNS query; an SPF evaluation may need several, bounded by the evaluator. */
  dnsTimeoutMs: 2000,
  /** 32 MiB: about 100,000 ordinary answers, an eighth of a 256 MiB container limit. */
  dnsCacheMaxBytes: 32 * 1024 * 1024,
  /** Far above what one Postfix instance opens (smtpd process limit 100 by default). */
  milterMaxConnections: 1000,
  /** Just above Postfix's longest milter timeout (milter_content_timeout 300s). */
  milterIdleTimeoutMs: MILTER_SERVER_DEFAULTS.idleTimeoutMs,
  /** A packet must be complete this long after its first byte (slowloris); also bounds unread replies. */
  milterPacketTimeoutMs: MILTER_SERVER_DEFAULTS.packetTimeoutMs,
  /** Input received and not yet processed (incomplete packets, packets queued behind a callback), all connections together. */
  milterMaxBufferedBytes: MILTER_SERVER_DEFAULTS.maxBufferedBytes,
  /** Packets pipelined behind a pending callback, per connection (Postfix: at most ~2 per recipient). */
  milterMaxQueuedPackets: MILTER_SERVER_DEFAULTS.maxQueuedPackets,
  /** Replies a peer has not read, per connection, before it is closed. */
  milterMaxWriteBuffer: MILTER_SERVER_DEFAULTS.maxWriteBuffer,
  /** Half of Sendmail's default reply timeout (R:10s): a verdict pending at end of message is waited for. */
  milterProgressIntervalMs: MILTER_SERVER_DEFAULTS.progressIntervalMs,
  shutdownTimeoutMs: 10_000,
  /** A Prometheus scrape interval is 15 s or more: a second of staleness costs nothing, a render per scrape of a flood does. */
  metricsCacheMs: 1000,
} as const;

const TTL_BOUNDS = { min: 0, max: 31_536_000 }; // up to a year
const POSITIVE_MS = { min: 1, max: MAX_TIMER_MS };

function parseMilterName(raw: string | undefined): string {
  if (isUnset(raw)) return DEFAULTS.milterName;
  const name = raw.trim();
  if (/[\s/]/.test(name) || hasControlChars(name)) {
    throw new ConfigError('INVALID', 'MILTER_NAME', `${show(raw)} is not allowed; use a non-empty name without white space, slashes or control characters`);
  }
  return name;
}

function requireText(variable: string, raw: string | undefined, example: string): string {
  if (isUnset(raw)) throw new ConfigError('MISSING', variable, `is required when LDAP_ENABLED is set; e.g. ${example}`);
  const text = raw.trim();
  if (hasControlChars(text)) throw new ConfigError('INVALID', variable, `${show(raw)} contains control characters`);
  return text;
}

function parseQueryFilter(raw: string | undefined): string {
  const filter = requireText('LDAP_QUERY_FILTER', raw, '(dc=%d)');
  if (!filter.includes('%d')) throw new ConfigError('INVALID', 'LDAP_QUERY_FILTER', `${show(filter)} does not contain %d, the place of the sender domain; e.g. (dc=%d)`);
  return requireParenthesised('LDAP_QUERY_FILTER', filter, '(dc=%d) or (&(objectClass=dNSDomain)(dc=%d))');
}

function requireParenthesised(variable: string, filter: string, example: string): string {
  if (!filter.startsWith('(') || !filter.endsWith(')') || !balancedParentheses(filter)) {
    throw new ConfigError('INVALID', variable, `${show(filter)} is not a parenthesised LDAP filter (RFC 4515); e.g. ${example}`);
  }
  return filter;
}

/** The outer parentheses must enclose the whole filter; escaped `\28`/`\29` never count. */
function balancedParentheses(filter: string): boolean {
  let depth = 0;
  for (let i = 0; i < filter.length; i++) {
    if (filter[i] === '(') depth++;
    else if (filter[i] === ')') {
      depth--;
      if (depth < 0 || (depth === 0 && i !== filter.length - 1)) return false;
    }
  }
  return depth === 0;
}

function parseLdap(env: NodeJS.ProcessEnv): LdapConfig | undefined {
  if (isUnset(env.LDAP_ENABLED)) {
    // Refused rather than ignored: the operator expects DKIM alignment from the directory, and
    // without LDAP every message From: such a domain would be judged without it.
    if (!isUnset(env.LDAP_DKIM_ATTRIBUTE)) {
      throw new ConfigError('INVALID', 'LDAP_DKIM_ATTRIBUTE', 'is set while LDAP_ENABLED is not; the signing domains are read from the own-domain entries in LDAP, so turn on LDAP or unset LDAP_DKIM_ATTRIBUTE');
    }
    return undefined;
  }
  const uris = parseLdapUris('LDAP_SERVER_URI', env.LDAP_SERVER_URI);
  const bindDn = isUnset(env.LDAP_BINDDN) ? undefined : env.LDAP_BINDDN.trim();
  // The password is taken verbatim: leading or trailing blanks may be part of it.
  const bindPw = env.LDAP_BINDPW === undefined || env.LDAP_BINDPW === '' ? undefined : env.LDAP_BINDPW;
  if (bindDn !== undefined && bindPw === undefined) {
    throw new ConfigError('MISSING', 'LDAP_BINDPW', 'is empty while LDAP_BINDDN is set; give the password, or unset LDAP_BINDDN to bind anonymously');
  }
  const queryFilter = parseQueryFilter(env.LDAP_QUERY_FILTER);
  return {
    uris,
    bindDn,
    bindPw: bindDn === undefined ? undefined : bindPw,
    searchBase: requireText('LDAP_SEARCH_BASE', env.LDAP_SEARCH_BASE, 'ou=domains,dc=example,dc=org'),
    queryFilter,
    cacheTtlSeconds: parseInteger('LDAP_CACHE_TTL', env.LDAP_CACHE_TTL, DEFAULTS.ldapCacheTtlSeconds, TTL_BOUNDS),
    negativeCacheTtlSeconds: parseInteger('LDAP_NEGATIVE_CACHE_TTL', env.LDAP_NEGATIVE_CACHE_TTL, DEFAULTS.ldapNegativeCacheTtlSeconds, TTL_BOUNDS),
    timeoutMs: parseInteger('LDAP_TIMEOUT_MS', env.LDAP_TIMEOUT_MS, DEFAULTS.ldapTimeoutMs, POSITIVE_MS),
    auditFilter: parseAuditFilter(env.LDAP_AUDIT_FILTER, queryFilter),
    domainAttribute: parseAttributeName('LDAP_DOMAIN_ATTRIBUTE', env.LDAP_DOMAIN_ATTRIBUTE),
    dkimAttribute: parseAttributeName('LDAP_DKIM_ATTRIBUTE', env.LDAP_DKIM_ATTRIBUTE),
    tls: parseLdapTls(env),
  };
}

function parseAuditFilter(raw: string | undefined, queryFilter: string): string {
  // `*` as the whole assertion value is a presence filter (RFC 4515 §3), e.g. (dc=*).
  if (isUnset(raw)) return queryFilter.split('%d').join('*');
  const filter = raw.trim();
  if (hasControlChars(filter)) throw new ConfigError('INVALID', 'LDAP_AUDIT_FILTER', `${show(raw)} contains control characters`);
  requireParenthesised('LDAP_AUDIT_FILTER', filter, '(objectClass=dNSDomain)');
  if (filter.includes('%d')) throw new ConfigError('INVALID', 'LDAP_AUDIT_FILTER', `${show(filter)} contains %d; the audit lists every domain, so write * where the domain would be`);
  return filter;
}

/** RFC 4512 §2.5 attribute description: a descriptor or a numeric OID, options not needed here. */
function parseAttributeName(variable: string, raw: string | undefined): string | undefined {
  if (isUnset(raw)) return undefined;
  const name = raw.trim();
  if (!/^(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+)$/.test(name)) {
    throw new ConfigError('INVALID', variable, `${show(raw)} is not an LDAP attribute name (RFC 4512 descriptor or numeric OID); e.g. associatedDomain or dc`);
  }
  return name;
}

function parseLdapTls(env: NodeJS.ProcessEnv): LdapTlsConfig {
  const startTls = parseBoolean('LDAP_STARTTLS', env.LDAP_STARTTLS, false);
  const verify = parseBoolean('LDAP_TLS_VERIFY', env.LDAP_TLS_VERIFY, true);
  if (isUnset(env.LDAP_TLS_CA_FILE)) return { caFile: undefined, ca: undefined, startTls, verify };
  const caFile = env.LDAP_TLS_CA_FILE.trim();
  let ca: string;
  try {
    ca = readFileSync(caFile, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable by this user' : code === 'EISDIR' ? 'is a directory' : `cannot be read (${code ?? errorMessage(err)})`;
    throw new ConfigError('UNREADABLE', 'LDAP_TLS_CA_FILE', `${show(caFile)} ${why}; give a PEM file of the CA certificates that issued the LDAP server's certificate`, { cause: err });
  }
  const blocks = ca.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) {
    throw new ConfigError('INVALID', 'LDAP_TLS_CA_FILE', `${show(caFile)} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  }
  blocks.forEach((block, i) => {
    try {
      new X509Certificate(block);
    } catch (err) {
      throw new ConfigError('INVALID', 'LDAP_TLS_CA_FILE', `${show(caFile)}: certificate ${i + 1} of ${blocks.length} cannot be read (${errorMessage(err)})`, { cause: err });
    }
  });
  return { caFile, ca, startTls, verify };
}

function parseSpfRegex(raw: string | undefined): SpfRegex {
  // Not trimmed: blanks can be part of a pattern.
  return compileSpfRegex(raw === undefined || raw === '' ? DEFAULT_SPF_REGEX : raw);
}

/** One SPF mechanism a remedy may add; directive syntax of RFC 7208 §4.6.1, no qualifier but `+`. */
function parseRemedyMechanism(raw: string | undefined): string | undefined {
  if (isUnset(raw)) return undefined;
  const term = raw.trim().replace(/^\+/, '');
  if (!/^(?:include|exists):[!-~]+$|^(?:ip4|ip6):[0-9a-fA-F.:/]+$|^(?:a|mx)(?::[!-~]+)?$/i.test(term) || /\s/.test(term)) {
    throw new ConfigError('INVALID', 'SPF_REMEDY_MECHANISM', `${show(raw)} is not one SPF mechanism; e.g. include:_spf.esp.example or ip4:192.0.2.0/24`);
  }
  return term;
}

/**
 * 0 (never) or 100 ms to 300 s: below 100 ms only adds packets, above Postfix's longest milter
 * timeout (milter_content_timeout 300s) it could never arrive in time.
 */
function parseProgressInterval(variable: string, raw: string | undefined): number {
  const bounds = { min: 0, max: 300_000 };
  const value = parseInteger(variable, raw, DEFAULTS.milterProgressIntervalMs, bounds);
  if (value > 0 && value < 100) {
    throw new ConfigError('INVALID', variable, `${value} is out of range; use 0 (never send progress) or an integer from 100 to ${bounds.max}`);
  }
  return value;
}

/** DKIM_SIGNING_DOMAINS: comma-separated domain names, or `*`. */
function parseSigningDomains(variable: string, raw: string | undefined): string[] {
  if (isUnset(raw)) return [];
  const out: string[] = [];
  for (const entry of raw.split(',')) {
    const d = entry.trim().toLowerCase().replace(/\.$/, '');
    if (d === '') continue;
    if (d !== '*' && !LDH_DOMAIN.test(d)) {
      throw new ConfigError('INVALID', variable, `${JSON.stringify(entry.trim())} is not a domain name (A-labels) or *`);
    }
    out.push(d);
  }
  return out;
}

/** A file that must be readable at start-up, or undefined when unset. */
function parseReadableFile(variable: string, raw: string | undefined): string | undefined {
  if (isUnset(raw)) return undefined;
  const path = raw.trim();
  try {
    accessSync(path, constants.R_OK);
  } catch (e) {
    throw new ConfigError('UNREADABLE', variable, `${path} cannot be read: ${errorMessage(e)}`);
  }
  return path;
}

export function loadConfig(env: NodeJS.ProcessEnv): Config {
  const milterName = parseMilterName(env.MILTER_NAME);
  const milterSocket = isUnset(env.MILTER_SOCKET) ? `/socket/${milterName}` : env.MILTER_SOCKET.trim();
  const milterMode = parseEnum<MilterMode>('MILTER_MODE', env.MILTER_MODE, 'test', { test: 'test', reject: 'reject', rewrite: 'rewrite' });
  const spfCheck = parseEnum<SpfCheckMode>('SPF_CHECK', env.SPF_CHECK, 'regex', { regex: 'regex', evaluate: 'evaluate' });
  const outboundIps = parseIpList('OUTBOUND_IPS', env.OUTBOUND_IPS);
  if (spfCheck === 'evaluate' && outboundIps.length === 0) {
    throw new ConfigError('MISSING', 'OUTBOUND_IPS', 'is required with SPF_CHECK=evaluate; list the relays\' addresses, e.g. 192.0.2.10, 2001:db8::25');
  }
  const config: Config = {
    logLevel: parseEnum<LogLevel>('LOG_LEVEL', env.LOG_LEVEL, 'info', { debug: 'debug', info: 'info', warning: 'warn', warn: 'warn', error: 'error' }),
    logFormat: parseEnum<LogFormat>('LOG_FORMAT', env.LOG_FORMAT, 'text', { text: 'text', json: 'json' }),
    milterMode,
    srs: loadSrsConfig(env, milterMode === 'rewrite'),
    milterName,
    milterSocket,
    milterSocketSpec: parseMilterSocket('MILTER_SOCKET', milterSocket),
    milterSocketMode: parseOctalMode('MILTER_SOCKET_MODE', env.MILTER_SOCKET_MODE, DEFAULTS.milterSocketMode),
    milterRejectMessage: parseSmtpReplyText('MILTER_REJECT_MESSAGE', env.MILTER_REJECT_MESSAGE, DEFAULTS.milterRejectMessage),
    milterTmpfailMessage: parseSmtpReplyText('MILTER_TMPFAIL_MESSAGE', env.MILTER_TMPFAIL_MESSAGE, DEFAULTS.milterTmpfailMessage),
    spfRegex: parseSpfRegex(env.SPF_REGEX),
    remedyMechanism: parseRemedyMechanism(env.SPF_REMEDY_MECHANISM),
    ignoredNextHops: parseNextHops('IGNORED_NEXT_HOPS', env.IGNORED_NEXT_HOPS),
    ldap: parseLdap(env),
    spfCheck,
    dmarcCheck: parseEnum<'off' | 'on'>('DMARC_CHECK', env.DMARC_CHECK, 'off', { off: 'off', on: 'on' }) === 'on',
    dmarcRejectMessage: parseSmtpReplyText('DMARC_REJECT_MESSAGE', env.DMARC_REJECT_MESSAGE, DEFAULTS.dmarcRejectMessage),
    dkimSigningDomains: parseSigningDomains('DKIM_SIGNING_DOMAINS', env.DKIM_SIGNING_DOMAINS),
    dmarcPslFile: parseReadableFile('DMARC_PSL_FILE', env.DMARC_PSL_FILE),
    outboundIps,
    spfViolationResults: parseViolationResults('SPF_VIOLATION_RESULTS', env.SPF_VIOLATION_RESULTS),
    dnsServers: parseDnsServers('DNS_SERVERS', env.DNS_SERVERS),
    dnsTimeoutMs: parseInteger('DNS_TIMEOUT_MS', env.DNS_TIMEOUT_MS, DEFAULTS.dnsTimeoutMs, POSITIVE_MS),
    // 64 KiB still holds a few hundred answers; 64 GiB is far beyond any sensible heap.
    dnsCacheMaxBytes: parseInteger('DNS_CACHE_MAX_BYTES', env.DNS_CACHE_MAX_BYTES, DEFAULTS.dnsCacheMaxBytes, { min: 65_536, max: 68_719_476_736 }),
    metricsListen: parseListenAddress('METRICS_LISTEN', env.METRICS_LISTEN),
    metricsCacheMs: parseInteger('METRICS_CACHE_MS', env.METRICS_CACHE_MS, DEFAULTS.metricsCacheMs, { min: 0, max: 60_000 }),
    healthListen: parseListenAddress('HEALTH_LISTEN', env.HEALTH_LISTEN),
    milterMaxConnections: parseInteger('MILTER_MAX_CONNECTIONS', env.MILTER_MAX_CONNECTIONS, DEFAULTS.milterMaxConnections, { min: 1, max: 1_000_000 }),
    milterIdleTimeoutMs: parseInteger('MILTER_IDLE_TIMEOUT_MS', env.MILTER_IDLE_TIMEOUT_MS, DEFAULTS.milterIdleTimeoutMs, POSITIVE_MS),
    milterPacketTimeoutMs: parseInteger('MILTER_PACKET_TIMEOUT_MS', env.MILTER_PACKET_TIMEOUT_MS, DEFAULTS.milterPacketTimeoutMs, POSITIVE_MS),
    milterMaxBufferedBytes: parseInteger('MILTER_MAX_BUFFERED_BYTES', env.MILTER_MAX_BUFFERED_BYTES, DEFAULTS.milterMaxBufferedBytes, { min: 65_536, max: 2 ** 40 }),
    milterMaxQueuedPackets: parseInteger('MILTER_MAX_QUEUED_PACKETS', env.MILTER_MAX_QUEUED_PACKETS, DEFAULTS.milterMaxQueuedPackets, { min: 16, max: 1_000_000 }),
    milterMaxWriteBuffer: parseInteger('MILTER_MAX_WRITE_BUFFER', env.MILTER_MAX_WRITE_BUFFER, DEFAULTS.milterMaxWriteBuffer, { min: 65_536, max: 2 ** 30 }),
    milterProgressIntervalMs: parseProgressInterval('MILTER_PROGRESS_INTERVAL_MS', env.MILTER_PROGRESS_INTERVAL_MS),
    shutdownTimeoutMs: parseInteger('SHUTDOWN_TIMEOUT_MS', env.SHUTDOWN_TIMEOUT_MS, DEFAULTS.shutdownTimeoutMs, POSITIVE_MS),
    toLog: () => describeConfig(config),
  };
  return config;
}


/** Everything but the secret, in plain JSON-able values. */
export function describeConfig(config: Config): Record<string, unknown> {
  const { toLog: _toLog, spfRegex, ldap, srs, ...rest } = config;
  return {
    ...rest,
    srs: srs === undefined ? undefined : { ...srs, secrets: srs.secrets.map(() => REDACTED) },
    milterSocketMode: `0${config.milterSocketMode.toString(8)}`,
    spfRegex: spfRegex.source,
    ldap:
      ldap === undefined
        ? undefined
        : {
            ...ldap,
            uris: ldap.uris.map((u) => u.url),
            bindPw: ldap.bindPw === undefined ? undefined : REDACTED,
            // The CA file's path says all; its contents would only bloat the start-up line.
            tls: { ...ldap.tls, ca: undefined },
          },
  };
}
