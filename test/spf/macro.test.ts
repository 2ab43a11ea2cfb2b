import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expandMacroString, type MacroValues, parseMacroString, urlEscape } from '../../src/spf/macro.js';
import { SpfSyntaxError } from '../../src/spf/errors.js';

// RFC 7208 §7.4 examples: sender strong-bad@email.example.com, IPv4 192.0.2.3.
const v4: MacroValues = {
  s: 'strong-bad@email.example.com',
  l: 'strong-bad',
  o: 'email.example.com',
  d: 'email.example.com',
  i: '192.0.2.3',
  p: 'mx.example.org',
  v: 'in-addr',
  h: 'mx.example.org',
  c: '192.0.2.3',
  r: 'receiver.example.net',
  t: '1700000000',
};

const expand = (text: string, values = v4, syntax: 'domain' | 'explain' = 'domain') =>
  expandMacroString(parseMacroString(text, syntax), values, syntax);

test('RFC 7208 §7.4 examples', () => {
  assert.equal(expand('%{s}'), 'strong-bad@email.example.com');
  assert.equal(expand('%{o}'), 'email.example.com');
  assert.equal(expand('%{d}'), 'email.example.com');
  assert.equal(expand('%{d4}'), 'email.example.com');
  assert.equal(expand('%{d3}'), 'email.example.com');
  assert.equal(expand('%{d2}'), 'example.com');
  assert.equal(expand('%{d1}'), 'com');
  assert.equal(expand('%{dr}'), 'com.example.email');
  assert.equal(expand('%{d2r}'), 'example.email');
  assert.equal(expand('%{l}'), 'strong-bad');
  assert.equal(expand('%{l-}'), 'strong.bad');
  assert.equal(expand('%{lr}'), 'strong-bad');
  assert.equal(expand('%{lr-}'), 'bad.strong');
  assert.equal(expand('%{l1r-}'), 'strong');
  assert.equal(expand('%{ir}.%{v}._spf.%{d2}'), '3.2.0.192.in-addr._spf.example.com');
  assert.equal(expand('%{lr-}.lp._spf.%{d2}'), 'bad.strong.lp._spf.example.com');
  assert.equal(expand('%{lr-}.lp.%{ir}.%{v}._spf.%{d2}'), 'bad.strong.lp.3.2.0.192.in-addr._spf.example.com');
  assert.equal(expand('%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}'), '3.2.0.192.in-addr.strong.lp._spf.example.com');
  assert.equal(expand('%{d2}.trusted-domains.example.net'), 'example.com.trusted-domains.example.net');
  const v6 = { ...v4, i: '2.0.0.1.0.D.B.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.C.B.0.1', v: 'ip6', c: '2001:db8::cb01' };
  assert.equal(expand('%{ir}.%{v}._spf.%{d2}', v6), '1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.ip6._spf.example.com');
});

test('every letter expands; c r t only in explanations', () => {
  assert.equal(
    expand('%{s} %{l} %{o} %{d} %{i} %{p} %{v} %{h} %{c} %{r} %{t}', v4, 'explain'),
    'strong-bad@email.example.com strong-bad email.example.com email.example.com 192.0.2.3 mx.example.org in-addr mx.example.org 192.0.2.3 receiver.example.net 1700000000',
  );
  for (const letter of ['c', 'r', 't', 'C']) assert.throws(() => parseMacroString(`%{${letter}}.example.com`, 'domain'), SpfSyntaxError);
  assert.doesNotThrow(() => parseMacroString('%{c}', 'modifier'));
});

test('escapes %% %_ %- and URL-escaped upper-case letters', () => {
  assert.equal(expand('macro%%percent%_%_space%-url-space.example.com'), 'macro%percent  space%20url-space.example.com');
  const odd = { ...v4, l: '~jack&jill=up-a_b3.c' };
  assert.equal(expand('l=%{L}', odd, 'explain'), 'l=~jack%26jill%3Dup-a_b3.c');
  assert.equal(expand('%{S}', v4), 'strong-bad%40email.example.com');
  assert.equal(urlEscape("JUMPIN' JUPITER"), 'JUMPIN%27%20JUPITER');
});

test('multiple delimiters, transformers beyond the part count', () => {
  const v = { ...v4, l: 'foo-bar+zip+quux' };
  assert.equal(expand('%{l2r+-}', v), 'bar.foo');
  assert.equal(expand('%{l99}', v), 'foo-bar+zip+quux');
  assert.equal(expand('%{l=}', { ...v4, l: 'a=b' }), 'a.b');
  assert.equal(expand('%{l/,_}', { ...v4, l: 'a/b,c_d' }), 'a.b.c.d');
  assert.equal(expand('%{lr+}', v), 'quux.zip.foo-bar');
});

test('syntax errors: bad letters, bare percent, zero digit, bad delimiter, spaces', () => {
  for (const text of ['%{a}', '%(ir).x', 'foo%.x', 'x%', '%{d0}', '%{d2x}', '%{d', '%{}', 'a b']) {
    assert.throws(() => parseMacroString(text, 'domain'), SpfSyntaxError, text);
  }
  assert.throws(() => parseMacroString('The %{x}-files.', 'explain'), SpfSyntaxError);
  assert.throws(() => parseMacroString('\u00efExplanation', 'explain'), SpfSyntaxError);
  assert.equal(expand('two  spaces %{d1}', v4, 'explain'), 'two  spaces com');
});

test('expansion of huge values stays bounded', () => {
  const long = { ...v4, l: 'x'.repeat(5000) };
  const text = Array.from({ length: 200 }, () => '%{l}.').join('') + 'example.com';
  const out = expand(text, long);
  assert.ok(out.length <= 5000, `length ${out.length}`);
  assert.ok(out.endsWith('.example.com'));
  const exp = expand(text, long, 'explain');
  assert.equal(exp.length, 4096);
});
