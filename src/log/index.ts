export { createLogger, flushLogger, messageLogger, silentLogger, REDACTED, type Logger, type LoggerOptions, type LoggerLevel, type LogDestination } from './logger.js';
export { LINE_MAX_BYTES } from './render.js';
export { VALUE_MAX_BYTES } from './escape.js';
export { errorMessage } from './error-message.js';
