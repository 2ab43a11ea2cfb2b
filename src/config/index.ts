export { ConfigError } from './errors.js';
export { loadConfig, describeConfig, DEFAULTS } from './config.js';
export { REDACTED } from '../log/index.js';
export type { Config, LdapConfig, LogLevel, LogFormat } from './config.js';
export { compileSpfRegex, DEFAULT_SPF_REGEX, type SpfRegex } from './spf-regex.js';
export { translatePythonRegex, PythonRegexError } from './python-regex.js';
export { parseMilterSocket, type MilterSocketSpec } from './socket.js';
export type { LdapUri, SpfViolationResult } from './lists.js';
export type { HostPort } from './parse.js';
