/**
 * Wire constants of the Sendmail milter protocol, version 6 (see the protocol reference:
 * libmilter's mfdef.h and Postfix's milter8.c agree on every value used here).
 */

/** Command bytes sent by the MTA (SMFIC_*). */
export const Cmd = {
  ABORT: 0x41, // 'A'
  BODY: 0x42, // 'B'
  CONNECT: 0x43, // 'C'
  MACRO: 0x44, // 'D'
  BODYEOB: 0x45, // 'E'
  HELO: 0x48, // 'H'
  QUIT_NC: 0x4b, // 'K'
  HEADER: 0x4c, // 'L'
  MAIL: 0x4d, // 'M'
  EOH: 0x4e, // 'N'
  OPTNEG: 0x4f, // 'O'
  QUIT: 0x51, // 'Q'
  RCPT: 0x52, // 'R'
  DATA: 0x54, // 'T'
  UNKNOWN: 0x55, // 'U'
} as const;

/** Response bytes sent by the milter (SMFIR_*). */
export const Resp = {
  ADDRCPT: 0x2b, // '+'
  DELRCPT: 0x2d, // '-'
  ADDRCPT_PAR: 0x32, // '2'
  SHUTDOWN: 0x34, // '4'
  ACCEPT: 0x61, // 'a'
  REPLBODY: 0x62, // 'b'
  CONTINUE: 0x63, // 'c'
  DISCARD: 0x64, // 'd'
  CHGFROM: 0x65, // 'e'
  CONN_FAIL: 0x66, // 'f'
  ADDHEADER: 0x68, // 'h'
  INSHEADER: 0x69, // 'i'
  SETSYMLIST: 0x6c, // 'l'
  CHGHEADER: 0x6d, // 'm'
  PROGRESS: 0x70, // 'p'
  QUARANTINE: 0x71, // 'q'
  REJECT: 0x72, // 'r'
  SKIP: 0x73, // 's'
  TEMPFAIL: 0x74, // 't'
  REPLYCODE: 0x79, // 'y'
  OPTNEG: 0x4f, // 'O'
} as const;

/** Action flags (SMFIF_*): which modifications the milter may request. */
export const ActionFlag = {
  ADDHDRS: 0x001,
  CHGBODY: 0x002,
  ADDRCPT: 0x004,
  DELRCPT: 0x008,
  CHGHDRS: 0x010,
  QUARANTINE: 0x020,
  CHGFROM: 0x040,
  ADDRCPT_PAR: 0x080,
  SETSYMLIST: 0x100,
} as const;
export type ActionName = keyof typeof ActionFlag;

/** Protocol flags (SMFIP_*): skipped steps, unanswered steps and capabilities. */
export const ProtoFlag = {
  NOCONNECT: 0x00000001,
  NOHELO: 0x00000002,
  NOMAIL: 0x00000004,
  NORCPT: 0x00000008,
  NOBODY: 0x00000010,
  NOHDRS: 0x00000020,
  NOEOH: 0x00000040,
  NR_HDR: 0x00000080,
  NOUNKNOWN: 0x00000100,
  NODATA: 0x00000200,
  SKIP: 0x00000400,
  RCPT_REJ: 0x00000800,
  NR_CONN: 0x00001000,
  NR_HELO: 0x00002000,
  NR_MAIL: 0x00004000,
  NR_RCPT: 0x00008000,
  NR_DATA: 0x00010000,
  NR_UNKN: 0x00020000,
  NR_EOH: 0x00040000,
  NR_BODY: 0x00080000,
  HDR_LEADSPC: 0x00100000,
  MDS_256K: 0x10000000,
  MDS_1M: 0x20000000,
} as const;
export type ProtoFlagName = keyof typeof ProtoFlag;

/** Macro stage numbers used in the symbol lists of the OPTNEG reply (SMFIM_*). EOM < EOH on purpose. */
export const MacroStage = {
  CONNECT: 0,
  HELO: 1,
  ENVFROM: 2,
  ENVRCPT: 3,
  DATA: 4,
  EOM: 5,
  EOH: 6,
} as const;

/** Highest protocol version this library speaks. */
export const PROTOCOL_VERSION = 6;
/** Lowest version an MTA may offer (libmilter refuses 1). */
export const MIN_PROTOCOL_VERSION = 2;
/** libmilter replaces a zero actions / protocol field of an offer with these v1 defaults. */
export const V1_ACTIONS = 0x0f;
export const V1_PROTOCOL = 0x3f;

/** Largest payload this library ever sends: libmilter's MILTER_MAX_DATA_SIZE and MILTER_CHUNK_SIZE. */
export const MAX_SEND_PAYLOAD = 65535;
/** Default inbound payload limit: Postfix sends each header as a single packet of up to ~100 KiB. */
export const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** Payload sizes announced by the optional MDS flags (FFR builds of sendmail/libmilter). */
export const MDS_256K_SIZE = 262143;
export const MDS_1M_SIZE = 1048575;

/** Packets that may wait behind a pending callback (see SessionOptions.maxQueuedPackets). */
export const DEFAULT_MAX_QUEUED_PACKETS = 4096;

/**
 * SMFIR_PROGRESS while an end-of-message reply is pending, every this many ms: half of
 * Sendmail's default reply timeout (R:10s), far below Postfix's milter_content_timeout (300 s).
 */
export const DEFAULT_PROGRESS_INTERVAL_MS = 5000;

/** The server's limits when its options leave them out; the daemon's configuration defaults are these. */
export const MILTER_SERVER_DEFAULTS = {
  idleTimeoutMs: 310_000,
  packetTimeoutMs: 30_000,
  maxBufferedBytes: 64 * 1024 * 1024,
  maxQueuedPackets: DEFAULT_MAX_QUEUED_PACKETS,
  writeHighWaterMark: 64 * 1024,
  maxWriteBuffer: 1024 * 1024,
  maxConnections: 2048,
  progressIntervalMs: DEFAULT_PROGRESS_INTERVAL_MS,
} as const;
