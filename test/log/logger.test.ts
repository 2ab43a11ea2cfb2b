import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, flushLogger, messageLogger, REDACTED, silentLogger } from '../../src/log/index.js';
import { captureLog as capture } from '../support/log-capture.js';

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


test('conn and queueId given as fields make the prefix, as the milter server logs them', () => {
  const { logger, lines } = capture({ name: 'sos-milter', level: 'debug', format: 'text' });
  logger.debug({ conn: 42 }, 'milter connection opened');
  logger.child({ conn: 1 }).warn({ queueId: 'Q7', idleMs: 10 }, 'late queue id');
  assert.match(lines[0]!, / DEBUG sos-milter: 42: milter connection opened\n$/);
  assert.match(lines[1]!, / WARN sos-milter: 1\/Q7: late queue id idleMs=10\n$/);
});

test('a field replaces the binding of the same name, written once in both formats', () => {
  for (const format of ['text', 'json'] as const) {
    const { logger, lines } = capture({ name: 'sos-milter', level: 'info', format });
    logger.child({ component: 'ldap', uri: 'ldap://a' }).info({ uri: 'ldap://b' }, 'switched');
    if (format === 'json') {
      assert.equal((lines[0]!.match(/"uri"/g) ?? []).length, 1, lines[0]);
      const record = JSON.parse(lines[0]!) as Record<string, unknown>;
      assert.equal(record.uri, 'ldap://b');
      assert.equal(record.component, 'ldap');
    } else {
      assert.match(lines[0]!, / INFO sos-milter: switched component=ldap uri=ldap:\/\/b\n$/);
    }
  }
});

test('an error as the only argument: its message is the message, the error is under err', () => {
  const text = capture({ name: 'sos-milter', level: 'info', format: 'text' });
  text.logger.error(new RangeError('out of range'));
  assert.match(text.lines[0]!, / ERROR sos-milter: out of range err="RangeError: out of range"\n$/);
  const json = capture({ name: 'sos-milter', level: 'info', format: 'json' });
  const err = Object.assign(new Error('refused', { cause: new Error('ECONNREFUSED') }), { code: 'E_LDAP' });
  json.logger.error({ err }, 'failed');
  const record = JSON.parse(json.lines[0]!) as { err: { type: string; message: string; code: string; stack: string; cause: { message: string } } };
  assert.equal(record.err.type, 'Error');
  assert.equal(record.err.message, 'refused');
  assert.equal(record.err.code, 'E_LDAP');
  assert.match(record.err.stack, /^Error: refused\n/);
  assert.equal(record.err.cause.message, 'ECONNREFUSED');
});

test('keys the formats write themselves are kept under a leading underscore; a msg field is the message', () => {
  for (const format of ['text', 'json'] as const) {
    const { logger, lines } = capture({ name: 'sos-milter', level: 'info', format });
    logger.info({ level: 'x', time: 't', name: 'n', cut: 'c' }, 'reserved');
    logger.info({ msg: 'from the field', k: 1 });
    if (format === 'json') {
      const record = JSON.parse(lines[0]!) as Record<string, unknown>;
      assert.deepEqual([record.level, record._level, record._time, record._name, record._cut, record.name], ['info', 'x', 't', 'n', 'c', 'sos-milter']);
      assert.deepEqual(JSON.parse(lines[1]!).msg, 'from the field');
    } else {
      assert.match(lines[0]!, / INFO sos-milter: reserved _level=x _time=t _name=n _cut=c\n$/);
      assert.match(lines[1]!, / INFO sos-milter: from the field k=1\n$/);
    }
  }
});

test('JSON values: non-finite numbers are null, dates ISO strings, bigints numbers; undefined is left out', () => {
  const { logger, lines } = capture({ name: 'sos-milter', level: 'info', format: 'json' });
  logger.info({ inf: Infinity, nan: NaN, d: new Date(0), big: 12345678901234567890n, gone: undefined, fn: () => 1 }, 'values');
  const record = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.equal(record.inf, null);
  assert.equal(record.nan, null);
  assert.equal(record.d, '1970-01-01T00:00:00.000Z');
  assert.equal(record.big, 12345678901234567000);
  assert.ok(!('gone' in record) && !('fn' in record));
});

test('the level can be changed at run time, for the logger and its children', () => {
  const { logger, lines } = capture({ name: 'sos-milter', level: 'info', format: 'text' });
  const child = messageLogger(logger, 1);
  assert.equal(child.isLevelEnabled('debug'), false);
  assert.equal(child.isLevelEnabled('warning'), true);
  logger.level = 'debug';
  assert.equal(child.isLevelEnabled('debug'), true);
  child.debug('now visible');
  logger.level = 'silent';
  child.error('not even errors');
  assert.equal(lines.length, 1);
});

test('silentLogger writes nothing and serialises nothing; flushLogger flushes a destination that can', () => {
  const silent = silentLogger();
  let touched = false;
  silent.child({ component: 'ldap' }).error({ get v() { touched = true; return 1; } }, 'x');
  assert.equal(touched, false);
  assert.equal(silent.isLevelEnabled('error'), false);

  let flushed = 0;
  const logger = createLogger({ name: 'sos-milter', level: 'info', format: 'text', destination: { write: () => undefined, flushSync: () => void flushed++ } });
  flushLogger(logger);
  flushLogger(silent);
  assert.equal(flushed, 1);
});

test('a field that throws while being read does not make the log call throw', () => {
  for (const format of ['text', 'json'] as const) {
    const { logger, lines } = capture({ name: 'sos-milter', level: 'info', format });
    const hostile = {
      get boom(): string {
        throw new Error('getter failed');
      },
    };
    assert.doesNotThrow(() => logger.info({ nested: hostile }, 'still logged'));
    assert.equal(lines.length, 1);
    assert.ok(lines[0]!.includes('still logged') && lines[0]!.includes('getter failed'), lines[0]);
  }
});

test('objects that define toJSON are written as JSON.stringify would (URL, Buffer)', () => {
  const { logger, lines } = capture({ name: 'sos-milter', level: 'info', format: 'json' });
  logger.info({ info: { uri: new URL('ldap://ldap.example:389/'), bytes: Buffer.from('hi') } }, 'toJSON');
  const record = JSON.parse(lines[0]!) as { info: unknown };
  assert.deepEqual(record.info, { uri: 'ldap://ldap.example:389/', bytes: { type: 'Buffer', data: [104, 105] } });
});
