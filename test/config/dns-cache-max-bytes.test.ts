// DNS_CACHE_MAX_BYTES: parsed like the other integers; a bad value stops the daemon with exit 78.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { ConfigError, DEFAULTS, loadConfig } from '../../src/config/index.js';
import { MAIN_JS } from '../support/paths.js';


test('DNS_CACHE_MAX_BYTES defaults to 32 MiB and takes plain byte counts', () => {
  assert.equal(loadConfig({}).dnsCacheMaxBytes, 32 * 1024 * 1024);
  assert.equal(DEFAULTS.dnsCacheMaxBytes, 33_554_432);
  assert.equal(loadConfig({ DNS_CACHE_MAX_BYTES: ' 1048576 ' }).dnsCacheMaxBytes, 1_048_576);
  assert.equal(loadConfig({ DNS_CACHE_MAX_BYTES: '' }).dnsCacheMaxBytes, DEFAULTS.dnsCacheMaxBytes);
});

test('a bad DNS_CACHE_MAX_BYTES is a ConfigError naming it', () => {
  for (const bad of ['32M', '1e6', '-5', '0', '1000', '0x100000', '99999999999999999999']) {
    assert.throws(
      () => loadConfig({ DNS_CACHE_MAX_BYTES: bad }),
      (e: unknown) => e instanceof ConfigError && e.variable === 'DNS_CACHE_MAX_BYTES',
      bad,
    );
  }
});

test('the daemon refuses to start with exit 78 on a bad DNS_CACHE_MAX_BYTES', () => {
  const r = spawnSync(process.execPath, [MAIN_JS], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', DNS_CACHE_MAX_BYTES: '32MiB' }, encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.status, 78, r.stderr);
  assert.match(r.stderr, /configuration error: DNS_CACHE_MAX_BYTES: "32MiB" is not a plain decimal integer/);
});
