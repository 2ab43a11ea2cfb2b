/** Typed errors of the milter library. Each carries a stable `code` for logs and tests. */

export class MilterError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The peer broke the wire protocol; the connection it came from is closed. */
export class MilterProtocolError extends MilterError {}

/** A value the application (or a test client) asked to encode is not valid on the wire. */
export class MilterEncodeError extends MilterError {}

/** An SMTP reply given to `Verdict.reply` / `formatReplyCode` is malformed. */
export class ReplyCodeError extends MilterError {}

/** A libmilter socket specification could not be parsed. */
export class SocketSpecError extends MilterError {
  constructor(
    readonly spec: string,
    message: string,
  ) {
    super('BAD_SOCKET_SPEC', `invalid socket spec ${JSON.stringify(spec)}: ${message}`);
  }
}

/** Binding the listening socket failed for a reason we detected ourselves. */
export class SocketBindError extends MilterError {}

/** The application used the context wrongly (e.g. a modification outside end of message). */
export class MilterUsageError extends MilterError {}
