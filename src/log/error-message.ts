/**
 * The text of a thrown value, for a log field or a one-line reason: an Error's message, anything
 * else as a string. The one place that turns an `unknown` from a catch into words; branch on an
 * error's class and `code`, never on this text.
 *
 * An Error with an empty message says what it can instead: an AggregateError (Node's connect
 * with several addresses) lists its errors' messages, any other its `code` or its name. It never
 * throws, not even for a value whose `message` getter or `toString` does (the logger's own
 * failure path relies on that).
 */
export function errorMessage(err: unknown): string {
  try {
    if (err instanceof Error) {
      if (err.message !== '') return err.message;
      if (err instanceof AggregateError && err.errors.length > 0) return err.errors.map(errorMessage).join('; ');
      const code = (err as { code?: unknown }).code;
      return typeof code === 'string' && code !== '' ? code : err.name;
    }
    if (typeof err === 'object' && err !== null) {
      // An error from another realm, or a rejection with a plain object: its message if it has one.
      const message = (err as { message?: unknown }).message;
      if (typeof message === 'string') return message;
    }
    return String(err);
  } catch {
    return Object.prototype.toString.call(err); // no toString (Object.create(null)), or a getter that throws
  }
}
