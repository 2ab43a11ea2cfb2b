/** The slice of ldapts's Client the directory uses, so tests can substitute a fake. */
import { Client, SizeLimitExceededError } from 'ldapts';

export interface LdapSearchRequest {
  scope: 'sub';
  filter: string;
  sizeLimit: number;
  timeLimit: number;
  attributes: string[];
}

export interface LdapClient {
  readonly isConnected: boolean;
  bind(dn: string, password: string): Promise<void>;
  /** Resolves with the number of entries found (at least 1 if the size limit was hit). */
  countEntries(base: string, request: LdapSearchRequest): Promise<number>;
  unbind(): Promise<void>;
}

export type LdapClientFactory = (url: string, timeoutMs: number) => LdapClient;

export const ldaptsClientFactory: LdapClientFactory = (url, timeoutMs) => {
  // Our own bind is replayed by reconnecting explicitly; ldapts must not reconnect silently
  // unauthenticated, so its transparent reconnect is never relied on (isConnected is checked).
  const client = new Client({ url, timeout: timeoutMs, connectTimeout: timeoutMs });
  return {
    get isConnected() {
      return client.isConnected;
    },
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
    unbind: () => client.unbind(),
  };
};
