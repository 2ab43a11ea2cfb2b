/** Public API of the milter protocol library (knows nothing of SPF). */
export type {
  Awaitable,
  CallbackResult,
  MacroStageName,
  MilterApplication,
  MilterContext,
  MilterLogger,
  NegotiatedOptions,
  ReplyingCallback,
} from './application.js';
export { SILENT_LOGGER } from './application.js';
export type { ConnectFamily, ConnectInfo, MtaCommand } from './commands.js';
export { decodeCommand } from './commands.js';
export {
  ActionFlag,
  Cmd,
  DEFAULT_MAX_PAYLOAD,
  MacroStage,
  MAX_SEND_PAYLOAD,
  PROTOCOL_VERSION,
  ProtoFlag,
  Resp,
  type ActionName,
  type ProtoFlagName,
} from './constants.js';
export {
  MilterEncodeError,
  MilterError,
  type MilterErrorCode,
  MilterProtocolError,
  MilterUsageError,
  ReplyCodeError,
  SocketBindError,
  SocketSpecError,
} from './errors.js';
export { encodePacket, PacketDecoder, type PacketHandler } from './framing.js';
export { bareMacroName, decodeMacroPacket, MacroStore, type MacroPacket, type MacroPairs } from './macros.js';
export { buildSymbolLists, describeNegotiation, flagNames, negotiate, wireMacroName, type Negotiation, type Offer } from './negotiation.js';
export { formatReplyCode, parseReplyText, type ParsedReply } from './replycode.js';
export {
  encodeReplaceBody,
  encodeResponse,
  SIMPLE_PACKETS,
  type MilterResponse,
  type SimpleResponseType,
  type SymbolList,
} from './responses.js';
export { SYSTEM_CLOCK, type MilterClock } from './clock.js';
export { DEFAULT_RATE_LIMIT, RateLimitedLog, type RateLimit } from './rate-limited-log.js';
export { MILTER_SERVER_DEFAULTS } from './constants.js';
export {
  MilterServer,
  type BoundAddress,
  type CloseOptions,
  type MilterServerOptions,
  type MilterServerStats,
} from './server.js';
export { MilterSession, type EndReason, type SessionCounters, type SessionIO, type SessionOptions } from './session.js';
export { formatSocketSpec, parseSocketSpec, type SocketSpec } from './socket-spec.js';
export { Verdict, type VerdictKind } from './verdict.js';
