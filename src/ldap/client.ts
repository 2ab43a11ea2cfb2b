/** The slice of ldapts's Client the directory uses, so tests can substitute a fake. */
import type { ConnectionOptions } from 'node:tls';
import { Client, SizeLimitExceededError } from 'ldapts';

export interface LdapSearchRequest {
  scope: 'sub';
  filter: string;
  sizeLimit: number;
  timeLimit: number;
  attributes: string[];
}

export interface LdapListRequest {
  filter: string;
  /** Attributes to return; `['1.1']` for none (the DN only). */
  attributes: string[];
  /** Entries per page of the RFC 2696 paged-results control. */
  pageSize: number;
  timeLimit: number;
}

/** One entry of a listing: its DN and the requested attributes' values as text. */
export interface LdapListedEntry {
  dn: string;
  attributes: Record<string, string[]>;
}

export interface LdapClient {
  readonly isConnected: boolean;
  /** Upgrades the plain connection (RFC 4513 §3); rejects when the server or the TLS handshake refuses. */
  startTls(): Promise<void>;
  bind(dn: string, password: string): Promise<void>;
  /** Resolves with the number of entries found (at least 1 if the size limit was hit). */
  countEntries(base: string, request: LdapSearchRequest): Promise<number>;
  /**
   * The entries found with the requested attributes; `sizeLimitExceeded` when more matched than
   * the size limit allows (the entries are then not known: the server's answer is an error).
   */
  searchEntries(base: string, request: LdapSearchRequest): Promise<{ entries: LdapListedEntry[]; sizeLimitExceeded: boolean }>;
  /** Every entry under `base`, page by page (RFC 2696), so that server size limits do not cut the list. */
  listEntries(base: string, request: LdapListRequest): AsyncIterable<LdapListedEntry[]>;
  unbind(): Promise<void>;
}

export interface LdapTlsOptions {
  /** PEM text of the trusted CAs; undefined: Node's built-in list. */
  ca?: string | undefined;
  /** false skips chain and host name checks (LDAP_TLS_VERIFY=false). */
  verify: boolean;
}

export type LdapClientFactory = (url: string, timeoutMs: number, tls?: LdapTlsOptions) => LdapClient;

/** node:tls options for a server at `host`, the same for ldaps:// and for StartTLS. */
export function tlsConnectionOptions(host: string, tls: LdapTlsOptions | undefined): ConnectionOptions {
  const options: ConnectionOptions = { minVersion: 'TLSv1.2' };
  if (tls?.ca !== undefined) options.ca = tls.ca;
  if (tls?.verify === false) {
    options.rejectUnauthorized = false;
    options.checkServerIdentity = () => undefined;
  }
  // StartTLS hands node:tls an existing socket: without `host` it would check the
  // certificate against "localhost". SNI takes names only, never IP addresses (RFC 6066 §3).
  options.host = host;
  if (!/^[0-9.]+$|:/.test(host)) options.servername = host;
  return options;
}

/** The server's host in an LDAP URI, an IPv6 address without its brackets. */
export function uriHost(url: string): string {
  return new URL(url).hostname.replace(/^\[(.*)\]$/, '$1');
}

/** ldaps:// (TLS from the first byte), as against ldap:// (plain, or StartTLS). */
export function isLdapsUri(url: string): boolean {
  return url.toLowerCase().startsWith('ldaps://');
}

function asText(value: unknown): string[] {
  const values = Array.isArray(value) ? value : [value];
  return values.map((v) => (Buffer.isBuffer(v) ? v.toString('utf8') : String(v)));
}

/** An ldapts entry as text, attribute names in lower case. */
function listedEntry(entry: { dn: string; [name: string]: unknown }): LdapListedEntry {
  const attributes: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(entry)) if (name !== 'dn') attributes[name.toLowerCase()] = asText(value);
  return { dn: entry.dn, attributes };
}

export const ldaptsClientFactory: LdapClientFactory = (url, timeoutMs, tls) => {
  const host = uriHost(url);
  // Our own bind is replayed by reconnecting explicitly; ldapts must not reconnect silently
  // unauthenticated, so its transparent reconnect is never relied on (isConnected is checked).
  // ldapts speaks TLS from the first byte whenever tlsOptions is given: only for ldaps://.
  const secure = isLdapsUri(url);
  const client = new Client({ url, timeout: timeoutMs, connectTimeout: timeoutMs, ...(secure ? { tlsOptions: tlsConnectionOptions(host, tls) } : {}) });
  return {
    get isConnected() {
      return client.isConnected;
    },
    startTls: () => client.startTLS(tlsConnectionOptions(host, tls)),
    bind: (dn, password) => client.bind(dn, password),
    countEntries: async (base, request) => {
      try {
        const result = await client.search(base, request);
        return result.searchEntries.length;
      } catch (err) {
        // sizeLimit 1 and more than one match: the domain exists, which is all we ask.
        if (err instanceof SizeLimitExceededError) return 1;
        throw err;
      }
    },
    searchEntries: async (base, request) => {
      try {
        const result = await client.search(base, request);
        return { entries: result.searchEntries.map(listedEntry), sizeLimitExceeded: false };
      } catch (err) {
        if (err instanceof SizeLimitExceededError) return { entries: [], sizeLimitExceeded: true };
        throw err;
      }
    },
    listEntries: async function* (base, request) {
      const pages = client.searchPaginated(base, {
        scope: 'sub',
        filter: request.filter,
        attributes: request.attributes,
        timeLimit: request.timeLimit,
        paged: { pageSize: request.pageSize },
      });
      for await (const page of pages) {
        yield page.searchEntries.map(listedEntry);
      }
    },
    unbind: () => client.unbind(),
  };
};
