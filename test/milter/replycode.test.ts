import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatReplyCode, parseReplyText, ReplyCodeError, Verdict } from '../../src/milter/index.js';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ReplyCodeError);
    return e.code;
  }
  return 'none';
}

test('single and multi-line replies are formatted like smfi_setmlreply', () => {
  assert.equal(formatReplyCode(550, '5.7.1', 'Message rejected'), '550 5.7.1 Message rejected');
  assert.equal(formatReplyCode('451', undefined, 'try later'), '451 try later');
  assert.equal(formatReplyCode(550, '5.1.1', ['line one', 'line two']), '550-5.1.1 line one\r\n550 5.1.1 line two');
  assert.equal(formatReplyCode(421, '4.7.0', ['a', 'b', 'c']), '421-4.7.0 a\r\n421-4.7.0 b\r\n421 4.7.0 c');
});

test('percent signs are doubled', () => {
  assert.equal(formatReplyCode(550, null, '100% sure, %s'), '550 100%% sure, %%s');
});

test('bad codes, classes and characters are refused', () => {
  assert.equal(code(() => formatReplyCode(250, null, 'ok')), 'BAD_CODE');
  assert.equal(code(() => formatReplyCode(600, null, 'x')), 'BAD_CODE');
  assert.equal(code(() => formatReplyCode('55', null, 'x')), 'BAD_CODE');
  assert.equal(code(() => formatReplyCode(550, '4.7.1', 'x')), 'CLASS_MISMATCH');
  assert.equal(code(() => formatReplyCode(451, '5.7.1', 'x')), 'CLASS_MISMATCH');
  assert.equal(code(() => formatReplyCode(550, '5.7', 'x')), 'BAD_ENHANCED');
  assert.equal(code(() => formatReplyCode(550, '5.7.1000', 'x')), 'BAD_ENHANCED');
  assert.equal(code(() => formatReplyCode(550, null, 'a\r\nb')), 'BAD_CHAR');
  assert.equal(code(() => formatReplyCode(550, null, ['ok', 'bad\n'])), 'BAD_CHAR');
  assert.equal(code(() => formatReplyCode(550, null, 'nul\0')), 'BAD_CHAR');
  assert.equal(code(() => formatReplyCode(550, null, [])), 'NO_TEXT');
  assert.equal(code(() => formatReplyCode(550, null, new Array(33).fill('x'))), 'TOO_MANY_LINES');
  assert.equal(code(() => formatReplyCode(550, null, 'x'.repeat(981))), 'LINE_TOO_LONG');
});

test('Verdict.reply validates at construction and encodes a y packet', () => {
  assert.throws(() => Verdict.reply(550, '4.0.0', 'x'), ReplyCodeError);
  const v = Verdict.reply(554, '5.7.1', ['SPF fail', '50% done']);
  assert.equal(v.kind, 'reply');
  assert.equal(v.text, '554-5.7.1 SPF fail\r\n554 5.7.1 50%% done');
  assert.equal(v.packet[4], 0x79);
  assert.equal(v.packet.subarray(5).toString(), v.text + '\0');
});

test('parseReplyText checks every line like Postfix 3.12', () => {
  assert.deepEqual(parseReplyText('550-5.7.1 a\r\n550 5.7.1 b'), { code: '550', enhanced: '5.7.1', lines: ['a', 'b'] });
  assert.equal(code(() => parseReplyText('550 5.7.1 a\r\n550 5.7.1 b')), 'BAD_SEPARATOR');
  assert.equal(code(() => parseReplyText('550-a\r\n551 b')), 'CODE_CHANGES');
  assert.equal(code(() => parseReplyText('550 4.7.1 x')), 'CLASS_MISMATCH');
  assert.equal(code(() => parseReplyText('550 a\nb')), 'BAD_CHAR');
  assert.equal(code(() => parseReplyText('550 50% off')), 'LONE_PERCENT');
  assert.equal(code(() => parseReplyText('5501 x')), 'BAD_CODE');
});
