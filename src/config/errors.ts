/**
 * A configuration problem found at start-up. The message always names the environment
 * variable, says what is wrong and what is allowed, so an operator can fix it from the log
 * line alone; the daemon prints it and exits with EX_CONFIG (78).
 */
export class ConfigError extends Error {
  readonly variable: string;
  readonly reason: string;

  constructor(variable: string, reason: string) {
    super(`${variable}: ${reason}`);
    this.name = 'ConfigError';
    this.variable = variable;
    this.reason = reason;
  }
}
