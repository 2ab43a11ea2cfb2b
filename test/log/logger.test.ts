import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, messageLogger, REDACTED, type LoggerOptions } from '../../src/log/index.js';

function capture(options: Omit<LoggerOptions, 'destination'>) {
  const lines: string[] = [];
  const logger = createLogger({ ...options, destination: { write: (line: string) => lines.push(line) } });
  return { logger, lines };
}

const TEXT_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARN|ERROR) sos-milter: /;

test('text format: timestamp, level, name, message, key=value', () => {
  const { logger, lines } = capture({ name: 'sos-milter', level: 'info', format: 'text' });
  logger.info({ domain: 'example.org', count: 3, note: 'two words', ok: true }, 'SPF record checked');
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, TEXT_LINE);
  assert.ok(lines[0]!.endsWith(' INFO sos-milter: SPF record checked domain=example.org count=3 note="two words" ok=true\n'), lines[0]);
});

test('text format: conn/queue id prefix from child bindings', () => {
  const { logger, lines } = capture({ name: 'sos-milter', level: 'info', format: 'text' });
  messageLogger(logger, 12, '4XyZ1').info('reject');
  messageLogger(logger, 13).info('connect');
  logger.child({ conn: 14 }).child({ queueId: 'ABC' }).warn('nested');
  assert.match(lines[0]!, / INFO sos-milter: 12\/4XyZ1: reject\n$/);
  assert.match(lines[1]!, / INFO sos-milter: 13: connect\n$/);
  assert.match(lines[2]!, / WARN sos-milter: 14\/ABC: nested\n$/);
});

test('json format: one JSON object per line with label levels and bindings', () => {
  const { logger, lines } = capture({ name: 'spf-guard', level: 'debug', format: 'json' });
  messageLogger(logger, 5, 'Q1').debug({ domain: 'example.org' }, 'lookup');
  assert.equal(lines.length, 1);
  assert.ok(lines[0]!.endsWith('\n'));
  const record = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.equal(record.level, 'debug');
  assert.equal(record.name, 'spf-guard');
  assert.equal(record.conn, 5);
  assert.equal(record.queueId, 'Q1');
  assert.equal(record.domain, 'example.org');
  assert.equal(record.msg, 'lookup');
  assert.match(String(record.time), /^\d{4}-\d\d-\d\dT/);
});

test('levels: warning maps to warn; lower levels are dropped', () => {
  const { logger, lines } = capture({ name: 'sos-milter', level: 'warning', format: 'text' });
  assert.equal(logger.level, 'warn');
  logger.debug('d');
  logger.info('i');
  logger.warn('w');
  logger.error('e');
  assert.equal(lines.length, 2);
  assert.match(lines[0]!, / WARN sos-milter: w\n$/);
  assert.match(lines[1]!, / ERROR sos-milter: e\n$/);
});

test('disabled levels do not serialise their arguments', () => {
  const { logger, lines } = capture({ name: 'sos-milter', level: 'info', format: 'json' });
  let touched = false;
  const expensive = {
    get value() {
      touched = true;
      return 1;
    },
  };
  logger.debug(expensive, 'not logged');
  assert.equal(touched, false);
  assert.equal(lines.length, 0);
  assert.equal(logger.isLevelEnabled('debug'), false);
});

test('passwords are redacted in both formats, in fields and child bindings', () => {
  for (const format of ['text', 'json'] as const) {
    const { logger, lines } = capture({ name: 'sos-milter', level: 'info', format });
    logger.info({ password: 'pw-one', ldap: { bindPw: 'pw-two', nested: { bindpw: 'pw-three' } } }, 'config');
    logger.child({ LDAP_BINDPW: 'pw-four' }).info('child');
    const all = lines.join('');
    for (const secret of ['pw-one', 'pw-two', 'pw-three', 'pw-four']) assert.ok(!all.includes(secret), `${format} leaked ${secret}: ${all}`);
    assert.ok(all.includes(REDACTED));
  }
});

test('text format escapes control characters so a sender cannot forge log lines', () => {
  const { logger, lines } = capture({ name: 'sos-milter', level: 'info', format: 'text' });
  logger.info({ from: 'a@b\r\n2026-01-01T00:00:00.000Z INFO fake' }, 'sender\nINFO forged');
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!.split('\n').length, 2, 'exactly one line terminator');
  assert.ok(lines[0]!.includes('sender\\nINFO forged'));
});

test('errors are shown with type and message in text format', () => {
  const { logger, lines } = capture({ name: 'sos-milter', level: 'info', format: 'text' });
  logger.error({ err: new TypeError('bad thing') }, 'failed');
  assert.match(lines[0]!, / ERROR sos-milter: failed err="TypeError: bad thing"\n$/);
});

