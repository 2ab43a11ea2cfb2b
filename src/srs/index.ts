export { ForwardMemo } from './forward-memo.js';
export { Srs, type SrsSettings, type ForwardResult, type ForwardRefusal, type ReverseResult, type ReverseRefusal, type SrsScheme } from './scheme.js';
export { SocketmapServer, type SocketmapLookup, type SocketmapReply, type SocketmapEvent, type SocketmapServerOptions } from './socketmap-server.js';
export { srsDecodeLookup, type DecodeOutcome } from './decode-map.js';
export { readNetstring, writeNetstring } from './netstring.js';
