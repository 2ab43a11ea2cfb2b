/**
 * Why the LDAP layer could not answer: the stable `code` of an LdapError. Callers (and the
 * lookup counters) branch on the class and the code, never on the message.
 */
export type LdapErrorCode =
  | 'NO_SERVER_URI' // the directory was given no server URI
  | 'BAD_DOMAIN' // the domain asked about cannot be searched for (empty, control characters): no server was asked
  | 'CONNECT' // LdapConnectError: no server accepted a connection and bind
  | 'CONNECT_TIMEOUT' // LdapConnectError: ... and at least one attempt timed out
  | 'TLS' // LdapTlsError: StartTLS or the TLS handshake failed
  | 'UNAVAILABLE' // LdapUnavailableError: backing off after failed attempts; nothing was tried
  | 'TIMEOUT' // LdapTimeoutError: no answer within LDAP_TIMEOUT_MS
  | 'SEARCH' // LdapSearchError: the search failed
  | 'SEARCH_TIMEOUT' // LdapSearchError: ldapts's operation timeout or the server's time limit ended it
  | 'CLOSED' // LdapClosedError: close() was called
  | 'LOCAL_RESOURCE'; // LdapLocalResourceError: no file descriptor to connect with (EMFILE/ENFILE): no server was asked

const TIMEOUT_CODES: ReadonlySet<LdapErrorCode> = new Set<LdapErrorCode>(['TIMEOUT', 'CONNECT_TIMEOUT', 'SEARCH_TIMEOUT']);

/** Options of the errors that wrap a failure of ldapts: its error, and whether it was a timeout. */
export interface LdapWrapOptions extends ErrorOptions {
  timedOut?: boolean;
}

/** Why an own-domain lookup could not be answered from LDAP: the LDAP layer's one error root. */
export class LdapError extends Error {
  constructor(
    readonly code: LdapErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
  }

  /** A deadline passed (ours, ldapts's or the server's): counted as kind="timeout", not "error". */
  get timedOut(): boolean {
    return TIMEOUT_CODES.has(this.code);
  }
}

/** No server of LDAP_SERVER_URI accepted a connection and bind. */
export class LdapConnectError extends LdapError {
  constructor(message: string, options?: LdapWrapOptions) {
    super(options?.timedOut === true ? 'CONNECT_TIMEOUT' : 'CONNECT', message, options);
  }
}

/** Still backing off after failed connection attempts; the lookup was not tried. */
export class LdapUnavailableError extends LdapError {
  constructor(message: string) {
    super('UNAVAILABLE', message);
  }
}

/** The lookup did not finish within LDAP_TIMEOUT_MS. */
export class LdapTimeoutError extends LdapError {
  constructor(message: string) {
    super('TIMEOUT', message);
  }
}

/** The server answered the search with an error, or the search timed out (SEARCH_TIMEOUT). */
export class LdapSearchError extends LdapError {
  constructor(message: string, options?: LdapWrapOptions) {
    super(options?.timedOut === true ? 'SEARCH_TIMEOUT' : 'SEARCH', message, options);
  }
}

/** close() was called. */
export class LdapClosedError extends LdapError {
  constructor(message: string) {
    super('CLOSED', message);
  }
}

/** StartTLS or the TLS handshake failed (untrusted certificate, wrong host name, no StartTLS). */
export class LdapTlsError extends LdapError {
  constructor(message: string, options?: ErrorOptions) {
    super('TLS', message, options);
  }
}

/**
 * This process could not open the connection (EMFILE/ENFILE: too many open files), or the lookup
 * was refused because the last attempt could not: no server was asked, so the answer says
 * nothing about the domain. A local fault, which the policy does not read as "not own".
 */
export class LdapLocalResourceError extends LdapError {
  constructor(message: string, options?: ErrorOptions) {
    super('LOCAL_RESOURCE', message, options);
  }
}
