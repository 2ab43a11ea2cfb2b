/**
 * Why the SPF layer threw: the stable `code` of an SpfError. Callers branch on the class and the
 * code, never on the message. (A DNS failure is not thrown: it becomes a temperror result.)
 */
export type SpfErrorCode =
  | 'SYNTAX' // SpfSyntaxError: a record or explanation does not follow the grammar (permerror)
  | 'BAD_INPUT' // SpfInputError: check_host() was handed something that is not an input
  | 'ABORTED'; // EvaluationAbortedError: the caller's signal abandoned the evaluation

/** The SPF layer's one error root. */
export class SpfError extends Error {
  constructor(
    readonly code: SpfErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A record (or explanation string) that does not follow the RFC 7208 grammar: permerror. */
export class SpfSyntaxError extends SpfError {
  declare readonly code: 'SYNTAX';
  /** Offset in the text examined (the record, or the macro-string inside it) where it went wrong. */
  readonly position: number;

  constructor(message: string, position: number) {
    super('SYNTAX', `${message} (at ${position})`);
    this.position = position;
  }
}

/** The caller handed check_host() something that is not an input (e.g. no IP address). */
export class SpfInputError extends SpfError {
  declare readonly code: 'BAD_INPUT';

  constructor(message: string) {
    super('BAD_INPUT', message);
  }
}

/**
 * The caller's AbortSignal abandoned the evaluation (e.g. the policy's deadline passed): no
 * result, and no further DNS queries were sent for it. `code` is stable: 'ABORTED'.
 */
export class EvaluationAbortedError extends SpfError {
  declare readonly code: 'ABORTED';

  constructor(what: string, options?: { cause?: unknown }) {
    super('ABORTED', `SPF evaluation of ${what} abandoned by the caller`, options);
  }
}
