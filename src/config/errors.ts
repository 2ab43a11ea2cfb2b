/**
 * What is wrong with a configuration variable: the stable `code` of a ConfigError.
 * INVALID: a value is set but not allowed; MISSING: a required value is unset or empty;
 * UNREADABLE: a file the value names cannot be read.
 */
export type ConfigErrorCode = 'INVALID' | 'MISSING' | 'UNREADABLE';

/**
 * A configuration problem found at start-up, the config layer's one error class. The message
 * always names the environment variable, says what is wrong and what is allowed, so an operator
 * can fix it from the log line alone; the daemon prints it and exits with EX_CONFIG (78).
 * Callers branch on `variable` and `code`, never on the message.
 */
export class ConfigError extends Error {
  readonly code: ConfigErrorCode;
  readonly variable: string;
  readonly reason: string;

  constructor(code: ConfigErrorCode, variable: string, reason: string, options?: ErrorOptions) {
    super(`${variable}: ${reason}`, options);
    this.name = 'ConfigError';
    this.code = code;
    this.variable = variable;
    this.reason = reason;
  }
}
