import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { MAIN_JS } from '../support/paths.js';


function run(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [MAIN_JS, ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, encoding: 'utf8', timeout: 10_000 });
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

test('every command reads the environment through the same loadConfig: same refusals, same exit status', () => {
  const commands: string[][] = [[], ['spf', '192.0.2.1', 'a@b.test'], ['check', 'a@b.test'], ['health']];
  // `1e3` was once taken by `sos-milter spf` (Number()) and refused by the daemon.
  const cases: [Record<string, string>, RegExp][] = [
    [{ DNS_TIMEOUT_MS: '1e3' }, /DNS_TIMEOUT_MS: "1e3" is not a plain decimal integer/],
    [{ DNS_TIMEOUT_MS: '0' }, /DNS_TIMEOUT_MS: 0 is out of range/],
    [{ DNS_SERVERS: 'dns.example' }, /DNS_SERVERS: entry "dns.example"/],
    [{ MILTER_MODE: 'enforce' }, /MILTER_MODE/],
  ];
  for (const argv of commands) {
    for (const [env, message] of cases) {
      const r = run(argv, env);
      const said = `${r.stdout}${r.stderr}`;
      assert.equal(r.status, 78, `${argv.join(' ') || '(daemon)'} ${JSON.stringify(env)}: ${said}`);
      assert.match(said, /configuration error: /);
      assert.match(said, message, argv.join(' '));
    }
  }
});
