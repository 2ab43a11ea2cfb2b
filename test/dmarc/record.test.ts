import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDmarcRecord, startsDmarcRecord, strongestDisposition, type DmarcRecord } from '../../src/dmarc/record.js';
import { walkNames } from '../../src/dmarc/discover.js';
import { parsePublicSuffixList } from '../../src/dmarc/psl.js';
import { boundTxtAnswer, txtRecordCount } from '../../src/dns/txt-bound.js';

const rec = (text: string): DmarcRecord => {
  const r = parseDmarcRecord(text);
  assert.equal(r.kind, 'record', `${text}: ${JSON.stringify(r)}`);
  return (r as { record: DmarcRecord }).record;
};

test('the version tag must come first, as v=DMARC1 in upper case', () => {
  assert.ok(startsDmarcRecord('v=DMARC1'));
  assert.ok(startsDmarcRecord('V = DMARC1;p=none'));
  assert.ok(!startsDmarcRecord('v=dmarc1; p=none'));
  assert.ok(!startsDmarcRecord('v=DMARC10; p=none'));
  assert.ok(!startsDmarcRecord('p=reject; v=DMARC1'));
  assert.equal(parseDmarcRecord('v=spf1 -all').kind, 'not-dmarc');
});

test('tags and defaults', () => {
  const r = rec('v=DMARC1; p=Reject; sp=none; np=quarantine; adkim=s; aspf=S; pct=20; t=n; psd=y; rua=mailto:x@y.example; fo=1; future=1');
  assert.deepEqual(r, { p: 'reject', pValid: true, sp: 'none', np: 'quarantine', adkim: 's', aspf: 's', pct: 20, testing: false, psd: 'y', hasRua: true, problems: [] });
  const d = rec('v=DMARC1');
  assert.equal(d.p, 'none');
  assert.equal(d.pValid, false);
  assert.equal(d.adkim, 'r');
  assert.equal(d.pct, 100);
});

test('invalid values fall back to defaults and are listed; malformed tag-specs invalidate the record', () => {
  const r = rec('v=DMARC1; p=reject; sp=bogus; adkim=x; pct=101; t=maybe; psd=q; p=none');
  assert.equal(r.p, 'reject');
  assert.equal(r.sp, undefined);
  assert.equal(r.problems.length, 6);
  assert.equal(parseDmarcRecord('v=DMARC1; p=reject; garbage').kind, 'invalid');
  assert.equal(parseDmarcRecord('v=DMARC1; p-x=reject').kind, 'invalid');
  assert.equal(parseDmarcRecord(`v=DMARC1; p=reject; rua=${'x'.repeat(3000)}`).kind, 'invalid');
});

test('disposition: pct=0 and t=y weaken by one step', () => {
  assert.equal(strongestDisposition('reject', rec('v=DMARC1; p=reject; pct=0')), 'quarantine');
  assert.equal(strongestDisposition('quarantine', rec('v=DMARC1; p=quarantine; t=y')), 'none');
  assert.equal(strongestDisposition('reject', rec('v=DMARC1; p=reject; pct=1')), 'reject');
});

test('the walk asks at most eight names', () => {
  assert.deepEqual(walkNames('a.b.example'), ['a.b.example', 'b.example', 'example']);
  const deep = walkNames('1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17.18.19.20');
  assert.equal(deep.length, 8);
  assert.equal(deep[1], '14.15.16.17.18.19.20');
  assert.equal(deep[7], '20');
});

test('the TXT bound keeps one DMARC record beside others, and counts several', () => {
  const answer = (...records: string[][]) => ({ records, nxdomain: false, ttl: 60 });
  const mixed = boundTxtAnswer(answer(['v=DMARC1; p=reject'], ['google-site-verification=x'], ['other']));
  assert.deepEqual(mixed.records, [['v=DMARC1; p=reject']]);
  assert.equal(txtRecordCount(mixed), 3);
  const several = boundTxtAnswer(answer(['v=DMARC1; p=reject'], ['v=DMARC1; p=none']));
  assert.deepEqual(several.records, []);
  assert.equal(several.omitted?.dmarc, 2);
  const long = boundTxtAnswer(answer(['v=DMARC1; p=reject; rua=', 'x'.repeat(255), 'x'.repeat(255)]));
  assert.equal(long.records.length, 1, 'a DMARC record longer than an explanation is kept');
  const both = answer(['v=spf1 -all'], ['v=DMARC1; p=reject']);
  assert.equal(boundTxtAnswer(both), both);
});

test('RFC 7489 organizational domains from a public suffix list', () => {
  const psl = parsePublicSuffixList('// c\ncom\nuk\nco.uk\n*.ck\n!www.ck\n\u00fcbung.example\n');
  assert.equal(psl.organizationalDomain('a.b.example.com'), 'example.com');
  assert.equal(psl.organizationalDomain('a.example.co.uk'), 'example.co.uk');
  assert.equal(psl.organizationalDomain('a.b.foo.ck'), 'b.foo.ck');
  assert.equal(psl.organizationalDomain('a.www.ck'), 'www.ck');
  assert.equal(psl.organizationalDomain('x.y.xn--bung-zra.example'), 'y.xn--bung-zra.example');
  assert.equal(psl.organizationalDomain('com'), 'com');
  assert.equal(psl.organizationalDomain('a.b.unlisted'), 'b.unlisted');
});
