/**
 * Typed parsers for single environment values. Each takes the variable name so that every
 * failure becomes a ConfigError naming it. `undefined` and the empty string both mean
 * "unset": container runtimes and compose files often pass empty values for unset ones.
 */
import { isIP } from 'node:net';
import { ConfigError } from './errors.js';

/** The largest delay setTimeout honours; larger values fire immediately. */
export const MAX_TIMER_MS = 2_147_483_647;

export function isUnset(raw: string | undefined): raw is undefined | '' {
  return raw === undefined || raw.trim() === '';
}

/** Quotes a user value for an error message without letting control characters through. */
export function show(raw: string): string {
  return JSON.stringify(raw.length > 80 ? `${raw.slice(0, 77)}...` : raw);
}

export function parseEnum<T extends string>(
  variable: string,
  raw: string | undefined,
  fallback: T,
  aliases: Readonly<Record<string, T>>,
): T {
  if (isUnset(raw)) return fallback;
  const key = raw.trim().toLowerCase();
  const value = aliases[key];
  if (value === undefined) {
    throw new ConfigError('INVALID', variable, `${show(raw)} is not allowed; use one of ${Object.keys(aliases).join(', ')} (any case)`);
  }
  return value;
}

const TRUE_WORDS = new Set(['1', 'true', 'yes', 'on']);
const FALSE_WORDS = new Set(['0', 'false', 'no', 'off']);

/** true/false, yes/no, on/off, 1/0, any case; anything else is refused, not guessed. */
export function parseBoolean(variable: string, raw: string | undefined, fallback: boolean): boolean {
  if (isUnset(raw)) return fallback;
  const word = raw.trim().toLowerCase();
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  throw new ConfigError('INVALID', variable, `${show(raw)} is not allowed; use true or false (also yes/no, on/off, 1/0)`);
}

export interface IntegerBounds {
  min: number;
  max: number;
}

/** Plain decimal integers only: `1e3`, `0x10`, `12abc`, `1.5` and signs are refused. */
export function parseInteger(variable: string, raw: string | undefined, fallback: number, bounds: IntegerBounds): number {
  if (isUnset(raw)) return fallback;
  const text = raw.trim();
  if (!/^[0-9]+$/.test(text)) {
    throw new ConfigError('INVALID', variable, `${show(raw)} is not a plain decimal integer; use digits only, between ${bounds.min} and ${bounds.max}`);
  }
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < bounds.min || value > bounds.max) {
    throw new ConfigError('INVALID', variable, `${text} is out of range; allowed are integers from ${bounds.min} to ${bounds.max}`);
  }
  return value;
}

/** A UNIX permission mode written in octal, e.g. `0666`, `660`, `0o660`. */
export function parseOctalMode(variable: string, raw: string | undefined, fallback: number): number {
  if (isUnset(raw)) return fallback;
  const text = raw.trim().replace(/^0o/i, '');
  if (!/^[0-7]{1,4}$/.test(text)) {
    throw new ConfigError('INVALID', variable, `${show(raw)} is not an octal file mode; use up to four octal digits, e.g. 0660 or 0666`);
  }
  return parseInt(text, 8);
}

/** Splits on the given separators, trims entries and drops empty ones. */
export function splitList(raw: string | undefined, separators: RegExp = /,/): string[] {
  if (isUnset(raw)) return [];
  return raw
    .split(separators)
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
}

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

export function hasControlChars(text: string): boolean {
  return CONTROL_CHARS.test(text);
}

/** Text that ends up in an SMTP reply line: printable ASCII, bounded so the reply stays < 980 bytes. */
export function parseSmtpReplyText(variable: string, raw: string | undefined, fallback: string): string {
  if (isUnset(raw)) return fallback;
  const text = raw.trim();
  if (!/^[\x20-\x7e]+$/.test(text)) {
    throw new ConfigError('INVALID', variable, `${show(raw)} contains control or non-ASCII characters; SMTP reply text must be printable ASCII on one line`);
  }
  if (text.length > 900) {
    throw new ConfigError('INVALID', variable, `is ${text.length} characters long; at most 900 fit into one SMTP reply line`);
  }
  return text;
}

export interface HostPort {
  /** Undefined means every local address. IPv6 addresses are kept without brackets. */
  host: string | undefined;
  port: number;
}

const HOSTNAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;

function isHostname(text: string): boolean {
  return HOSTNAME.test(text);
}

function parsePort(variable: string, text: string, whole: string): number {
  if (!/^[0-9]{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535) {
    throw new ConfigError('INVALID', variable, `${show(whole)} has an invalid port ${show(text)}; ports are decimal numbers from 1 to 65535`);
  }
  return Number(text);
}

/**
 * `host:port`, `[v6]:port` or `:port` (all addresses). Host is an IP address or a host name.
 */
export function parseListenAddress(variable: string, raw: string | undefined): HostPort | undefined {
  if (isUnset(raw)) return undefined;
  const text = raw.trim();
  const hint = 'use host:port, [IPv6]:port or :port, e.g. 127.0.0.1:9100';
  let host: string;
  let port: string;
  const bracketed = /^\[([^\]]+)\]:([^:]*)$/.exec(text);
  if (bracketed) {
    host = bracketed[1]!;
    port = bracketed[2]!;
    if (isIP(host) !== 6) throw new ConfigError('INVALID', variable, `${show(raw)}: ${show(host)} in brackets is not an IPv6 address; ${hint}`);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0 || text.indexOf(':') !== colon) throw new ConfigError('INVALID', variable, `${show(raw)} is not a listen address; ${hint}`);
    host = text.slice(0, colon);
    port = text.slice(colon + 1);
    if (host !== '' && isIP(host) === 0 && !isHostname(host)) {
      throw new ConfigError('INVALID', variable, `${show(raw)}: ${show(host)} is neither an IP address nor a host name; ${hint}`);
    }
  }
  return { host: host === '' ? undefined : host, port: parsePort(variable, port, text) };
}

export { parsePort };
