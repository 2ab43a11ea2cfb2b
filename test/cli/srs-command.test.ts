import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { MAIN_JS } from '../support/paths.js';

const SECRET = 'sos-test-secret-0123456789';
const ENV = { SRS_DOMAIN: 'srs.esp.example', SRS_SECRETS: `${SECRET},old-secret-abcdefghij` };

function run(args: string[], env: Record<string, string> = ENV) {
  return spawnSync(process.execPath, [MAIN_JS, 'srs', ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, encoding: 'utf8', timeout: 10_000 });
}

test('encode then decode gives the sender back; exit 0', () => {
  const enc = run(['encode', '<first.last+tag=x@example.com>']);
  assert.equal(enc.status, 0, enc.stdout);
  assert.match(enc.stdout, /^SRS0=[A-Za-z0-9+/]{4}=[A-Z2-7]{2}=example\.com=first\.last\+tag=x@srs\.esp\.example\n$/);
  const dec = run(['decode', enc.stdout.trim()]);
  assert.deepEqual([dec.status, dec.stdout], [0, 'first.last+tag=x@example.com\n']);
});

test('refusals say why, exit 1; --json carries the reason; secrets never printed', () => {
  const forged = run(['decode', 'SRS0=AAAA=AA=example.com=user@srs.esp.example']);
  assert.equal(forged.status, 1);
  assert.match(forged.stdout, /not decoded \(forged\)/);
  const nul = run(['encode', '<>', '--json']);
  assert.equal(nul.status, 1);
  assert.equal(JSON.parse(nul.stdout).reason, 'null-sender');
  const long = run(['encode', `${'a'.repeat(60)}@example.com`]);
  assert.equal(long.status, 1);
  assert.match(long.stdout, /not rewritten \(local-part-too-long\)/);
  for (const r of [forged, nul, long]) assert.ok(!r.stdout.includes(SECRET) && !r.stderr.includes(SECRET));
});

test('bad settings stop with exit 78 naming the variable; usage errors exit 64', () => {
  const noDomain = run(['encode', 'a@b.example'], { SRS_SECRETS: SECRET });
  assert.equal(noDomain.status, 78);
  assert.match(noDomain.stdout, /SRS_DOMAIN: is required/);
  const weak = run(['encode', 'a@b.example'], { SRS_DOMAIN: 'srs.esp.example', SRS_SECRETS: 'tooshort' });
  assert.equal(weak.status, 78);
  assert.match(weak.stdout, /SRS_SECRETS: secret #1 has 8 characters/);
  assert.ok(!weak.stdout.includes('tooshort'));
  const age = run(['encode', 'a@b.example'], { ...ENV, SRS_MAX_AGE_DAYS: '0' });
  assert.equal(age.status, 78);
  assert.match(age.stdout, /SRS_MAX_AGE_DAYS/);
  assert.equal(run(['frobnicate', 'x']).status, 64);
  assert.equal(run(['encode']).status, 64);
});
