/**
 * libmilter socket specifications (the milter side; Postfix writes `inet:host:port` instead):
 * `/path`, `:/path`, `unix:/path`, `local:/path`, `inet:PORT`, `inet:PORT@HOST`, `inet6:PORT`,
 * `inet6:PORT@HOST`, where HOST is a name, an IPv4 address, or `[address]`.
 */
import { isIP } from 'node:net';
import { SocketSpecError } from './errors.js';

export type SocketSpec =
  | { kind: 'unix'; path: string }
  | { kind: 'inet'; family: 4 | 6; port: number; /** Undefined = every address of the family. */ host?: string };

export function parseSocketSpec(spec: string): SocketSpec {
  const s = spec.trim();
  if (s.length === 0) throw new SocketSpecError(spec, 'empty');
  if (s.startsWith('/')) return unixSpec(spec, s);
  const colon = s.indexOf(':');
  if (colon < 0) throw new SocketSpecError(spec, 'expected unix:/path, local:/path, /path, inet:PORT[@HOST] or inet6:PORT[@HOST]');
  const proto = s.slice(0, colon).toLowerCase();
  const rest = s.slice(colon + 1);
  switch (proto) {
    case '':
    case 'unix':
    case 'local':
      return unixSpec(spec, rest);
    case 'inet':
      return inetSpec(spec, rest, 4);
    case 'inet6':
      return inetSpec(spec, rest, 6);
    default:
      throw new SocketSpecError(spec, `unknown protocol ${JSON.stringify(proto)} (use unix, local, inet or inet6)`);
  }
}

function unixSpec(spec: string, path: string): SocketSpec {
  if (path.length === 0) throw new SocketSpecError(spec, 'missing socket path');
  if (!path.startsWith('/')) throw new SocketSpecError(spec, 'socket path must be absolute');
  if (path.includes('\0')) throw new SocketSpecError(spec, 'socket path contains NUL');
  return { kind: 'unix', path };
}

function inetSpec(spec: string, rest: string, family: 4 | 6): SocketSpec {
  const at = rest.indexOf('@');
  const portText = at < 0 ? rest : rest.slice(0, at);
  if (portText.length === 0) throw new SocketSpecError(spec, 'missing port');
  if (!/^[0-9]+$/.test(portText)) {
    throw new SocketSpecError(spec, `port ${JSON.stringify(portText)} is not a number (service names are not supported)`);
  }
  const port = Number(portText);
  if (port > 65535) throw new SocketSpecError(spec, `port ${port} is out of range 0-65535`);
  if (at < 0) return { kind: 'inet', family, port };
  let host = rest.slice(at + 1);
  if (host.length === 0) throw new SocketSpecError(spec, 'empty host after @');
  if (host.startsWith('[')) {
    if (!host.endsWith(']')) throw new SocketSpecError(spec, 'unterminated [address]');
    host = host.slice(1, -1);
    if (isIP(host) === 0) throw new SocketSpecError(spec, `${JSON.stringify(host)} is not an IP address`);
  }
  const ipVersion = isIP(host);
  if (ipVersion === 6 && family === 4) throw new SocketSpecError(spec, 'IPv6 address with inet: use inet6');
  if (ipVersion === 4 && family === 6) throw new SocketSpecError(spec, 'IPv4 address with inet6: use inet');
  if (ipVersion === 0 && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) {
    throw new SocketSpecError(spec, `host ${JSON.stringify(host)} is neither an IP address nor a host name`);
  }
  return { kind: 'inet', family, port, host };
}

export function formatSocketSpec(s: SocketSpec): string {
  if (s.kind === 'unix') return `unix:${s.path}`;
  const proto = s.family === 6 ? 'inet6' : 'inet';
  if (s.host === undefined) return `${proto}:${s.port}`;
  return `${proto}:${s.port}@${isIP(s.host) === 6 ? `[${s.host}]` : s.host}`;
}
