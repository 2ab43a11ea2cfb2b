/**
 * MILTER_SOCKET through the milter library's own parser, so the configuration accepts
 * exactly what the server can listen on.
 */
import { SocketSpecError } from '../milter/errors.js';
import { parseSocketSpec, type SocketSpec } from '../milter/socket-spec.js';
import { ConfigError } from './errors.js';

export type MilterSocketSpec = SocketSpec;

const HINT = 'use /path, unix:/path, local:/path, inet:PORT[@HOST] or inet6:PORT[@HOST]';

export function parseMilterSocket(variable: string, raw: string): MilterSocketSpec {
  try {
    return parseSocketSpec(raw);
  } catch (err) {
    if (err instanceof SocketSpecError) throw new ConfigError('INVALID', variable, `${err.message}; ${HINT}`, { cause: err });
    throw err;
  }
}
