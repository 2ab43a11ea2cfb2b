/**
 * Exponential backoff with jitter for reconnect attempts: doubles from `initialMs` up to
 * `maxMs`, then picks a random point in the upper half so that many milters restarted
 * together do not hammer a recovering LDAP server in lock-step.
 */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

export function backoffDelay(failures: number, options: BackoffOptions, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(failures - 1, 0), 30);
  const ceiling = Math.min(options.maxMs, options.initialMs * 2 ** exponent);
  return Math.round(ceiling * (0.5 + random() * 0.5));
}
