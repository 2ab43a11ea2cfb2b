import type { LdapConfig } from '../config/index.js';
import type { Logger } from '../log/index.js';
import { LdapDomainDirectory } from './directory.js';

/**
 * The directory as configured by the LDAP_* variables. `dkim`: DMARC is judged, so the
 * own-domain searches also read LDAP_DKIM_ATTRIBUTE (when set).
 */
export function directoryFromConfig(config: LdapConfig, logger: Logger, dkim = false): LdapDomainDirectory {
  return new LdapDomainDirectory({
    uris: config.uris.map((u) => u.url),
    bindDn: config.bindDn,
    bindPw: config.bindPw,
    searchBase: config.searchBase,
    queryFilter: config.queryFilter,
    cacheTtlSeconds: config.cacheTtlSeconds,
    negativeCacheTtlSeconds: config.negativeCacheTtlSeconds,
    timeoutMs: config.timeoutMs,
    tls: { ca: config.tls.ca, verify: config.tls.verify },
    startTls: config.tls.startTls,
    ...(dkim && config.dkimAttribute !== undefined ? { dkimAttribute: config.dkimAttribute } : {}),
    logger,
  });
}
