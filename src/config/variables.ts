/**
 * Every environment variable sos-milter reads, in one table. The `--help` texts of the
 * program and of each command are generated from it, and a test checks that the
 * configuration loader reads no variable missing here, so help and code cannot drift apart.
 */

import { MILTER_SERVER_DEFAULTS } from '../milter/constants.js';

/** Who reads a variable: the daemon, and the commands that share its configuration. */
export type EnvReader = 'daemon' | 'check' | 'audit' | 'spf' | 'srs';

export interface EnvVariable {
  name: string;
  /** The default as a user would write it, or a short phrase ("unset", "required"). */
  default: string;
  summary: string;
  readers: readonly EnvReader[];
}

const ALL: readonly EnvReader[] = ['daemon', 'check', 'audit'];
const WITH_SPF: readonly EnvReader[] = ['daemon', 'check', 'audit', 'spf'];
const DAEMON: readonly EnvReader[] = ['daemon'];
const WITH_SRS: readonly EnvReader[] = ['daemon', 'check', 'srs'];

export const ENV_VARIABLES: readonly EnvVariable[] = [
  { name: 'LOG_LEVEL', default: 'info', summary: 'debug, info, warning/warn, error', readers: ALL },
  { name: 'LOG_FORMAT', default: 'text', summary: 'text or json (JSON lines)', readers: ALL },
  { name: 'MILTER_MODE', default: 'test', summary: 'test (log, tag own domains), reject, or rewrite (SRS: the envelope sender is rewritten under SRS_DOMAIN)', readers: ALL },
  { name: 'MILTER_NAME', default: 'sos-milter', summary: 'name in logs, reply texts and the default socket path', readers: ALL },
  { name: 'MILTER_SOCKET', default: '/socket/<MILTER_NAME>', summary: 'libmilter socket spec: /path, unix:/path, inet:PORT[@HOST], inet6:PORT[@HOST]', readers: ALL },
  { name: 'MILTER_SOCKET_MODE', default: '0666', summary: 'file mode of a UNIX socket', readers: ALL },
  { name: 'MILTER_REJECT_MESSAGE', default: 'Security policy violation!', summary: 'end of the reject text', readers: ALL },
  { name: 'MILTER_TMPFAIL_MESSAGE', default: 'Service temporarily not available! Please try again later.', summary: 'text of 450 4.7.1 replies', readers: ALL },
  { name: 'MILTER_MAX_CONNECTIONS', default: '1000', summary: 'concurrent MTA connections', readers: ALL },
  { name: 'MILTER_IDLE_TIMEOUT_MS', default: String(MILTER_SERVER_DEFAULTS.idleTimeoutMs), summary: 'closes a connection silent this long (checked every eighth of it, 10 ms to 1 s: closed up to a quarter of it, at most 2 s, later)', readers: ALL },
  { name: 'MILTER_PACKET_TIMEOUT_MS', default: String(MILTER_SERVER_DEFAULTS.packetTimeoutMs), summary: "closes a connection whose packet is not complete this long after its first byte", readers: DAEMON },
  { name: 'MILTER_MAX_BUFFERED_BYTES', default: String(MILTER_SERVER_DEFAULTS.maxBufferedBytes), summary: 'incomplete and queued milter input held for all connections together; past it the largest holders are closed', readers: DAEMON },
  { name: 'MILTER_MAX_QUEUED_PACKETS', default: String(MILTER_SERVER_DEFAULTS.maxQueuedPackets), summary: 'packets one connection may queue behind a pending callback; past it the connection is closed', readers: DAEMON },
  { name: 'MILTER_MAX_WRITE_BUFFER', default: String(MILTER_SERVER_DEFAULTS.maxWriteBuffer), summary: 'unread reply bytes one connection may hold; past it the connection is closed', readers: DAEMON },
  {
    name: 'MILTER_PROGRESS_INTERVAL_MS',
    default: String(MILTER_SERVER_DEFAULTS.progressIntervalMs),
    summary: 'while a verdict is pending at end of message, tells the MTA this often that it is being worked on (SMFIR_PROGRESS; the MTA restarts its reply timeout); 0 never',
    readers: DAEMON,
  },
  { name: 'SHUTDOWN_TIMEOUT_MS', default: '10000', summary: 'how long open milter connections are served after SIGTERM/SIGINT before they are closed', readers: ALL },
  { name: 'SPF_CHECK', default: 'regex', summary: 'regex (-all record must match SPF_REGEX) or evaluate (RFC 7208 check of OUTBOUND_IPS)', readers: ALL },
  { name: 'SPF_REGEX', default: '.*', summary: 'statements an acceptable record must contain (Python re syntax, anchored at the start)', readers: ALL },
  {
    name: 'SPF_REMEDY_MECHANISM',
    default: 'derived from SPF_REGEX',
    summary: 'the mechanism a remedy adds (e.g. include:_spf.esp.example); by default the include:/ip4:/ip6:/a:/mx: that SPF_REGEX names',
    readers: ALL,
  },
  { name: 'DMARC_CHECK', default: 'off', summary: "on: predict the receiver's DMARC verdict from the From: field and act on a violation like MILTER_MODE says", readers: ALL },
  { name: 'DMARC_REJECT_MESSAGE', default: "The From: domain's DMARC policy would not let this message through.", summary: 'end of the 550 5.7.1 text for a DMARC violation', readers: ALL },
  { name: 'DKIM_SIGNING_DOMAINS', default: 'empty', summary: 'comma-separated domains the ESP signs DKIM for; * when it signs for every From: domain', readers: ALL },
  { name: 'DMARC_PSL_FILE', default: 'unset: the DMARCbis DNS tree walk', summary: "public suffix list for RFC 7489's organizational domains, e.g. /usr/share/publicsuffix/public_suffix_list.dat", readers: ALL },
  { name: 'OUTBOUND_IPS', default: 'required with SPF_CHECK=evaluate', summary: 'the ESP relay addresses, comma-separated', readers: ALL },
  { name: 'SPF_VIOLATION_RESULTS', default: 'fail', summary: 'results that count as a violation with evaluate (fail[,softfail][,permerror])', readers: ALL },
  { name: 'IGNORED_NEXT_HOPS', default: 'empty', summary: 'comma-separated {rcpt_host} values never judged', readers: ALL },
  { name: 'DNS_SERVERS', default: "the system's (/etc/resolv.conf)", summary: 'comma-separated host[:port], IPv6 as [addr]:port', readers: WITH_SPF },
  { name: 'DNS_TIMEOUT_MS', default: '2000', summary: 'time for one DNS lookup, retries included', readers: WITH_SPF },
  { name: 'DNS_CACHE_MAX_BYTES', default: '33554432', summary: "bound on the DNS cache's estimated memory, bytes (at least 65536)", readers: WITH_SPF },
  { name: 'LDAP_ENABLED', default: 'unset', summary: 'any non-empty value turns on the LDAP lookup of own domains (audit requires it)', readers: ALL },
  { name: 'LDAP_SERVER_URI', default: 'required with LDAP', summary: 'ldap:// or ldaps:// URIs, tried in order', readers: ALL },
  { name: 'LDAP_BINDDN', default: 'anonymous bind', summary: 'DN to bind as', readers: ALL },
  { name: 'LDAP_BINDPW', default: 'unset', summary: 'bind password (never logged, never sent in the clear with LDAP_STARTTLS)', readers: ALL },
  { name: 'LDAP_SEARCH_BASE', default: 'required with LDAP', summary: 'base DN of the own-domain entries', readers: ALL },
  { name: 'LDAP_QUERY_FILTER', default: 'required with LDAP', summary: 'filter with %d for the sender domain, e.g. (dc=%d)', readers: ALL },
  { name: 'LDAP_AUDIT_FILTER', default: 'LDAP_QUERY_FILTER with %d replaced by *', summary: 'filter that lists every own domain (audit)', readers: ['audit'] },
  { name: 'LDAP_DOMAIN_ATTRIBUTE', default: "the RDN's value", summary: 'attribute holding the domain name (audit)', readers: ['audit'] },
  {
    name: 'LDAP_DKIM_ATTRIBUTE',
    default: 'unset',
    summary: "attribute of an own domain's entry naming the DKIM signing domains (d=) of mail From: that domain, for DMARC alignment (needs LDAP_ENABLED)",
    readers: ALL,
  },
  { name: 'LDAP_CACHE_TTL', default: '300', summary: 'seconds a found answer is cached', readers: ALL },
  { name: 'LDAP_NEGATIVE_CACHE_TTL', default: '60', summary: 'seconds a not-found answer is cached', readers: ALL },
  { name: 'LDAP_TIMEOUT_MS', default: '2000', summary: 'limit for each LDAP operation, connecting included', readers: ALL },
  { name: 'LDAP_TLS_CA_FILE', default: "Node's built-in CAs", summary: 'PEM bundle of the CAs trusted for ldaps:// and StartTLS', readers: ALL },
  { name: 'LDAP_STARTTLS', default: 'false', summary: 'upgrade ldap:// connections with StartTLS before binding; no bind when it fails', readers: ALL },
  { name: 'LDAP_TLS_VERIFY', default: 'true', summary: 'false turns off certificate and host name verification (logged at warning)', readers: ALL },
  { name: 'AUDIT_HISTORY', default: 'unset (no history)', summary: 'audit history: a file path (SQLite) or a postgresql:// URL; --history overrides', readers: ['audit'] },
  { name: 'AUDIT_HISTORY_KEEP_RUNS', default: '100', summary: 'runs whose per-domain results the history keeps', readers: ['audit'] },
  { name: 'AUDIT_WEBHOOK_URL', default: 'unset', summary: 'http(s) URL each status change is POSTed to as JSON', readers: ['audit'] },
  { name: 'AUDIT_WEBHOOK_SECRET', default: 'required with AUDIT_WEBHOOK_URL', summary: 'HMAC-SHA256 key of the X-SOS-Signature header (at least 16 characters; never logged)', readers: ['audit'] },
  { name: 'AUDIT_WEBHOOK_TIMEOUT_MS', default: '10000', summary: 'time for one webhook attempt', readers: ['audit'] },
  { name: 'AUDIT_WEBHOOK_ATTEMPTS', default: '4', summary: 'webhook attempts per notification and run (5xx, 408, 429, network errors are retried)', readers: ['audit'] },
  { name: 'AUDIT_WEBHOOK_BACKOFF_MS', default: '1000', summary: 'pause before the second webhook attempt, doubled for each further one', readers: ['audit'] },
  { name: 'AUDIT_SMTP_URL', default: 'unset (no mail)', summary: "the ESP's SMTP relay for mail to domain contacts: smtp://host[:port] (STARTTLS when offered) or smtps://", readers: ['audit'] },
  { name: 'AUDIT_SMTP_USER', default: 'unset (no AUTH)', summary: 'SMTP AUTH user', readers: ['audit'] },
  { name: 'AUDIT_SMTP_PASSWORD', default: 'unset', summary: 'SMTP AUTH password (never logged)', readers: ['audit'] },
  { name: 'AUDIT_SMTP_REQUIRE_TLS', default: 'false', summary: 'true: send nothing unless STARTTLS succeeds', readers: ['audit'] },
  { name: 'AUDIT_SMTP_TIMEOUT_MS', default: '10000', summary: 'connect, greeting and socket timeout of the relay', readers: ['audit'] },
  { name: 'AUDIT_MAIL_FROM', default: 'required with AUDIT_SMTP_URL', summary: 'sender address of the notification mails', readers: ['audit'] },
  { name: 'AUDIT_CONTACT_ATTRIBUTE', default: 'required with AUDIT_SMTP_URL', summary: "LDAP attribute of a domain's entry holding its contact address, e.g. mail", readers: ['audit'] },
  { name: 'AUDIT_SERVICE_NAME', default: 'our mail service', summary: 'how the notification text names the ESP', readers: ['audit'] },
  { name: 'AUDIT_NOTIFY_MAX_PER_RUN', default: '1000', summary: 'notifications delivered per run at most; the rest wait for the next run', readers: ['audit'] },
  { name: 'AUDIT_METRICS_FILE', default: 'unset', summary: "Prometheus textfile the last run's metrics are written to (node_exporter textfile collector)", readers: ['audit'] },
  { name: 'AUDIT_METRICS_PUSH_URL', default: 'unset', summary: "Pushgateway URL the last run's metrics are PUT to, e.g. http://pushgateway:9091/metrics/job/sos-milter-audit", readers: ['audit'] },
  { name: 'SRS_DOMAIN', default: 'required with rewrite', summary: 'domain the SRS addresses are under; its SPF record must authorize the relays (checked at start-up)', readers: WITH_SRS },
  { name: 'SRS_SECRETS', default: 'required with rewrite', summary: 'comma-separated secrets, at least 16 characters each: the first signs, all verify (never logged)', readers: WITH_SRS },
  { name: 'SRS_MAX_AGE_DAYS', default: '21', summary: 'days an SRS address decodes after it was made (1-1000)', readers: WITH_SRS },
  { name: 'SRS_REWRITE', default: 'both', summary: 'violations rewrite mode rewrites: foreign, own or both; the others are rejected', readers: ['daemon', 'check'] },
  { name: 'SRS_HEADER_NAME', default: 'X-SOS-Milter', summary: 'header added to a rewritten message', readers: ['daemon', 'check'] },
  { name: 'SRS_HEADER_VALUE', default: 'rewritten', summary: 'its value', readers: ['daemon', 'check'] },
  { name: 'SRS_SOCKETMAP_LISTEN', default: 'unset', summary: 'host:port of the srsdecode socketmap for Postfix recipient_canonical_maps (needs SRS_DOMAIN, SRS_SECRETS)', readers: DAEMON },
  { name: 'SRS_SOCKETMAP_MAX_CONNECTIONS', default: '100', summary: 'concurrent socketmap connections; more are closed at once', readers: DAEMON },
  { name: 'SRS_SOCKETMAP_TIMEOUT_MS', default: '30000', summary: 'a socketmap connection must complete a request this long after connecting or its last answer', readers: DAEMON },
  { name: 'METRICS_LISTEN', default: 'unset', summary: 'host:port of the Prometheus /metrics endpoint', readers: DAEMON },
  { name: 'METRICS_CACHE_MS', default: '1000', summary: '/metrics is rendered at most once per this many ms; scrapes in between get the same body (0: every scrape renders)', readers: DAEMON },
  { name: 'HEALTH_LISTEN', default: 'unset', summary: 'host:port of /healthz and /readyz', readers: DAEMON },
];

/** The help section listing what `reader` reads from the environment, with defaults. */
export function environmentHelp(reader: EnvReader): string {
  const rows = ENV_VARIABLES.filter((v) => v.readers.includes(reader));
  const width = Math.max(...rows.map((v) => v.name.length));
  const lines = ['Environment (default in brackets):'];
  for (const v of rows) lines.push(`  ${v.name.padEnd(width)}  ${v.summary} [${v.default}]`);
  return `${lines.join('\n')}\n`;
}
