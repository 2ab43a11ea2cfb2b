/** Why an own-domain lookup could not be answered from LDAP. */
export class LdapError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** No server of LDAP_SERVER_URI accepted a connection and bind. */
export class LdapConnectError extends LdapError {}

/** Still backing off after failed connection attempts; the lookup was not tried. */
export class LdapUnavailableError extends LdapError {}

/** The lookup did not finish within LDAP_TIMEOUT_MS. */
export class LdapTimeoutError extends LdapError {}

/** The server answered the search with an error. */
export class LdapSearchError extends LdapError {}

/** close() was called. */
export class LdapClosedError extends LdapError {}

/** StartTLS or the TLS handshake failed (untrusted certificate, wrong host name, no StartTLS). */
export class LdapTlsError extends LdapError {}

/**
 * This process could not open the connection (EMFILE/ENFILE: too many open files), or the lookup
 * was refused because the last attempt could not: no server was asked, so the answer says
 * nothing about the domain. A local fault, which the policy does not read as "not own".
 */
export class LdapLocalResourceError extends LdapError {}
