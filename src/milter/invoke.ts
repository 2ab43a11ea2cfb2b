/**
 * How the session calls application code. A callback may answer at once or with a promise; most
 * answer at once, and those are followed synchronously (no microtask turn): the replies to one
 * read chunk then leave in one write, and a chunk's commands run in one pass. So each step of the
 * session is a Step: nothing when it finished at once, else the promise of its end.
 */
export type Step = Promise<void> | void;

/**
 * Calls `callback` and hands on its outcome: its value (awaited if it is a promise) to `onValue`,
 * what it threw or its promise rejected with to `onError`. The one place that does so.
 */
export function invoke(callback: () => unknown, onValue: (value: unknown) => Step, onError: (err: unknown) => Step): Step {
  let result: unknown;
  try {
    result = callback();
  } catch (err) {
    return onError(err);
  }
  if (isThenable(result)) return Promise.resolve(result).then(onValue, onError);
  return onValue(result);
}

/** Runs `next` after `first`, synchronously when `first` finished at once. */
export function andThen(first: Step, next: () => Step): Step {
  return first ? first.then(next) : next();
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}
