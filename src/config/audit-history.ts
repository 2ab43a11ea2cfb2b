/**
 * The audit's history and notification settings (AUDIT_*), read only by `sos-milter audit`.
 * Plain values: the history and notify layers get them from the command. Each bad value is
 * a ConfigError naming its variable.
 */
import { ConfigError } from './errors.js';
import { isUnset, parseBoolean, parseInteger, show } from './parse.js';

export interface AuditWebhookConfig {
  url: string;
  secret: string;
  timeoutMs: number;
  attempts: number;
  backoffMs: number;
}

export interface AuditMailConfig {
  url: string;
  user: string | undefined;
  password: string | undefined;
  requireTls: boolean;
  from: string;
  contactAttribute: string;
  timeoutMs: number;
}

export interface AuditHistoryConfig {
  /** AUDIT_HISTORY: a file path (SQLite) or a postgresql:// URL; `--history` wins. */
  history: string | undefined;
  keepRuns: number;
  webhook: AuditWebhookConfig | undefined;
  mail: AuditMailConfig | undefined;
  serviceName: string | undefined;
  maxNotificationsPerRun: number;
  metricsFile: string | undefined;
  metricsPushUrl: string | undefined;
}

function httpUrl(variable: string, raw: string): string {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new ConfigError('INVALID', variable, `${show(raw)} is not a URL; use http://host[:port]/path or https://...`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError('INVALID', variable, `${show(raw)}: only http:// and https:// are allowed`);
  return url.toString();
}

const PLAIN_ADDRESS = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/;

export function loadAuditHistoryConfig(env: NodeJS.ProcessEnv): AuditHistoryConfig {
  const history = isUnset(env.AUDIT_HISTORY) ? undefined : env.AUDIT_HISTORY.trim();
  const keepRuns = parseInteger('AUDIT_HISTORY_KEEP_RUNS', env.AUDIT_HISTORY_KEEP_RUNS, 100, { min: 1, max: 100_000 });

  let webhook: AuditWebhookConfig | undefined;
  if (!isUnset(env.AUDIT_WEBHOOK_URL)) {
    if (isUnset(env.AUDIT_WEBHOOK_SECRET)) throw new ConfigError('MISSING', 'AUDIT_WEBHOOK_SECRET', 'required with AUDIT_WEBHOOK_URL: every webhook call is HMAC-signed with it');
    if (env.AUDIT_WEBHOOK_SECRET.length < 16) throw new ConfigError('INVALID', 'AUDIT_WEBHOOK_SECRET', 'too short: use at least 16 characters');
    webhook = {
      url: httpUrl('AUDIT_WEBHOOK_URL', env.AUDIT_WEBHOOK_URL),
      secret: env.AUDIT_WEBHOOK_SECRET,
      timeoutMs: parseInteger('AUDIT_WEBHOOK_TIMEOUT_MS', env.AUDIT_WEBHOOK_TIMEOUT_MS, 10_000, { min: 100, max: 300_000 }),
      attempts: parseInteger('AUDIT_WEBHOOK_ATTEMPTS', env.AUDIT_WEBHOOK_ATTEMPTS, 4, { min: 1, max: 20 }),
      backoffMs: parseInteger('AUDIT_WEBHOOK_BACKOFF_MS', env.AUDIT_WEBHOOK_BACKOFF_MS, 1000, { min: 0, max: 600_000 }),
    };
  }

  let mail: AuditMailConfig | undefined;
  if (!isUnset(env.AUDIT_SMTP_URL)) {
    const raw = env.AUDIT_SMTP_URL.trim();
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new ConfigError('INVALID', 'AUDIT_SMTP_URL', `${show(raw)} is not a URL; use smtp://host[:port] or smtps://host[:port]`);
    }
    if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') throw new ConfigError('INVALID', 'AUDIT_SMTP_URL', `${show(raw)}: use smtp:// (STARTTLS when offered) or smtps://`);
    if (url.username || url.password) throw new ConfigError('INVALID', 'AUDIT_SMTP_URL', 'holds credentials: put them in AUDIT_SMTP_USER and AUDIT_SMTP_PASSWORD');
    if (isUnset(env.AUDIT_MAIL_FROM)) throw new ConfigError('MISSING', 'AUDIT_MAIL_FROM', 'required with AUDIT_SMTP_URL: the sender address of the notifications');
    const from = env.AUDIT_MAIL_FROM.trim();
    if (!PLAIN_ADDRESS.test(from)) throw new ConfigError('INVALID', 'AUDIT_MAIL_FROM', `${show(from)} is not a plain address (local@domain)`);
    if (isUnset(env.AUDIT_CONTACT_ATTRIBUTE)) throw new ConfigError('MISSING', 'AUDIT_CONTACT_ATTRIBUTE', 'required with AUDIT_SMTP_URL: the LDAP attribute holding the contact address of a domain, e.g. mail');
    const attr = env.AUDIT_CONTACT_ATTRIBUTE.trim();
    if (!/^[A-Za-z][A-Za-z0-9-]*$/.test(attr)) throw new ConfigError('INVALID', 'AUDIT_CONTACT_ATTRIBUTE', `${show(attr)} is not an LDAP attribute name`);
    mail = {
      url: url.toString(),
      user: isUnset(env.AUDIT_SMTP_USER) ? undefined : env.AUDIT_SMTP_USER.trim(),
      password: isUnset(env.AUDIT_SMTP_PASSWORD) ? undefined : env.AUDIT_SMTP_PASSWORD,
      requireTls: parseBoolean('AUDIT_SMTP_REQUIRE_TLS', env.AUDIT_SMTP_REQUIRE_TLS, false),
      from,
      contactAttribute: attr,
      timeoutMs: parseInteger('AUDIT_SMTP_TIMEOUT_MS', env.AUDIT_SMTP_TIMEOUT_MS, 10_000, { min: 100, max: 300_000 }),
    };
  }
  const serviceName = isUnset(env.AUDIT_SERVICE_NAME) ? undefined : env.AUDIT_SERVICE_NAME.trim();
  // eslint-disable-next-line no-control-regex
  if (serviceName !== undefined && /[\u0000-\u001f\u007f]/.test(serviceName)) throw new ConfigError('INVALID', 'AUDIT_SERVICE_NAME', 'contains control characters');
  return {
    history,
    keepRuns,
    webhook,
    mail,
    serviceName,
    maxNotificationsPerRun: parseInteger('AUDIT_NOTIFY_MAX_PER_RUN', env.AUDIT_NOTIFY_MAX_PER_RUN, 1000, { min: 0, max: 1_000_000 }),
    metricsFile: isUnset(env.AUDIT_METRICS_FILE) ? undefined : env.AUDIT_METRICS_FILE.trim(),
    metricsPushUrl: isUnset(env.AUDIT_METRICS_PUSH_URL) ? undefined : httpUrl('AUDIT_METRICS_PUSH_URL', env.AUDIT_METRICS_PUSH_URL),
  };
}
