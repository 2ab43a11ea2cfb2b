/** The application-facing API: callbacks, their context, and what the application declares. */
import type { ActionName } from './constants.js';
import type { ConnectInfo } from './commands.js';
import type { Verdict } from './verdict.js';

/** Why a connection ended, as the application's disconnect callback is told. */
export type EndReason = 'quit' | 'eof' | 'timeout' | 'protocol-error' | 'limit' | 'shutdown' | 'error';

/** Stages at which the application may ask for macros (they map to SMFIM_* numbers). */
export type MacroStageName = 'connect' | 'helo' | 'envfrom' | 'envrcpt' | 'data' | 'eoh' | 'eom';

/** Callbacks that answer an MTA command (and so may be declared never-answering via `noReply`). */
export type ReplyingCallback = 'connect' | 'helo' | 'envfrom' | 'envrcpt' | 'data' | 'header' | 'eoh' | 'body' | 'unknown';

export type CallbackResult = Verdict | undefined | void;
export type Awaitable<T> = T | Promise<T>;

export interface NegotiatedOptions {
  version: number;
  actions: number;
  protocol: number;
}

export interface MilterLogger {
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
}

export interface MilterContext {
  /** Unique per milter connection within this process. */
  readonly id: string;
  /** Connect information of the current SMTP session (undefined before CONNECT or with NOCONNECT). */
  readonly connection: ConnectInfo | undefined;
  /** Last HELO/EHLO name of the session. */
  readonly helo: string | undefined;
  /** Negotiated protocol version and flags (undefined before OPTNEG). */
  readonly negotiated: NegotiatedOptions | undefined;
  /** Per-message scratch space; replaced by a fresh object after end of message and on ABORT. */
  readonly state: Record<string, unknown>;
  /** Macro lookup, bare or braced name, newest stage first. */
  macro(name: string): string | undefined;
  /** Every macro currently visible, keyed by bare name. */
  macros(): Record<string, string>;

  // Modifications: only inside the eom callback, only for actions declared and negotiated.
  addHeader(name: string, value: string): void;
  /** `index` is 0-based over all headers as stored by the MTA (0 = very top). */
  insertHeader(index: number, name: string, value: string): void;
  /** `index` is 1-based among headers of that name; an empty value deletes the header. */
  changeHeader(name: string, index: number, value: string): void;
  addRecipient(rcpt: string, esmtpArgs?: string): void;
  deleteRecipient(rcpt: string): void;
  changeSender(sender: string, esmtpArgs?: string): void;
  replaceBody(body: Buffer | string): void;
  quarantine(reason: string): void;
  /** Tells the MTA that the answer to end of message is still being worked on. */
  progress(): void;
}

export interface MilterApplication {
  /** Modification actions the application may use (only those the MTA offers are negotiated). */
  actions?: readonly ActionName[];
  /** Macros to request per stage (bare or braced names). */
  macros?: Partial<Record<MacroStageName, readonly string[]>>;
  /** Callbacks that only ever continue: the MTA is asked not to wait for their answer. */
  noReply?: readonly ReplyingCallback[];
  /** Ask for header values with their leading space kept (SMFIP_HDR_LEADSPC). */
  headerLeadingSpace?: boolean;
  /** Also receive recipients the MTA rejected itself (SMFIP_RCPT_REJ). */
  rejectedRecipients?: boolean;

  connect?(ctx: MilterContext, info: ConnectInfo): Awaitable<CallbackResult>;
  helo?(ctx: MilterContext, name: string): Awaitable<CallbackResult>;
  envfrom?(ctx: MilterContext, sender: string, esmtpArgs: string[]): Awaitable<CallbackResult>;
  envrcpt?(ctx: MilterContext, recipient: string, esmtpArgs: string[]): Awaitable<CallbackResult>;
  data?(ctx: MilterContext): Awaitable<CallbackResult>;
  header?(ctx: MilterContext, name: string, value: string): Awaitable<CallbackResult>;
  eoh?(ctx: MilterContext): Awaitable<CallbackResult>;
  body?(ctx: MilterContext, chunk: Buffer): Awaitable<CallbackResult>;
  eom?(ctx: MilterContext): Awaitable<CallbackResult>;
  unknown?(ctx: MilterContext, line: string): Awaitable<CallbackResult>;
  /** A message was abandoned (ABORT, or the connection ended inside a transaction). */
  abort?(ctx: MilterContext): Awaitable<void>;
  /** The SMTP session ended (QUIT, QUIT_NC, EOF, error, timeout, shutdown). */
  close?(ctx: MilterContext): Awaitable<void>;
  /**
   * The connection ended under a callback that may still be pending (EOF, error, timeout,
   * shutdown): called at once, so the application can stop work nobody will read. The
   * abort and close callbacks still follow in order. `reason` says who ended it: the MTA
   * (eof, error) or the milter (shutdown: the drain deadline; timeout, limit, protocol-error).
   */
  disconnect?(ctx: MilterContext, reason: EndReason): void;
}

export const SILENT_LOGGER: MilterLogger = Object.freeze({
  debug() {},
  info() {},
  warn() {},
  error() {},
});
