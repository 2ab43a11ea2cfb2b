/**
 * Log forgery (issue 7 item 5): every character that a common consumer treats as a line break or
 * a terminal control is escaped, in both formats, wherever input can appear in a line: a field
 * value, the message, the `<conn>/<queue id>` prefix, another binding, a key. JSON lines stay
 * valid JSON and give the original text back; text lines give it back through JSON's rules.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { captureLog, FORBIDDEN } from '../support/log-capture.js';

function range(from: number, to: number): string {
  let s = '';
  for (let c = from; c <= to; c++) s += String.fromCharCode(c);
  return s;
}

const CLASSES: [string, string][] = [
  ['C0 controls (CR, LF, ESC, VT, FF, FS/GS/RS…)', range(0x00, 0x1f)],
  ['DEL', '\u007f'],
  ['C1 controls (NEL U+0085, CSI U+009B, …)', range(0x80, 0x9f)],
  ['LINE SEPARATOR U+2028', '\u2028'],
  ['PARAGRAPH SEPARATOR U+2029', '\u2029'],
  ['bidirectional controls', '\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069'],
  ['lone surrogates (no UTF-8 form)', '\ud800x\udbffx\udc00x\udfff'],
];


/** What a reader recovers: the text itself, unpaired surrogates as U+FFFD. */
function recovered(text: string): string {
  return text.replace(/\p{Cs}/gu, '\ufffd');
}

/** The one line body; fails unless the line is exactly one line by every splitter. */
function body(lines: string[]): string {
  assert.equal(lines.length, 1);
  const line = lines[0]!;
  assert.ok(line.endsWith('\n'));
  const text = line.slice(0, -1);
  const raw = FORBIDDEN.exec(text);
  assert.equal(raw, null, `raw U+${raw?.[0]!.charCodeAt(0).toString(16).padStart(4, '0')} in ${JSON.stringify(line)}`);
  assert.equal(Buffer.from(line, 'utf8').toString('utf8'), line, 'the line is valid UTF-8');
  return text;
}

/** A text-format `key=value` value back to its text (bare, or quoted with JSON escapes). */
function textValueOf(line: string, key: string): string {
  const at = line.indexOf(` ${key}=`);
  assert.ok(at >= 0, `no ${key}= in ${line}`);
  const rest = line.slice(at + key.length + 2);
  if (!rest.startsWith('"')) return rest.split(' ')[0]!;
  const end = /^"(?:[^"\\]|\\.)*"/.exec(rest);
  assert.ok(end, `unterminated quoted value in ${line}`);
  return JSON.parse(end[0]) as string;
}

/** Unescapes a message or prefix part of a text line (JSON escapes, no quotes around it). */
function unescapeText(part: string): string {
  return JSON.parse(`"${part.replace(/"/g, '\\"')}"`) as string;
}

for (const [name, chars] of CLASSES) {
  const payload = `a${chars}b`;
  const want = recovered(payload);

  test(`${name}: escaped in a field value, text and JSON`, () => {
    const text = captureLog('text');
    text.logger.info({ sender: payload, n: 1 }, 'value');
    assert.equal(textValueOf(body(text.lines), 'sender'), want);
    const json = captureLog('json');
    json.logger.info({ sender: payload, n: 1 }, 'value');
    assert.equal((JSON.parse(body(json.lines)) as { sender: string }).sender, want);
  });

  test(`${name}: escaped in the message, text and JSON`, () => {
    const text = captureLog('text');
    text.logger.warn(`mode=test client=${payload} end`);
    const line = body(text.lines);
    const msg = /^\S+ WARN sos-milter: mode=test client=(.*) end$/.exec(line);
    assert.ok(msg, line);
    assert.equal(unescapeText(msg[1]!), want);
    const json = captureLog('json');
    json.logger.warn(`client=${payload}`);
    assert.equal((JSON.parse(body(json.lines)) as { msg: string }).msg, `client=${want}`);
  });

  test(`${name}: escaped in the <conn>/<queue id> prefix and other bindings, text and JSON`, () => {
    const text = captureLog('text');
    text.logger.child({ conn: `c${chars}`, queueId: payload, client: payload }).info('judged');
    const line = body(text.lines);
    const prefix = /^\S+ INFO sos-milter: ("(?:[^"\\]|\\.)*")\/("(?:[^"\\]|\\.)*"): judged /.exec(line);
    assert.ok(prefix, line);
    assert.equal(JSON.parse(prefix[1]!), recovered(`c${chars}`));
    assert.equal(JSON.parse(prefix[2]!), want);
    assert.equal(textValueOf(line, 'client'), want);
    const json = captureLog('json');
    json.logger.child({ conn: 1, queueId: payload, client: payload }).info('judged');
    const record = JSON.parse(body(json.lines)) as Record<string, unknown>;
    assert.equal(record.queueId, want);
    assert.equal(record.client, want);
  });

  test(`${name}: escaped in keys and nested values, text and JSON`, () => {
    for (const format of ['text', 'json'] as const) {
      const { logger, lines } = captureLog(format);
      logger.info({ [payload]: 'v', nested: { [payload]: [payload] } }, 'keys');
      const line = body(lines);
      if (format === 'json') {
        const record = JSON.parse(line) as Record<string, unknown>;
        assert.equal(record[want], 'v');
        assert.deepEqual(record.nested, { [want]: [want] });
      } else {
        const key = /^\S+ INFO sos-milter: keys ("(?:[^"\\]|\\.)*")=v /.exec(line);
        assert.ok(key, line);
        assert.equal(JSON.parse(key[1]!), want);
        const nested = textValueOf(line, 'nested');
        assert.deepEqual(JSON.parse(nested), { [want]: [want] });
      }
    }
  });
}

test('printable non-ASCII text and valid surrogate pairs stay as they are', () => {
  const value = 'müller@bücher.example 😀 ü';
  for (const format of ['text', 'json'] as const) {
    const { logger, lines } = captureLog(format);
    logger.info({ sender: value }, `from ${value}`);
    assert.ok(body(lines).includes('müller@bücher.example 😀'), lines[0]);
  }
});

test('a backslash is escaped, so an escape in the input cannot pass for one made by the logger', () => {
  const { logger, lines } = captureLog('text');
  logger.info({ v: 'a\\nb' }, 'back\\nslash');
  const line = body(lines);
  assert.ok(line.includes('back\\\\nslash'), line);
  assert.equal(textValueOf(line, 'v'), 'a\\nb');
});

test('raw 0x85 and 0x9B bytes decoded as latin1 are escaped as the C1 controls they become', () => {
  const fromWire = Buffer.from([0x61, 0x85, 0x9b, 0x33, 0x31, 0x6d, 0x62]).toString('latin1');
  for (const format of ['text', 'json'] as const) {
    const { logger, lines } = captureLog(format);
    logger.info({ sender: fromWire }, 'latin1');
    const line = body(lines);
    assert.ok(line.includes('a\\u0085\\u009b31mb'), line);
  }
});
