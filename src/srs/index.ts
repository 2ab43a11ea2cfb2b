export { ForwardMemo, FORWARD_MEMO_MAX_ENTRIES } from './forward-memo.js';
export { Srs, isSrsAddress, srsTimestamp, LOCAL_PART_MAX_OCTETS, type SrsSettings, type ForwardResult, type ForwardRefusal, type ReverseResult, type ReverseRefusal, type SrsScheme } from './scheme.js';
export { SocketmapServer, SOCKETMAP_DEFAULTS, type SocketmapLookup, type SocketmapReply, type SocketmapEvent, type SocketmapServerOptions } from './socketmap-server.js';
export { srsDecodeLookup, SRS_DECODE_MAP, type DecodeOutcome } from './decode-map.js';
export { readNetstring, writeNetstring } from './netstring.js';
