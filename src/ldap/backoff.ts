/**
 * Exponential backoff with jitter for the background reconnect attempts: doubles from
 * `initialMs` up to `maxMs`, then picks a random point in the upper half so that many milters
 * restarted together do not hammer a recovering LDAP server in lock-step.
 *
 * The schedule only paces the attempts nobody waits for. A lookup that comes `probeMs` or more
 * after the last attempt tries again at once, whatever the schedule says: a busy milter finds a
 * returned server within about `probeMs`, with at most one attempt per `probeMs`.
 */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** A lookup this long after the last attempt makes a new one (default 1 s). */
  probeMs: number;
}

export function backoffDelay(failures: number, options: Pick<BackoffOptions, 'initialMs' | 'maxMs'>, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(failures - 1, 0), 30);
  const ceiling = Math.min(options.maxMs, options.initialMs * 2 ** exponent);
  return Math.round(ceiling * (0.5 + random() * 0.5));
}
