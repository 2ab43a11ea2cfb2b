import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_FROM_OCTETS, parseFromHeader } from '../../src/dmarc/from-header.js';

const one = (value: string, domain: string, address?: string) => {
  const r = parseFromHeader(value);
  assert.equal(r.kind, 'one', `${value}: ${JSON.stringify(r)}`);
  if (r.kind !== 'one') return;
  assert.equal(r.domain, domain, value);
  if (address) assert.equal(r.address, address, value);
};

test('addr-spec, name-addr, display names with quotes, comments and encoded words', () => {
  one('ceo@customer.example', 'customer.example', 'ceo@customer.example');
  one(' <ceo@Customer.Example.> ', 'customer.example');
  one('CEO <ceo@customer.example>', 'customer.example');
  one('"Doe, John" <john@customer.example>', 'customer.example');
  one('"a@evil.example" <john@customer.example>', 'customer.example');
  one('"<x@evil.example>" <john@customer.example>', 'customer.example');
  one('=?UTF-8?B?SsO2cmc=?= <joerg@customer.example>', 'customer.example');
  one('=?iso-8859-1?q?J=F6rg?= Doe <joerg@customer.example>', 'customer.example');
  one('john@customer.example (John Doe)', 'customer.example');
  one('(comment (nested, with @ and <x@evil.example>)) john@customer.example', 'customer.example');
  one('John (the \\) boss) <john@customer.example>', 'customer.example');
  one('"quoted local"@customer.example', 'customer.example', '"quoted local"@customer.example');
  one('john . doe @ customer.example', 'customer.example'); // obs-local-part, CFWS around @
  one('<@relay.example,@other.example:john@customer.example>', 'customer.example'); // obs-route
  one('John\r\n Doe\r\n <john@customer.example>', 'customer.example'); // folded
  one('j\u00f6rg@b\u00fccher.example', 'b\u00fccher.example'); // RFC 6532: the caller maps to A-labels
});

test('groups and several mailboxes', () => {
  one('Team: john@customer.example;', 'customer.example');
  one('Team: john@customer.example, "Jane" <jane@customer.example>;', 'customer.example');
  one('a@customer.example, b@customer.example', 'customer.example');
  assert.deepEqual(parseFromHeader('a@one.example, b@two.example'), { kind: 'several', domains: ['one.example', 'two.example'] });
  assert.deepEqual(parseFromHeader('Team: a@one.example;, b@two.example'), { kind: 'several', domains: ['one.example', 'two.example'] });
  assert.deepEqual(parseFromHeader('undisclosed-recipients:;'), { kind: 'none' });
  assert.deepEqual(parseFromHeader(''), { kind: 'none' });
  assert.deepEqual(parseFromHeader('  (just a comment) '), { kind: 'none' });
});

test('unreadable values are invalid with a reason', () => {
  for (const v of [
    'john',
    'John Doe',
    '<john@customer.example',
    'john@[192.0.2.1]',
    'john@',
    '@customer.example',
    '"unterminated <john@customer.example>',
    '(unterminated john@customer.example',
    'John <john@customer.example> trailing',
    'Team: john@customer.example',
    'john@customer..example',
    'a@b@c.example x',
  ]) {
    const r = parseFromHeader(v);
    assert.equal(r.kind, 'invalid', `${v}: ${JSON.stringify(r)}`);
  }
});

test('hostile values are bounded: length, nesting, mailbox count', () => {
  assert.deepEqual(parseFromHeader(`${'x'.repeat(MAX_FROM_OCTETS)}@a.example`).kind, 'invalid');
  // Deep comment nesting costs a counter, not a stack frame per level.
  one(`${'('.repeat(1500)}${')'.repeat(1500)}a@customer.example`, 'customer.example');
  assert.equal(parseFromHeader(`${'a@x.example,'.repeat(300)}`.slice(0, MAX_FROM_OCTETS)).kind, 'invalid');
});
