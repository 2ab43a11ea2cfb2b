/** A record (or explanation string) that does not follow the RFC 7208 grammar: permerror. */
export class SpfSyntaxError extends Error {
  /** Offset in the text examined (the record, or the macro-string inside it) where it went wrong. */
  readonly position: number;

  constructor(message: string, position: number) {
    super(`${message} (at ${position})`);
    this.name = 'SpfSyntaxError';
    this.position = position;
  }
}

/** The caller handed check_host() something that is not an input (e.g. no IP address). */
export class SpfInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SpfInputError';
  }
}

/**
 * The caller's AbortSignal abandoned the evaluation (e.g. the policy's deadline passed): no
 * result, and no further DNS queries were sent for it. `code` is stable: 'ABORTED'.
 */
export class EvaluationAbortedError extends Error {
  readonly code = 'ABORTED' as const;

  constructor(what: string, options?: { cause?: unknown }) {
    super(`SPF evaluation of ${what} abandoned by the caller`, options);
    this.name = 'EvaluationAbortedError';
  }
}
