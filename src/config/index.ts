export { ConfigError } from './errors.js';
export { loadConfig, describeConfig, DEFAULTS, REDACTED } from './config.js';
export type { Config, LdapConfig, LdapTlsConfig, LogLevel, LogFormat, MilterMode, SpfCheck } from './config.js';
export { compileSpfRegex, DEFAULT_SPF_REGEX, type SpfRegex } from './spf-regex.js';
export { translatePythonRegex, PythonRegexError } from './python-regex.js';
export { parseMilterSocket, type MilterSocketSpec } from './socket.js';
export type { LdapUri, SpfViolationResult } from './lists.js';
export type { HostPort } from './parse.js';
export { ENV_VARIABLES, environmentHelp, type EnvVariable, type EnvReader } from './variables.js';
