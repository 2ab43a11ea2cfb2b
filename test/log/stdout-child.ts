/**
 * A process that logs to its real stdout, for stdout.test.ts: `node stdout-child.js <scenario> <format>`.
 * Scenarios:
 * - prompt: one line, then stays alive (the line must arrive while it runs);
 * - exit: 20,000 lines, then process.exit at once (all must arrive);
 * - flush: three lines, flushLogger, then a raw `MARK` written past the logger (order kept);
 * - levels: one line per level, debug enabled, then exit (journal priorities);
 * - drop: makes stdout non-blocking (as touching process.stdout does), logs 3 MiB while the
 *   parent does not read, says `burst done` on stderr, waits for `go` on stdin, logs `after`.
 */
import { writeSync } from 'node:fs';
import { createLogger, flushLogger } from '../../src/log/index.js';

const [scenario, format = 'text'] = process.argv.slice(2);
const logger = createLogger({ name: 'child', level: 'debug', format: format === 'json' ? 'json' : 'text' });

switch (scenario) {
  case 'prompt':
    logger.info({ at: Date.now() }, 'prompt line');
    setInterval(() => undefined, 1000);
    break;
  case 'exit':
    for (let i = 0; i < 20_000; i++) logger.info({ i }, 'numbered');
    process.exit(0);
    break;
  case 'flush':
    for (let i = 0; i < 3; i++) logger.info({ i }, 'before mark');
    flushLogger(logger);
    writeSync(1, 'MARK\n');
    process.exit(0);
    break;
  case 'levels':
    logger.debug('at debug');
    logger.info('at info');
    logger.warn('at warn');
    logger.error('at error');
    break;
  case 'drop': {
    // Node makes a pipe non-blocking once process.stdout is used; the logger must cope.
    process.stdout.write('');
    const pad = 'x'.repeat(200);
    for (let i = 0; i < 15_000; i++) logger.info({ i, pad }, 'burst');
    process.stderr.write('burst done\n');
    process.stdin.setEncoding('utf8').on('data', () => {
      logger.info('after');
      process.exit(0);
    });
    break;
  }
  default:
    throw new Error(`unknown scenario ${scenario}`);
}
