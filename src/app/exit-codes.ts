/**
 * Exit statuses of every `sos-milter` command, from sysexits(3) where one fits. The one
 * place they are defined; help texts name them.
 */
export const ExitCode = {
  OK: 0,
  /**
   * The daemon could not start or failed; `check`: the message would be rejected, marked or logged;
   * `health`: the daemon is unhealthy, not ready or unreachable.
   */
  FAILURE: 1,
  /** `audit`: the audit itself could not complete (LDAP unreachable, bad configuration). */
  INCOMPLETE: 2,
  /** EX_USAGE: wrong arguments. */
  USAGE: 64,
  /** EX_CONFIG: a bad environment variable (the message names it). */
  CONFIG: 78,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];
