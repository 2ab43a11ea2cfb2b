/**
 * Every log line is bounded in bytes: a long string is cut with a marker saying how many bytes
 * are missing, a large nested value becomes a cut JSON string, and a line with too many long
 * fields leaves out the trailing ones and says so. JSON lines stay valid throughout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LINE_MAX_BYTES, VALUE_MAX_BYTES } from '../../src/log/index.js';
import { captureLog, type LogFormat as Format } from '../support/log-capture.js';

function only(lines: string[]): string {
  assert.equal(lines.length, 1);
  const line = lines[0]!;
  assert.ok(Buffer.byteLength(line) <= LINE_MAX_BYTES + 1, `line of ${Buffer.byteLength(line)} bytes`);
  return line;
}

/** The value of `key` in both formats: JSON's field, or the text format's quoted value. */
function valueIn(format: Format, line: string, key: string): string {
  if (format === 'json') return (JSON.parse(line) as Record<string, string>)[key]!;
  const m = new RegExp(` ${key}=(?:("(?:[^"\\\\]|\\\\.)*")|([^ \\n]+))`).exec(line);
  assert.ok(m, line);
  return m[1] !== undefined ? (JSON.parse(m[1]) as string) : m[2]!;
}

const cases: { name: string; value: string; keptChars: number; cutBytes: number }[] = [
  { name: 'ASCII', value: 'a'.repeat(100_000), keptChars: VALUE_MAX_BYTES, cutBytes: 100_000 - VALUE_MAX_BYTES },
  { name: 'two-byte characters', value: 'é'.repeat(5000), keptChars: VALUE_MAX_BYTES / 2, cutBytes: (5000 - VALUE_MAX_BYTES / 2) * 2 },
  // Four bytes per pair: never cut between the two halves.
  { name: 'surrogate pairs', value: '😀'.repeat(1000), keptChars: (VALUE_MAX_BYTES / 4) * 2, cutBytes: (1000 - VALUE_MAX_BYTES / 4) * 4 },
  // Each escaped NEL takes six bytes in the line (`\u0085`), two in the input.
  { name: 'escaped controls', value: '\u0085'.repeat(1000), keptChars: Math.floor(VALUE_MAX_BYTES / 6), cutBytes: (1000 - Math.floor(VALUE_MAX_BYTES / 6)) * 2 },
];

for (const c of cases) {
  test(`a long value (${c.name}) is cut with a marker giving the bytes cut, text and JSON`, () => {
    for (const format of ['text', 'json'] as const) {
      const { logger, lines } = captureLog(format);
      logger.info({ record: c.value, after: 'kept' }, 'judged');
      const line = only(lines);
      const value = valueIn(format, line, 'record');
      assert.equal(value, `${c.value.slice(0, c.keptChars)}...[${c.cutBytes} bytes cut]`);
      assert.equal(valueIn(format, line, 'after'), 'kept', 'later fields survive');
    }
  });
}

test('a long message and a long queue id are cut too', () => {
  for (const format of ['text', 'json'] as const) {
    const { logger, lines } = captureLog(format);
    logger.child({ conn: 1, queueId: 'Q'.repeat(1000) }).warn(`m${'x'.repeat(9999)}`);
    const line = only(lines);
    assert.ok(line.includes(`...[${10_000 - VALUE_MAX_BYTES} bytes cut]`), 'message marker');
    assert.ok(line.includes(`...[${1000 - 256} bytes cut]`), 'queue id marker');
    if (format === 'json') JSON.parse(line);
  }
});

test('too many long fields: trailing fields are left out and a cut field says how many', () => {
  for (const format of ['text', 'json'] as const) {
    const { logger, lines } = captureLog(format);
    const fields: Record<string, string> = {};
    for (let i = 0; i < 10; i++) fields[`f${i}`] = String(i).repeat(2000);
    logger.info(fields, 'many');
    const line = only(lines);
    const cut = format === 'json' ? (JSON.parse(line) as { cut: string; msg: string }).cut : / cut="([^"]+)"\n$/.exec(line)?.[1];
    assert.match(cut ?? '', /^6 fields, \d+ bytes$/, line.slice(-80));
    assert.ok(line.includes('f3='.replace('=', format === 'json' ? '":' : '=')), 'the first fields stay');
    assert.ok(!line.includes('f4'), 'later fields are left out');
    if (format === 'json') assert.equal((JSON.parse(line) as { msg: string }).msg, 'many', 'the message stays');
  }
});

test('a large nested value becomes a cut JSON string; depth and member counts are bounded', () => {
  for (const format of ['text', 'json'] as const) {
    const { logger, lines } = captureLog(format);
    const deep = { a: { b: { c: { d: { e: 'too deep' } } } } };
    logger.info({ list: Array.from({ length: 1000 }, (_, i) => `item-${i}-${'x'.repeat(100)}`), deep, wide: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, i])) }, 'nested');
    const line = only(lines);
    const record = format === 'json' ? (JSON.parse(line) as Record<string, unknown>) : undefined;
    const list = record ? (record.list as string) : valueIn('text', line, 'list');
    assert.equal(typeof list, 'string');
    assert.match(list, /^\["item-0-x+","item-1-.*\.\.\.\[\d+ bytes cut\]$/);
    assert.ok(Buffer.byteLength(list) < 4096 + 40);
    const deepJson = record ? record.deep : JSON.parse(/ deep=(\S+)/.exec(line)![1]!);
    assert.deepEqual(deepJson, { a: { b: { c: { d: '[object]' } } } });
    const wide = (record ? record.wide : JSON.parse(/ wide=(.*)\n$/.exec(line)![1]!)) as Record<string, unknown>;
    assert.equal(Object.keys(wide).length, 65);
    assert.equal(wide['...'], '36 more members');
  }
});

test('an error with a long stack keeps its type and message', () => {
  const err = new RangeError('boom');
  err.stack = `RangeError: boom\n${'    at frame (file.js:1:1)\n'.repeat(500)}`;
  const { logger, lines } = captureLog('json');
  logger.error({ err }, 'failed');
  const record = JSON.parse(only(lines)) as { err: { type: string; message: string; stack: string } };
  assert.equal(record.err.type, 'RangeError');
  assert.equal(record.err.message, 'boom');
  assert.match(record.err.stack, /bytes cut\]$/);
});
