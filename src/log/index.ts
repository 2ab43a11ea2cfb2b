export { createLogger, flushLogger, redactSecrets, messageLogger, silentLogger, REDACTED, type Logger, type LoggerOptions, type LoggerLevel, type LogDestination } from './logger.js';
export { formatTextLine } from './text-format.js';
