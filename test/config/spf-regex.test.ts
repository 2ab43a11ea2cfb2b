import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileSpfRegex, translatePythonRegex, ConfigError } from '../../src/config/index.js';

const RECORD = 'v=spf1 ip4:192.0.2.0/24 include:secure-mailgate.com include:_spf.esp.example -all';

test('typical Python idioms match like re.match (anchored at the start only)', () => {
  assert.equal(compileSpfRegex('^.*include:secure-mailgate\\.com.*$').matches(RECORD), true);
  assert.equal(compileSpfRegex('^.*include:secure-mailgate\\.com.*$').matches('v=spf1 include:other.example -all'), false);
  assert.equal(compileSpfRegex('.*ip4:192\\.0\\.2\\.0/24').matches(RECORD), true);
  // re.match anchors at the start: a pattern for a later part without .* does not match.
  assert.equal(compileSpfRegex('ip4:192\\.0\\.2\\.0/24').matches(RECORD), false);
  assert.equal(compileSpfRegex('v=spf1').matches(RECORD), true);
  // ...but not at the end: a prefix is enough.
  assert.equal(compileSpfRegex('v=spf1 ip4').matches(RECORD), true);
  assert.equal(compileSpfRegex('.*(?P<inc>include:_spf\\.esp\\.example)').matches(RECORD), true);
  assert.equal(compileSpfRegex('.*ip4:\\d+\\.\\d+\\.\\d+\\.\\d+/\\d+\\s').matches(RECORD), true);
  assert.equal(compileSpfRegex('.*\\s-all$').matches(RECORD), true);
  assert.equal(compileSpfRegex('.*\\s~all$').matches(RECORD), false);
});

test('matching is case-insensitive, and (?i) is accepted', () => {
  assert.equal(compileSpfRegex('.*INCLUDE:Secure-Mailgate\\.COM').matches(RECORD), true);
  assert.equal(compileSpfRegex('(?i).*include:SECURE-mailgate\\.com').matches(RECORD), true);
});

test('the default .* matches everything, including an empty record', () => {
  const re = compileSpfRegex('.*');
  assert.equal(re.matches(''), true);
  assert.equal(re.matches(RECORD), true);
});

test('Python-only syntax is translated to RE2', () => {
  assert.equal(translatePythonRegex('a\\Z'), 'a\\z');
  assert.equal(translatePythonRegex('a{,3}'), 'a{0,3}');
  assert.equal(translatePythonRegex('(?#note)abc'), 'abc');
  assert.equal(translatePythonRegex('\\u0041\\x42'), '\\x{41}\\x{42}');
  assert.equal(translatePythonRegex('\\101'), '\\x{41}');
  assert.equal(translatePythonRegex('[\\b]'), '[\\x{8}]');
  assert.equal(translatePythonRegex('[[:a]'), '[\\[:a]');
  assert.equal(translatePythonRegex('(?au)x'), 'x');
  assert.equal(translatePythonRegex('(?P<n>x)(?:y)'), '(?P<n>x)(?:y)');
  assert.equal(translatePythonRegex('(?x) a b # comment\n c'), 'abc');
  assert.equal(compileSpfRegex('.*-all\\Z').matches(RECORD), true);
  assert.equal(compileSpfRegex('(?x) v=spf1 \\  ip4 # the first mechanism').matches(RECORD), true);
  assert.equal(compileSpfRegex('[[:]').matches(':'), true, 'Python reads [[:] as a set of [ and :');
});

test('escaped punctuation as Python users write it is accepted', () => {
  const re = compileSpfRegex('v\\=spf1\\ ip4\\:192\\.0\\.2\\.0\\/24');
  assert.equal(re.matches(RECORD), true);
});

test('constructs a linear-time engine cannot run are rejected naming SPF_REGEX', () => {
  for (const [pattern, reason] of [
    ['(?P<a>x)(?P=a)', /backreference/],
    ['(a)\\1', /backreference/],
    ['(?=include)', /look-ahead/],
    ['(?<!x)y', /look-ahead and look-behind/],
    ['(?(1)a|b)', /conditional/],
    ['(?>a)', /atomic/],
    ['a(?x)b', /verbose/],
  ] as const) {
    assert.throws(
      () => compileSpfRegex(pattern),
      (err: unknown) => err instanceof ConfigError && err.variable === 'SPF_REGEX' && reason.test(err.message),
      pattern,
    );
  }
});

test('an invalid pattern stops start-up naming SPF_REGEX', () => {
  for (const pattern of ['(unclosed', '[a-', '*x', 'a\\', '\\q']) {
    assert.throws(
      () => compileSpfRegex(pattern),
      (err: unknown) => err instanceof ConfigError && err.variable === 'SPF_REGEX' && err.message.startsWith('SPF_REGEX: '),
      pattern,
    );
  }
});

test('matching runs in linear time even on a pattern that backtracks catastrophically in Python', () => {
  const re = compileSpfRegex('(a+)+$');
  assert.equal(re.matches(`${'a'.repeat(5000)}!`), false);
});
