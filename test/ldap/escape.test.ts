import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildFilter, escapeFilterValue } from '../../src/ldap/index.js';

test('RFC 4515 section 3 special characters are hex-escaped', () => {
  assert.equal(escapeFilterValue('*'), '\\2a');
  assert.equal(escapeFilterValue('('), '\\28');
  assert.equal(escapeFilterValue(')'), '\\29');
  assert.equal(escapeFilterValue('\\'), '\\5c');
  assert.equal(escapeFilterValue('\u0000'), '\\00');
});

test('RFC 4515 section 4 examples', () => {
  assert.equal(escapeFilterValue('Parens R Us (for all your parenthetical needs)'), 'Parens R Us \\28for all your parenthetical needs\\29');
  assert.equal(escapeFilterValue('*'), '\\2a');
  assert.equal(escapeFilterValue('C:\\MyFile'), 'C:\\5cMyFile');
  // "Lučić": the UTF-8 octets of the non-ASCII characters
  assert.equal(escapeFilterValue('Lu\u010di\u0107'), 'Lu\\c4\\8di\\c4\\87');
});

test('non-ASCII is escaped octet by octet in UTF-8, control characters too', () => {
  assert.equal(escapeFilterValue('müller.example'), 'm\\c3\\bcller.example');
  assert.equal(escapeFilterValue('\u{1F600}'), '\\f0\\9f\\98\\80');
  assert.equal(escapeFilterValue('a\r\nb\u007f'), 'a\\0d\\0ab\\7f');
});

test('ordinary domain names pass unchanged', () => {
  assert.equal(escapeFilterValue('customer.example'), 'customer.example');
  assert.equal(escapeFilterValue('xn--mller-kva.example'), 'xn--mller-kva.example');
  assert.equal(escapeFilterValue(''), '');
});

test('injection attempts cannot change the filter structure', () => {
  const filter = buildFilter('(&(objectClass=domain)(dc=%d))', '*)(dc=*');
  assert.equal(filter, '(&(objectClass=domain)(dc=\\2a\\29\\28dc=\\2a))');
  // The filter has exactly the parentheses of the template.
  assert.equal(filter.replace(/[^()]/g, ''), '(()())');
});

test('buildFilter replaces every %d and leaves $ patterns alone', () => {
  assert.equal(buildFilter('(|(dc=%d)(associatedDomain=%d))', 'a.example'), '(|(dc=a.example)(associatedDomain=a.example))');
  assert.equal(buildFilter('(dc=%d)', "$&$'$`"), "(dc=$&$'$`)");
});
