/**
 * The SRS settings (MILTER_MODE=rewrite, `sos-milter srs`, the srsdecode socketmap), read from
 * the environment as plain values. The secrets are never part of an error message.
 */
import type { RewriteScope } from '../policy/types.js';
import { ConfigError } from './errors.js';
import { isUnset, parseEnum, parseInteger, parseListenAddress, show, type HostPort } from './parse.js';

/** SRS_REWRITE: which violations rewrite mode rewrites; the others are rejected as in reject mode. */
export type SrsRewriteScope = RewriteScope;

export interface SrsConfig {
  domain: string;
  /** The first signs, all verify. */
  secrets: readonly string[];
  maxAgeDays: number;
  rewrite: SrsRewriteScope;
  header: { name: string; value: string };
  socketmap: { listen: HostPort | undefined; maxConnections: number; timeoutMs: number };
}

export const SRS_SECRET_MIN_LENGTH = 16;
const DOMAIN = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/i;
const HEADER_NAME = /^[\x21-\x39\x3b-\x7e]{1,64}$/;

type Env = Readonly<Record<string, string | undefined>>;

const SRS_VARIABLES = [
  'SRS_DOMAIN',
  'SRS_SECRETS',
  'SRS_MAX_AGE_DAYS',
  'SRS_REWRITE',
  'SRS_HEADER_NAME',
  'SRS_HEADER_VALUE',
  'SRS_SOCKETMAP_LISTEN',
  'SRS_SOCKETMAP_MAX_CONNECTIONS',
  'SRS_SOCKETMAP_TIMEOUT_MS',
] as const;

/**
 * The SRS settings when rewrite mode or any SRS_* variable asks for them (e.g. a decode-only
 * instance with SRS_SOCKETMAP_LISTEN on the host that receives the bounces), else undefined.
 * Any SRS_* setting without SRS_DOMAIN and SRS_SECRETS stops start-up naming the missing one.
 */
export function loadSrsConfig(env: Env, rewriteMode: boolean): SrsConfig | undefined {
  const set = SRS_VARIABLES.filter((name) => !isUnset(env[name]));
  if (!rewriteMode && set.length === 0) return undefined;
  return parseSrsConfig(env);
}

export function parseSrsSecrets(raw: string | undefined): string[] {
  if (isUnset(raw)) throw new ConfigError('MISSING', 'SRS_SECRETS', 'is required for SRS (rewrite mode, the srsdecode socketmap, sos-milter srs); give one or more secrets, comma-separated, the first signs');
  const secrets = raw.split(',').map((s) => s.trim());
  secrets.forEach((secret, i) => {
    if (secret.length < SRS_SECRET_MIN_LENGTH) {
      throw new ConfigError('INVALID', 'SRS_SECRETS', `secret #${i + 1} has ${secret.length} characters; each needs at least ${SRS_SECRET_MIN_LENGTH} (e.g. openssl rand -base64 24)`);
    }
    if (/\s/.test(secret)) throw new ConfigError('INVALID', 'SRS_SECRETS', `secret #${i + 1} contains white space`);
  });
  return secrets;
}

export function parseSrsDomain(raw: string | undefined): string {
  if (isUnset(raw)) throw new ConfigError('MISSING', 'SRS_DOMAIN', 'is required for SRS: the domain whose SPF record authorizes the relays, under which senders are rewritten');
  const domain = raw.trim().replace(/\.$/, '').toLowerCase();
  if (!DOMAIN.test(domain)) throw new ConfigError('INVALID', 'SRS_DOMAIN', `${show(raw)} is not a domain name (letters, digits, hyphens, at least two labels)`);
  return domain;
}

export function parseSrsConfig(env: Env): SrsConfig {
  const domain = parseSrsDomain(env.SRS_DOMAIN);
  const secrets = parseSrsSecrets(env.SRS_SECRETS);
  const headerName = isUnset(env.SRS_HEADER_NAME) ? 'X-SOS-Milter' : env.SRS_HEADER_NAME.trim();
  if (!HEADER_NAME.test(headerName)) throw new ConfigError('INVALID', 'SRS_HEADER_NAME', `${show(headerName)} is not a header field name (printable ASCII without ":" or space, at most 64)`);
  const headerValue = isUnset(env.SRS_HEADER_VALUE) ? 'rewritten' : env.SRS_HEADER_VALUE.trim();
  if (!/^[\x20-\x7e]{1,200}$/.test(headerValue)) throw new ConfigError('INVALID', 'SRS_HEADER_VALUE', `${show(headerValue)} must be printable ASCII on one line, at most 200 characters`);
  return {
    domain,
    secrets,
    maxAgeDays: parseInteger('SRS_MAX_AGE_DAYS', env.SRS_MAX_AGE_DAYS, 21, { min: 1, max: 1000 }),
    rewrite: parseEnum<SrsRewriteScope>('SRS_REWRITE', env.SRS_REWRITE, 'both', { foreign: 'foreign', own: 'own', both: 'both' }),
    header: { name: headerName, value: headerValue },
    socketmap: {
      listen: parseListenAddress('SRS_SOCKETMAP_LISTEN', env.SRS_SOCKETMAP_LISTEN),
      maxConnections: parseInteger('SRS_SOCKETMAP_MAX_CONNECTIONS', env.SRS_SOCKETMAP_MAX_CONNECTIONS, 100, { min: 1, max: 100_000 }),
      timeoutMs: parseInteger('SRS_SOCKETMAP_TIMEOUT_MS', env.SRS_SOCKETMAP_TIMEOUT_MS, 30_000, { min: 100, max: 3_600_000 }),
    },
  };
}
