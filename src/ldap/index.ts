export { escapeFilterValue, buildFilter } from './escape.js';
export { LdapDomainDirectory, type OwnDomainAnswer, type LdapDirectoryOptions, type LdapDirectoryStats } from './directory.js';
export { LdapError, LdapConnectError, LdapUnavailableError, LdapTimeoutError, LdapSearchError, LdapClosedError } from './errors.js';
export { ldaptsClientFactory, type LdapClient, type LdapClientFactory, type LdapSearchRequest } from './client.js';
export { backoffDelay, type BackoffOptions } from './backoff.js';
export { directoryFromConfig } from './from-config.js';
