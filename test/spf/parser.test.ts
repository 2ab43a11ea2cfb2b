import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSpfRecord, parseRecord, SpfSyntaxError, type AMechanism } from '../../src/spf/index.js';

test('isSpfRecord: v=spf1 then a space or the end, any case', () => {
  assert.equal(isSpfRecord('v=spf1'), true);
  assert.equal(isSpfRecord('V=SpF1 -all'), true);
  assert.equal(isSpfRecord('v=spf10'), false);
  assert.equal(isSpfRecord('v=spf1mx'), false);
  assert.equal(isSpfRecord(' v=spf1 -all'), false);
  assert.equal(isSpfRecord('spf2.0/pra -all'), false);
});

test('terms expose kind, qualifier, name and text', () => {
  const r = parseRecord('v=spf1  a mx:mx.example.com/24//64 ~ip4:192.0.2.0/24 ?ip6:2001:db8::/32 -include:_spf.example.net ptr exists:%{ir}.x.example.com -all redirect=other.example.com exp=why.%{d} Foo.Bar=baz ');
  assert.deepEqual(
    r.terms.map((t) => [t.kind, t.kind === 'mechanism' ? t.qualifier : '', t.name, t.text]),
    [
      ['mechanism', '+', 'a', 'a'],
      ['mechanism', '+', 'mx', 'mx:mx.example.com/24//64'],
      ['mechanism', '~', 'ip4', '~ip4:192.0.2.0/24'],
      ['mechanism', '?', 'ip6', '?ip6:2001:db8::/32'],
      ['mechanism', '-', 'include', '-include:_spf.example.net'],
      ['mechanism', '+', 'ptr', 'ptr'],
      ['mechanism', '+', 'exists', 'exists:%{ir}.x.example.com'],
      ['mechanism', '-', 'all', '-all'],
      ['modifier', '', 'redirect', 'redirect=other.example.com'],
      ['modifier', '', 'exp', 'exp=why.%{d}'],
      ['modifier', '', 'foo.bar', 'Foo.Bar=baz'],
    ],
  );
  assert.equal(r.hasAll, true);
  assert.equal(r.redirect?.value.text, 'other.example.com');
  const [a, mx] = r.mechanisms;
  assert.ok(mx.name === 'mx' && a.name === 'a');
  assert.equal(mx.domainSpec?.text, 'mx.example.com');
  assert.equal(mx.cidr4, 24);
  assert.equal(mx.cidr6, 64);
  assert.equal(a.cidr4, 32);
  assert.equal(a.cidr6, 128);
  assert.ok(r.mechanisms.some((m) => m.name === 'all' && m.qualifier === '-'));
});

test('mechanism and modifier names are case-insensitive', () => {
  const r = parseRecord('v=spf1 IP4:192.0.2.1 A:Example.COM -ALL REDIRECT=x.example.com');
  assert.deepEqual(r.mechanisms.map((m) => m.name), ['ip4', 'a', 'all']);
  assert.equal(r.redirect?.name, 'redirect');
});

/** The first mechanism of `text`, which must be an `a`. */
function onlyA(text: string): AMechanism {
  const m = parseRecord(text).mechanisms[0];
  assert.ok(m.name === 'a');
  return m;
}

test('dual CIDR lengths: a//33 is ip6 33, a/24//64 both, slashes inside a domain-spec stay', () => {
  assert.equal(onlyA('v=spf1 a//33').cidr6, 33);
  const colon = onlyA('v=spf1 a:foo:bar/baz.example.com');
  assert.equal(colon.domainSpec?.text, 'foo:bar/baz.example.com');
  assert.equal(colon.cidr4, 32);
  assert.equal(onlyA('v=spf1 a:%{d}/24').cidr4, 24);
});

const bad: [string, string][] = [
  ['syntax error after all', 'v=spf1 -all moo'],
  ['duplicate redirect', 'v=spf1 redirect=a.example.com redirect=a.example.com'],
  ['duplicate exp', 'v=spf1 exp=a.example.com EXP=b.example.com -all'],
  ['unknown mechanism', 'v=spf1 moo.cow/x=y'],
  ['redirect as mechanism', 'v=spf1 redirect:a.example.com'],
  ['modifier name not alpha first', 'v=spf1 1up=foo'],
  ['empty modifier name', 'v=spf1 =all'],
  ['qualified modifier', 'v=spf1 -exp=a.example.com'],
  ['all with argument', 'v=spf1 -all:foo'],
  ['all with dot', 'v=spf1 -all.'],
  ['all with cidr', 'v=spf1 all/8'],
  ['ip4 cidr 33', 'v=spf1 ip4:1.2.3.4/33'],
  ['ip4 cidr leading zero', 'v=spf1 ip4:1.2.3.4/032'],
  ['ip4 short', 'v=spf1 ip4:1.2.3'],
  ['ip4 leading zero octet', 'v=spf1 ip4:1.2.3.04'],
  ['ip4 port', 'v=spf1 ip4:1.2.3.4:8080'],
  ['ip4 dual cidr', 'v=spf1 ip4:1.2.3.4//32'],
  ['bare ip4', 'v=spf1 ip4'],
  ['ip6 cidr 129', 'v=spf1 ip6:::1/129'],
  ['ip6 bad', 'v=spf1 ip6::CAFE::BABE'],
  ['ip6 dual cidr', 'v=spf1 ip6:::1//33'],
  ['a cidr 33', 'v=spf1 a/33'],
  ['a bad dual', 'v=spf1 a/24/64'],
  ['a ip6 cidr 129', 'v=spf1 mx//129'],
  ['empty a domain', 'v=spf1 a:'],
  ['numeric top label', 'v=spf1 a:111.222.33.44'],
  ['only a top label', 'v=spf1 a:museum.'],
  ['top label starting with dash', 'v=spf1 a:example.-com'],
  ['port in domain', 'v=spf1 mx:example.com:8080'],
  ['include without domain', 'v=spf1 include'],
  ['include with cidr', 'v=spf1 include:a.example.com/24'],
  ['exists without domain', 'v=spf1 exists'],
  ['ptr cidr', 'v=spf1 ptr/0'],
  ['bad macro in unknown modifier', 'v=spf1 foo=%abc'],
  ['exp-only macro letter in domain-spec', 'v=spf1 exp=%{r}.example.com'],
  ['empty exp', 'v=spf1 exp= -all'],
  ['empty redirect', 'v=spf1 redirect='],
  ['control character', 'v=spf1 a:x.example.com\rptr'],
  ['line feed', 'v=spf1 ip4:192.0.2.5\n include:x.example.com'],
  ['NUL', 'v=spf1 a:foo.example.com\0'],
  ['non-ASCII', 'v=spf1 a:\u00ef\u00bb\u00bfx.example.net -all'],
  ['not SPF at all', 'hello'],
];

for (const [what, text] of bad) {
  test(`permerror syntax: ${what}`, () => {
    assert.throws(
      () => parseRecord(text),
      (e: unknown) => e instanceof SpfSyntaxError && typeof e.position === 'number' && e.message.length > 0,
    );
  });
}

test('SpfSyntaxError carries the position of the bad term', () => {
  try {
    parseRecord('v=spf1 a -all moo');
    assert.fail('no error');
  } catch (e) {
    assert.ok(e instanceof SpfSyntaxError);
    assert.equal(e.position, 14);
    assert.match(e.message, /unknown mechanism 'moo'/);
  }
});

test('valid corner cases: unknown modifiers, trailing spaces, IDN top labels, macro domain-end', () => {
  assert.equal(parseRecord('v=spf1 moo.cow-far_out=man:dog/cat ip4:1.2.3.4 -all').terms.length, 3);
  assert.equal(parseRecord('v=spf1 default=+').terms[0].name, 'default');
  assert.equal(parseRecord('v=spf1 -all ').terms.length, 1);
  assert.equal(parseRecord('v=spf1').terms.length, 0);
  assert.equal(onlyA('v=spf1 a:foo.example.xn--zckzah -all').domainSpec?.text, 'foo.example.xn--zckzah');
  assert.equal(parseRecord('v=spf1 a:%{H}.bar').mechanisms.length, 1);
  assert.equal(parseRecord('v=spf1 exists:%{l}%-').mechanisms.length, 1);
  const include = parseRecord('v=spf1 include:o.spf.example.com.').mechanisms[0];
  assert.ok(include.name === 'include');
  assert.equal(include.domainSpec.text, 'o.spf.example.com.');
  assert.equal(parseRecord('v=spf1 ip6:::FFFF:1.2.3.4 ip4:0.0.0.0/0').mechanisms.length, 2);
});
