/**
 * Typed errors of the milter library: one root, MilterError, and a stable `code` on every error
 * for logs, metrics and callers, who branch on the class and the code, never on the message.
 */

/** Every code a MilterError carries. */
export type MilterErrorCode =
  // MilterProtocolError: the peer broke the wire protocol
  | 'ZERO_LENGTH'
  | 'PACKET_TOO_LARGE'
  | 'NOT_NEGOTIATED'
  | 'OLD_VERSION'
  | 'SHORT_OPTNEG'
  | 'UNKNOWN_COMMAND'
  | 'MISSING_FIELD'
  | 'MISSING_NUL'
  | 'BAD_FAMILY'
  | 'BAD_ADDRESS'
  // ... and the MTA side's decoding of our responses (the test client's codec)
  | 'BAD_FIELDS'
  | 'EXTRA_PAYLOAD'
  | 'UNKNOWN_RESPONSE'
  // MilterEncodeError: a value that cannot go on the wire
  | 'PAYLOAD_TOO_LARGE'
  | 'BAD_MACRO_NAME'
  | 'BAD_MACRO_STAGE'
  | 'TOO_MANY_MACROS'
  | 'BAD_ACTION'
  | 'NUL_IN_STRING'
  | 'BAD_HEADER_NAME'
  | 'BAD_HEADER_VALUE'
  | 'EMPTY_FIELD'
  | 'BAD_INDEX'
  | 'BAD_PORT'
  // ReplyCodeError: a malformed SMTP reply
  | 'BAD_CODE'
  | 'BAD_ENHANCED'
  | 'CLASS_MISMATCH'
  | 'CODE_CHANGES'
  | 'BAD_SEPARATOR'
  | 'NO_TEXT'
  | 'TOO_MANY_LINES'
  | 'LINE_TOO_LONG'
  | 'BAD_CHAR'
  | 'LONE_PERCENT'
  // SocketSpecError
  | 'BAD_SOCKET_SPEC'
  // SocketBindError
  | 'ALREADY_LISTENING'
  | 'NOT_A_SOCKET'
  | 'SOCKET_IN_USE'
  | 'SOCKET_PROBE_FAILED'
  // MilterUsageError: the application used the context wrongly
  | 'NOT_AT_EOM'
  | 'ACTION_NOT_NEGOTIATED';

export class MilterError extends Error {
  constructor(
    readonly code: MilterErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
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
