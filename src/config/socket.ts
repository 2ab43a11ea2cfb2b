/**
 * libmilter socket specs (`/path`, `unix:/path`, `local:/path`, `inet:PORT[@HOST]`,
 * `inet6:PORT[@HOST]`). Kept behind one function so the lead can swap in the milter
 * library's own parser (src/milter/socket-spec.ts) without touching the loader.
 */
import { isIP } from 'node:net';
import { ConfigError } from './errors.js';
import { hasControlChars, isHostname, parsePort, show } from './parse.js';

export type MilterSocketSpec =
  | { kind: 'unix'; path: string }
  | { kind: 'inet'; port: number; host: string | undefined }
  | { kind: 'inet6'; port: number; host: string | undefined };

const HINT = 'use /path, unix:/path, local:/path, inet:PORT[@HOST] or inet6:PORT[@HOST]';

export function parseMilterSocket(variable: string, raw: string): MilterSocketSpec {
  const text = raw.trim();
  if (text === '' || hasControlChars(text)) throw new ConfigError(variable, `${show(raw)} is not a socket spec; ${HINT}`);
  if (text.startsWith('/')) return { kind: 'unix', path: text };
  const colon = text.indexOf(':');
  if (colon < 0) throw new ConfigError(variable, `${show(raw)} has no socket type; ${HINT}`);
  const proto = text.slice(0, colon).toLowerCase();
  const rest = text.slice(colon + 1);
  if (proto === 'unix' || proto === 'local' || proto === '') {
    if (rest === '') throw new ConfigError(variable, `${show(raw)} names no socket path; ${HINT}`);
    return { kind: 'unix', path: rest };
  }
  if (proto !== 'inet' && proto !== 'inet6') {
    throw new ConfigError(variable, `${show(raw)}: socket type ${show(proto)} is not supported; ${HINT}`);
  }
  const at = rest.indexOf('@');
  const port = parsePort(variable, at < 0 ? rest : rest.slice(0, at), text);
  if (at < 0) return { kind: proto, port, host: undefined };
  let host = rest.slice(at + 1);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const family = isIP(host);
  const ok = proto === 'inet' ? family === 4 || (family === 0 && isHostname(host)) : family === 6 || (family === 0 && isHostname(host));
  if (!ok) {
    throw new ConfigError(variable, `${show(raw)}: ${show(host)} is not a valid ${proto === 'inet' ? 'IPv4 address or host name' : 'IPv6 address or host name'}; ${HINT}`);
  }
  return { kind: proto, port, host };
}
