import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { LOCAL_PART_MAX_OCTETS, Srs, decodeTimestamp, isSrsAddress, srsTimestamp, timestampValid } from '../../src/srs/scheme.js';

const SECRET = 'sos-test-secret-0123456789';
const OLD_SECRET = 'old-secret-abcdefghij';
const DOMAIN = 'srs.esp.example';
/** 2026-12-05T...Z: day 20793, 313 modulo 1024, stamp "JZ". */
const NOW = 1796525222_000;
const DAY = 86_400_000;

const srs = new Srs({ secrets: [SECRET, OLD_SECRET], domain: DOMAIN, maxAgeDays: 21 });

/**
 * Written by Debian's postsrsd 1.10 (`postsrsd -s FILE -d srs.esp.example`, secrets file
 * "sos-test-secret-0123456789" then "old-secret-abcdefghij") on day 20793, through its
 * tcp_table forward port. test/integration/srs-postsrsd.test.ts checks the live binary.
 */
const POSTSRSD_VECTORS: ReadonlyArray<[string, string]> = [
  ['user@example.com', 'SRS0=qZXd=JZ=example.com=user@srs.esp.example'],
  ['first.last+tag=x@Example.COM', 'SRS0=M+dM=JZ=Example.COM=first.last+tag=x@srs.esp.example'],
  ['SRS0=abcd=TT=orig.example=bob@fwd.example', 'SRS1=r2HS=fwd.example==abcd=TT=orig.example=bob@srs.esp.example'],
  ['SRS1=wxyz=fwd1.example==abcd=TT=orig.example=bob@fwd2.example', 'SRS1=jDPH=fwd1.example==abcd=TT=orig.example=bob@srs.esp.example'],
];

test('forward writes what postsrsd writes, for SRS0, SRS1 of SRS0 and SRS1 of SRS1', () => {
  for (const [sender, expected] of POSTSRSD_VECTORS) {
    const result = srs.forward(sender, NOW);
    assert.deepEqual(result, { ok: true, address: expected, scheme: expected.slice(0, 4) }, sender);
  }
});

test('the hash is HMAC-SHA1 over the lowercased fields, base64, 4 characters', () => {
  const hash = createHmac('sha1', SECRET).update('jzexample.comuser').digest('base64').slice(0, 4);
  assert.equal(hash, 'qZXd');
});

test('reverse gives back the original sender, and the first hop for SRS1', () => {
  assert.deepEqual(srs.reverse('SRS0=qZXd=JZ=example.com=user@srs.esp.example', NOW), { ok: true, address: 'user@example.com', scheme: 'SRS0' });
  assert.deepEqual(srs.reverse('SRS0=M+dM=JZ=Example.COM=first.last+tag=x@srs.esp.example', NOW), {
    ok: true,
    address: 'first.last+tag=x@Example.COM',
    scheme: 'SRS0',
  });
  assert.deepEqual(srs.reverse('SRS1=r2HS=fwd.example==abcd=TT=orig.example=bob@srs.esp.example', NOW), {
    ok: true,
    address: 'SRS0=abcd=TT=orig.example=bob@fwd.example',
    scheme: 'SRS1',
  });
});

test('the hash, tag, timestamp and domain are checked without regard to case (receivers fold case)', () => {
  const lower = 'srs0=qzxd=jz=example.com=user@SRS.ESP.EXAMPLE';
  assert.deepEqual(srs.reverse(lower, NOW), { ok: true, address: 'user@example.com', scheme: 'SRS0' });
  assert.equal(srs.reverse('SRS0=QZXD=JZ=EXAMPLE.COM=USER@srs.esp.example', NOW).ok, true);
});

test('a wrong hash is forged, a changed field is forged, a short or long hash is malformed', () => {
  assert.equal(refusal('SRS0=qZXe=JZ=example.com=user@srs.esp.example'), 'forged');
  assert.equal(refusal('SRS0=qZXd=JZ=example.com=victim@srs.esp.example'), 'forged');
  assert.equal(refusal('SRS0=qZXd=JZ=example.net=user@srs.esp.example'), 'forged');
  assert.equal(refusal('SRS0=qZXd=JY=example.com=user@srs.esp.example'), 'forged');
  assert.equal(refusal('SRS0=qZX=JZ=example.com=user@srs.esp.example'), 'malformed');
  assert.equal(refusal('SRS0=qZXdd=JZ=example.com=user@srs.esp.example'), 'malformed');
  assert.equal(refusal('SRS1=r2HX=fwd.example==abcd=TT=orig.example=bob@srs.esp.example'), 'forged');
});

test('malformed, foreign and non-SRS addresses never decode', () => {
  const cases: Array<[string, string]> = [
    ['SRS0=qZXd=JZ=example.com@srs.esp.example', 'malformed'],
    ['SRS0=qZXd=JZ==user@srs.esp.example', 'malformed'],
    ['SRS0=qZXd=J1=example.com=user@srs.esp.example', 'malformed'],
    ['SRS0=qZXd=JZZ=example.com=user@srs.esp.example', 'malformed'],
    ['SRS0=@srs.esp.example', 'malformed'],
    ['SRS1=abcd@srs.esp.example', 'malformed'],
    ['SRS1=abcd=host=@srs.esp.example', 'malformed'],
    ['SRS0=qZXd=JZ=example.com=user@other.example', 'foreign-domain'],
    ['postmaster@srs.esp.example', 'not-srs'],
    ['SRS2=qZXd=JZ=example.com=user@srs.esp.example', 'not-srs'],
    ['SRS0', 'not-srs'],
    ['', 'not-srs'],
  ];
  for (const [address, reason] of cases) assert.equal(refusal(address), reason, address);
});

test('the timestamp: base32 day modulo 1024, valid for maxAgeDays, across the wrap, never from the future', () => {
  assert.equal(srsTimestamp(NOW), 'JZ');
  assert.equal(decodeTimestamp('JZ'), 313);
  assert.equal(decodeTimestamp('jz'), 313);
  assert.equal(srsTimestamp(0), 'AA');
  assert.equal(srsTimestamp(1023 * DAY), '77');
  assert.equal(srsTimestamp(1024 * DAY), 'AA');
  // Stamped on day 1023 of a cycle, checked on days 0..20 of the next: still valid.
  assert.equal(timestampValid(1023, 1024 * DAY, 21), true);
  assert.equal(timestampValid(1023, (1024 + 20) * DAY, 21), true);
  assert.equal(timestampValid(1023, (1024 + 21) * DAY, 21), false);
  // A stamp a day ahead counts as 1023 days old.
  assert.equal(timestampValid(314, NOW, 21), false);

  const made = srs.forward('user@example.com', NOW);
  assert.ok(made.ok);
  assert.equal(srs.reverse(made.address, NOW + 21 * DAY).ok, true);
  assert.equal(refusal(made.address, NOW + 22 * DAY), 'expired');
  assert.equal(refusal(made.address, NOW - DAY), 'expired');
  // Around the wrap: made on day 1023 of a cycle, decoded on day 5 of the next.
  const atWrap = srs.forward('user@example.com', 1023 * DAY);
  assert.ok(atWrap.ok);
  assert.match(atWrap.address, /^SRS0=....=77=/);
  assert.equal(srs.reverse(atWrap.address, 1029 * DAY).ok, true);
});

test('every secret verifies, the first signs: rotation', () => {
  const old = new Srs({ secrets: [OLD_SECRET], domain: DOMAIN, maxAgeDays: 21 });
  const byOld = old.forward('user@example.com', NOW);
  assert.ok(byOld.ok);
  assert.deepEqual(srs.reverse(byOld.address, NOW), { ok: true, address: 'user@example.com', scheme: 'SRS0' });
  const rotated = new Srs({ secrets: [SECRET], domain: DOMAIN, maxAgeDays: 21 });
  assert.equal(rotated.reverse(byOld.address, NOW).ok, false);
});

test('local parts with = and + go through and come back', () => {
  for (const sender of ['a=b=c@example.com', 'x+y+z@example.com', '=lead@example.com', 'b+SRS0=x=y@example.com']) {
    const made = srs.forward(sender, NOW);
    assert.ok(made.ok, sender);
    assert.deepEqual(srs.reverse(made.address, NOW), { ok: true, address: sender, scheme: 'SRS0' });
  }
});

test('SRS1 of SRS0 and SRS1 of SRS1 decode to the first hop address', () => {
  const first = new Srs({ secrets: ['first-hop-secret-xyz'], domain: 'fwd1.example', maxAgeDays: 21 });
  const srs0 = first.forward('bob@orig.example', NOW);
  assert.ok(srs0.ok);
  const srs1 = srs.forward(srs0.address, NOW);
  assert.ok(srs1.ok);
  assert.equal(srs1.scheme, 'SRS1');
  assert.match(srs1.address, /^SRS1=....=fwd1\.example==....=JZ=orig\.example=bob@srs\.esp\.example$/);
  assert.deepEqual(srs.reverse(srs1.address, NOW), { ok: true, address: srs0.address, scheme: 'SRS1' });
  assert.deepEqual(first.reverse(srs0.address, NOW), { ok: true, address: 'bob@orig.example', scheme: 'SRS0' });
  // A second forwarder re-signs the SRS1 under its own domain, keeping the first hop.
  const second = new Srs({ secrets: ['second-hop-secret'], domain: 'fwd3.example', maxAgeDays: 21 });
  const again = second.forward(srs1.address, NOW);
  assert.ok(again.ok);
  assert.match(again.address, /^SRS1=....=fwd1\.example==....=JZ=orig\.example=bob@fwd3\.example$/);
  assert.deepEqual(second.reverse(again.address, NOW), { ok: true, address: srs0.address, scheme: 'SRS1' });
});

test('the result stays within 64 octets of local part, else a defined refusal', () => {
  // SRS0=HHHH=TT=<domain>=<local>: 14 octets of framing.
  const domain = 'example.com';
  const fits = 'a'.repeat(LOCAL_PART_MAX_OCTETS - 14 - domain.length);
  const made = srs.forward(`${fits}@${domain}`, NOW);
  assert.ok(made.ok);
  assert.equal(made.address.split('@')[0]!.length, 64);
  const over = srs.forward(`${fits}a@${domain}`, NOW);
  assert.deepEqual(over, { ok: false, reason: 'local-part-too-long', detail: "the SRS0 local part would be 65 octets, over RFC 5321's 64" });
});

test('what is never rewritten: null sender, no domain, quoted local part, our own domain, broken SRS1', () => {
  assert.equal(reason(''), 'null-sender');
  assert.equal(reason('<>'), 'null-sender');
  assert.equal(reason('nodomain'), 'no-domain');
  assert.equal(reason('user@'), 'no-domain');
  assert.equal(reason('"john doe"@example.com'), 'unsupported-local-part');
  assert.equal(reason('a..b@example.com'), 'unsupported-local-part');
  assert.equal(reason('someone@SRS.esp.example'), 'srs-domain');
  assert.equal(reason('SRS1=abcd@fwd.example'), 'malformed-srs');
});

test('isSrsAddress looks at the tag and first separator only', () => {
  assert.equal(isSrsAddress('SRS0=a=b=c=d@x'), true);
  assert.equal(isSrsAddress('srs1+a@x'), true);
  assert.equal(isSrsAddress('SRS0x@x'), false);
  assert.equal(isSrsAddress('user@x'), false);
});

test('the secrets never show in JSON or inspection', () => {
  const text = JSON.stringify(srs) + String(srs);
  assert.ok(!text.includes(SECRET) && !text.includes(OLD_SECRET));
});

function refusal(address: string, now = NOW): string {
  const result = srs.reverse(address, now);
  return result.ok ? `decoded to ${result.address}` : result.reason;
}

function reason(sender: string): string {
  const result = srs.forward(sender, NOW);
  return result.ok ? `rewritten to ${result.address}` : result.reason;
}
