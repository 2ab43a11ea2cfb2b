import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function run(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [MAIN, ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, encoding: 'utf8', timeout: 10_000 });
}

test('a bad setting stops start-up with exit 78 and names the variable', () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ MILTER_MODE: 'enforce' }, /MILTER_MODE/],
    [{ SPF_REGEX: '(unclosed' }, /SPF_REGEX/],
    [{ MILTER_SOCKET: 'tcp:8020' }, /MILTER_SOCKET/],
    [{ LDAP_ENABLED: 'yes' }, /LDAP_SERVER_URI/],
    [{ SPF_CHECK: 'evaluate' }, /OUTBOUND_IPS/],
    [{ DNS_TIMEOUT_MS: '2s' }, /DNS_TIMEOUT_MS/],
  ];
  for (const [env, variable] of cases) {
    const r = run([], env);
    assert.equal(r.status, 78, `${JSON.stringify(env)}: ${r.stderr}`);
    assert.match(r.stderr, /configuration error/);
    assert.match(r.stderr, variable);
  }
});

test('the password never appears in a configuration error or debug output', () => {
  const r = run([], { LOG_LEVEL: 'debug', LDAP_ENABLED: 'yes', LDAP_SERVER_URI: 'ldap://127.0.0.1:1', LDAP_BINDDN: 'cn=x', LDAP_BINDPW: 's3cr3t-pw', LDAP_SEARCH_BASE: 'dc=x', LDAP_QUERY_FILTER: '(dc=%d)', MILTER_SOCKET: '/dev/null/sub/sos.sock' });
  assert.equal(r.status, 1, 'the socket cannot be created: start-up fails after logging the configuration');
  assert.match(r.stdout, /configuration/);
  assert.match(r.stderr, /cannot start: cannot listen on MILTER_SOCKET=\/dev\/null\/sub\/sos.sock/);
  assert.ok(!`${r.stdout}${r.stderr}`.includes('s3cr3t-pw'));
});

test('--version, --help and unknown commands', () => {
  const version = run(['--version']);
  assert.equal(version.status, 0);
  assert.match(version.stdout, /^sos-milter \d+\.\d+\.\d+\n$/);
  const help = run(['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /sos-milter spf IP SENDER/);
  const unknown = run(['frobnicate']);
  assert.equal(unknown.status, 64);
  assert.match(unknown.stderr, /unknown command "frobnicate"/);
});
