export { escapeFilterValue, buildFilter } from './escape.js';
export { LdapDomainDirectory, type OwnDomainAnswer, type LdapDirectoryOptions, type LdapDirectoryStats, type ListDomainsOptions, type ListedDomain } from './directory.js';
export { type LdapErrorCode, type LdapWrapOptions, LdapError, LdapConnectError, LdapUnavailableError, LdapTimeoutError, LdapSearchError, LdapClosedError, LdapTlsError, LdapLocalResourceError } from './errors.js';
export { ldaptsClientFactory, type LdapClient, type LdapClientFactory, type LdapSearchRequest, type LdapListRequest, type LdapListedEntry, type LdapTlsOptions } from './client.js';
export { backoffDelay, type BackoffOptions } from './backoff.js';
export { directoryFromConfig } from './from-config.js';
export { domainsOfEntry, firstRdnValue } from './entry-domain.js';
export { DkimValueChecker, MAX_DKIM_VALUES, MAX_DKIM_VALUE_LENGTH } from './dkim-domains.js';
