import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseEnvelopeSender } from '../../src/policy/sender.js';

test('null sender in every form Postfix sends it', () => {
  for (const raw of ['<>', '', ' <> ', '< >']) assert.deepEqual(parseEnvelopeSender(raw), { kind: 'null' }, raw);
});

test('bracketed and bare senders give the lower-case domain after the last @', () => {
  assert.deepEqual(parseEnvelopeSender('<Alice@Example.ORG>'), { kind: 'domain', address: 'Alice@Example.ORG', domain: 'example.org' });
  assert.deepEqual(parseEnvelopeSender('bob@sub.example.net'), { kind: 'domain', address: 'bob@sub.example.net', domain: 'sub.example.net' });
  assert.equal(parseEnvelopeSender('<"a@b"@example.com>').kind, 'domain');
  assert.equal((parseEnvelopeSender('<"a@b"@example.com>') as { domain: string }).domain, 'example.com');
});

test('a trailing dot and a source route are removed', () => {
  assert.equal((parseEnvelopeSender('<a@example.com.>') as { domain: string }).domain, 'example.com');
  assert.equal((parseEnvelopeSender('<@relay.example,@b.example:user@final.example>') as { domain: string }).domain, 'final.example');
});

test('senders without a usable domain are not judged', () => {
  assert.equal(parseEnvelopeSender('<postmaster>').kind, 'no-domain');
  assert.equal(parseEnvelopeSender('<user@>').kind, 'no-domain');
  assert.equal(parseEnvelopeSender('<user@[192.0.2.1]>').kind, 'no-domain');
  assert.equal(parseEnvelopeSender('<user@exa mple.com>').kind, 'no-domain');
});

test('UTF-8 domains become A-labels', () => {
  const parsed = parseEnvelopeSender('<jörg@bücher.example>');
  assert.equal(parsed.kind, 'domain');
  assert.equal((parsed as { domain: string }).domain, 'xn--bcher-kva.example');
});

test('a half-bracketed sender (what a NUL inside the path leaves after the split) is not judged', () => {
  for (const raw of ['<user@own.example', 'user@own.example>']) {
    assert.deepEqual(parseEnvelopeSender(raw), { kind: 'no-domain', address: raw, reason: 'unbalanced angle brackets' }, raw);
  }
});
