/**
 * How each kind of MAIL FROM domain is treated: judged as which domain, or not judged. The
 * README's "Sender domains" table is this table; keep the two alike.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseEnvelopeSender, spfSender } from '../../src/policy/sender.js';

/** [MAIL FROM, the domain judged (or null: not judged), what the row shows]. */
const TABLE: [string, string | null, string][] = [
  ['<user@Example.ORG>', 'example.org', 'LDH labels, compared in lower case'],
  ['<user@example.org.>', 'example.org', 'a final dot is dropped'],
  ['<@relay.example:user@example.org>', 'example.org', 'a source route is ignored'],
  ['<user@ab--cd.example>', 'ab--cd.example', 'hyphens inside a label are LDH'],
  ['<user@localhost>', 'localhost', 'a single label is a name like any other'],
  [`<user@${'a'.repeat(63)}.example>`, `${'a'.repeat(63)}.example`, 'a 63-octet label'],
  ['<user@bücher.example>', 'xn--bcher-kva.example', 'U-labels become A-labels (IDNA2008, UTS #46 non-transitional)'],
  ['<user@BÜCHER.example>', 'xn--bcher-kva.example', 'UTS #46 maps case'],
  ['<user@faß.example>', 'xn--fa-hia.example', 'non-transitional: ß stays ß'],
  ['<user@例え.テスト>', 'xn--r8jz45g.xn--zckzah', 'any script'],
  ['<user@XN--BCHER-KVA.example>', 'xn--bcher-kva.example', 'a valid A-label, in lower case'],
  ['<user@example。org>', 'example.org', 'UTS #46 maps the ideographic full stop to a dot'],
  ['<>', null, 'null sender (bounce, DSN)'],
  ['<postmaster>', null, 'no @'],
  ['<user@>', null, 'empty domain'],
  ['<user@[192.0.2.1]>', null, 'address literal'],
  ['<user@[IPv6:2001:db8::1]>', null, 'address literal'],
  ['<user@192.0.2.1>', null, 'dotted address without brackets: numeric top-level label'],
  ['<user@0x7f.1>', null, 'numeric host forms are not turned into 127.0.0.1'],
  ['<u@fail.example\\innocent.example>', null, '\\ does not cut the domain short'],
  ['<u@fail.example/innocent.example>', null, '/ neither'],
  ['<u@fail.example?innocent.example>', null, '? neither'],
  ['<u@fail.example#innocent.example>', null, '# neither'],
  ['<u@fail%2eexample>', null, '%2e is not decoded to a dot'],
  ['<user@under_score.example>', null, '_ is no LDH character'],
  ['<user@-lead.example>', null, 'a label starts with a letter or digit'],
  ['<user@trail-.example>', null, 'and ends with one'],
  ['<user@a..example>', null, 'empty label'],
  ['<user@exa mple.org>', null, 'blank inside the domain'],
  ['<user@*.example>', null, 'LDAP filter characters are no domain characters'],
  ['<user@x)(dc=*.example>', null, 'neither are parentheses'],
  [`<user@${'a'.repeat(64)}.example>`, null, 'a label longer than 63 octets'],
  [`<user@${`${'a'.repeat(62)}.`.repeat(4)}example>`, null, 'a name longer than 253 octets'],
  ['<user@xn--a.example>', null, 'an A-label that decodes to no valid U-label'],
  ['<user@\u200dx.example>', null, 'a joiner outside its context (UTS #46 CheckJoiners)'],
  ['<user@own.example', null, 'unbalanced brackets (what a NUL in the path leaves)'],
];

test('sender domains: the table of what is judged, as which domain', () => {
  for (const [raw, domain, why] of TABLE) {
    const parsed = parseEnvelopeSender(raw);
    if (domain === null) {
      assert.notEqual(parsed.kind, 'domain', `${raw}: ${why}`);
      if (parsed.kind === 'no-domain') assert.ok(parsed.reason.length > 0 && parsed.reason.length < 200, raw);
    } else {
      assert.equal(parsed.kind, 'domain', `${raw}: ${why}`);
      assert.equal(parsed.kind === 'domain' && parsed.domain, domain, `${raw}: ${why}`);
    }
  }
});

test('SPF sees the domain the regex check sees: the local part as given, the domain as judged', () => {
  const parsed = parseEnvelopeSender('<Jörg@BÜCHER.example.>');
  assert.equal(parsed.kind, 'domain');
  if (parsed.kind === 'domain') assert.equal(spfSender(parsed), 'Jörg@xn--bcher-kva.example');
  const quoted = parseEnvelopeSender('<"a@b"@Example.ORG>');
  if (quoted.kind === 'domain') assert.equal(spfSender(quoted), '"a@b"@example.org');
});
